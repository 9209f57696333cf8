package media

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/callcore/rtp"
	"github.com/callbus/callbus/internal/bustest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// externalIP is what the tests' media hub advertises: not the address the
// RTP sockets bind to, so that a test sees c= come from the configuration.
var externalIP = netip.MustParseAddr("192.0.2.10")

// ports spreads the tests of this package over their own RTP ports, away
// from the rtp package's tests (21000-24000).
var ports = &bustest.PortRange{Lo: 24000, Hi: 27000}

func freePairs(t *testing.T, n int) [2]int { return ports.FreePairs(t, n) }

// env is a bus with the media hub, the real rtp hub on 127.0.0.1 (unless
// pairs is 0: then the test plays rtp itself), and a recorder of every
// event media publishes or receives.
type env struct {
	bus   *bus.Memory
	media *Hub
	rtp   *rtp.Hub // nil without rtp
	rec   *busRecorder
}

func newEnv(t *testing.T, pairs int) *env { return newEnvCfg(t, pairs, Config{}) }

// newEnvCfg is newEnv with a media Config; its ExternalIP is always
// externalIP.
func newEnvCfg(t *testing.T, pairs int, cfg Config) *env {
	t.Helper()
	b := bustest.NewBus(t, bus.Config{}) // closed last: cleanups run in reverse
	e := &env{bus: b}
	e.rec = record(t, b, events.ChannelSessionToMedia, events.ChannelMediaToSession, events.ChannelMediaToRTP,
		events.ChannelRTPToMedia)
	if pairs > 0 {
		r, err := rtp.New(rtp.Config{Host: netip.MustParseAddr("127.0.0.1"), Ports: freePairs(t, pairs)}, b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Open(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bustest.Close(t, "rtp", r.Close) })
		e.rtp = r
	}
	cfg.ExternalIP = externalIP
	m, err := New(cfg, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bustest.Close(t, "media", m.Close) })
	e.media = m
	return e
}

func (e *env) publish(t *testing.T, ev events.Event) { bustest.Publish(t, e.bus, ev) }

type busRecorder = bustest.Recorder

func record(t *testing.T, b bus.Bus, channels ...string) *busRecorder {
	return bustest.Record(t, b, channels...)
}

func all[T events.Event](r *busRecorder, session string) []T { return bustest.All[T](r, session) }

func waitN[T events.Event](t *testing.T, r *busRecorder, session string, n int) []T {
	return bustest.WaitN[T](t, r, session, n)
}

func waitFor[T events.Event](t *testing.T, r *busRecorder, session string) T {
	return bustest.WaitFor[T](t, r, session)
}

// waitOutcome waits for MediaStreamStarted or MediaError of session and
// returns the first of them to be published.
func waitOutcome(t *testing.T, r *busRecorder, session string) (*events.MediaStreamStarted, *events.MediaError) {
	t.Helper()
	var started *events.MediaStreamStarted
	var failed *events.MediaError
	bustest.CheckFor(t, 5*time.Second, func() error {
		for _, ev := range r.Events() {
			if events.SessionOf(ev) != session {
				continue
			}
			switch ev := ev.(type) {
			case *events.MediaStreamStarted:
				started = ev
			case *events.MediaError:
				failed = ev
			default:
				continue
			}
			return nil
		}
		return fmt.Errorf("neither MediaStreamStarted nor MediaError for %s; recorded %v", session, r.Types())
	})
	return started, failed
}

func ref(session string) events.SessionRef { return events.SessionRef{SessionID: session} }

// controlFlow lists the types of session's recorded events without the
// packets, statistics and quality reports that come and go with time.
func controlFlow(r *busRecorder, session string) []string {
	var out []string
	for _, typ := range r.TypesOf(session) {
		switch typ {
		case "SendRtpPacket", "RtpPacketReceived", "RtpStatisticsUpdate", "MediaQualityUpdate":
			continue
		}
		out = append(out, typ)
	}
	return out
}
