package rtp

import (
	"net/netip"
	"testing"

	"go.uber.org/goleak"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var loopback = netip.MustParseAddr("127.0.0.1")

// ports spreads the tests of this package over their own RTP ports, away
// from the media package's tests (24000-27000).
var ports = &bustest.PortRange{Lo: 21000, Hi: 24000}

func freePairs(t testing.TB, n int) [2]int { return ports.FreePairs(t, n) }

func newBus(t testing.TB) *bus.Memory { return bustest.NewBus(t, bus.Config{}) }

// newHub returns an open hub on 127.0.0.1 over ports, closed at the end of
// the test (before the bus).
func newHub(t *testing.T, b bus.Bus, ports [2]int) *Hub {
	t.Helper()
	h, err := New(Config{Host: loopback, Ports: ports}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bustest.Close(t, "hub", h.Close) })
	return h
}

type recorder = bustest.Recorder

func record(t testing.TB, b bus.Bus, channels ...string) *recorder {
	return bustest.Record(t, b, channels...)
}

func all[T events.Event](r *recorder, session string) []T { return bustest.All[T](r, session) }

func waitFor[T events.Event](t testing.TB, r *recorder, session string) T {
	return bustest.WaitFor[T](t, r, session)
}

func publish(t testing.TB, b bus.Bus, ev events.Event) { bustest.Publish(t, b, ev) }

func ref(session string) events.SessionRef { return events.SessionRef{SessionID: session} }
