package rtp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var loopback = netip.MustParseAddr("127.0.0.1")

// portCursor spreads the tests of this package over their own ports. The
// range sits below Linux's ephemeral range (32768-60999), where every
// ":0" socket of the machine lands, and away from the media package's
// tests (which start at 24000), since go test runs packages in parallel.
var portCursor atomic.Int32

func init() { portCursor.Store(21000) }

// freePairs returns a range [lo, hi] of n pairs that can all be bound on
// 127.0.0.1 right now, skipping ports in use.
func freePairs(t *testing.T, n int) [2]int {
	t.Helper()
	for range 200 {
		lo := int(portCursor.Add(int32(2*n))) - 2*n
		if lo+2*n > 24000 {
			portCursor.Store(21000)
			continue
		}
		if allFree(lo, lo+2*n-1) {
			return [2]int{lo, lo + 2*n - 1}
		}
	}
	t.Fatalf("no %d free port pairs in 21000-24000", n)
	return [2]int{}
}

func allFree(lo, hi int) bool {
	var conns []*net.UDPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for p := lo; p <= hi; p++ {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		if err != nil {
			return false
		}
		conns = append(conns, c)
	}
	return true
}

// newBus returns a bus closed at the end of the test.
func newBus(t *testing.T) *bus.Memory {
	t.Helper()
	b, err := bus.New(bus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("bus Close: %v", err)
		}
	})
	return b
}

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
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("hub Close: %v", err)
		}
	})
	return h
}

// recorder keeps every event published on some channels.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func record(t *testing.T, b bus.Bus, channels ...string) *recorder {
	t.Helper()
	r := &recorder{}
	sub, err := b.Subscribe(bus.Subscriber{
		Name:     fmt.Sprint("recorder", channels),
		Channels: channels,
		Handle: func(_ context.Context, _ events.Envelope, ev events.Event) error {
			r.mu.Lock()
			r.evs = append(r.evs, ev)
			r.mu.Unlock()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sub.Unsubscribe(ctx)
	})
	return r
}

// all returns the recorded events of session that are T.
func all[T events.Event](r *recorder, session string) []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []T
	for _, ev := range r.evs {
		if e, ok := ev.(T); ok && events.SessionOf(ev) == session {
			out = append(out, e)
		}
	}
	return out
}

// waitFor returns the first recorded event of session that is T, polling
// until it arrives or the deadline passes.
func waitFor[T events.Event](t *testing.T, r *recorder, session string) T {
	t.Helper()
	var got T
	checkFor(t, 5*time.Second, func() error {
		if evs := all[T](r, session); len(evs) > 0 {
			got = evs[0]
			return nil
		}
		var zero T
		return fmt.Errorf("no %T for %s; recorded: %v", zero, session, r.types())
	})
	return got
}

func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.evs {
		out = append(out, ev.Type()+"/"+events.SessionOf(ev))
	}
	return slices.Compact(out)
}

// checkFor polls fn until it returns nil or total elapses.
func checkFor(t *testing.T, total time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", total, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func publish(t *testing.T, b bus.Bus, ev events.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := b.Publish(ctx, ev); err != nil {
		t.Fatalf("publish %s: %v", ev.Type(), err)
	}
}

func ref(session string) events.SessionRef { return events.SessionRef{SessionID: session} }
