package media

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
	"github.com/callbus/callbus/callcore/rtp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// externalIP is what the tests' media hub advertises: not the address the
// RTP sockets bind to, so that a test sees c= come from the configuration.
var externalIP = netip.MustParseAddr("192.0.2.10")

// portCursor spreads the tests of this package over their own RTP ports:
// below Linux's ephemeral range (32768-60999), where every ":0" socket of
// the machine lands, and away from the rtp package's tests (21000-24000),
// since go test runs packages in parallel.
var portCursor atomic.Int32

func init() { portCursor.Store(24000) }

// freePairs returns a range [lo, hi] of n port pairs that can all be bound
// on 127.0.0.1 right now, skipping ports in use.
func freePairs(t *testing.T, n int) [2]int {
	t.Helper()
	for range 200 {
		lo := int(portCursor.Add(int32(2*n))) - 2*n
		if lo+2*n > 27000 {
			portCursor.Store(24000)
			continue
		}
		if allFree(lo, lo+2*n-1) {
			return [2]int{lo, lo + 2*n - 1}
		}
	}
	t.Fatalf("no %d free port pairs in 24000-27000", n)
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

// env is a bus with the media hub, the real rtp hub on 127.0.0.1 (unless
// pairs is 0: then the test plays rtp itself), and a recorder of every
// event media publishes or receives.
type env struct {
	bus   *bus.Memory
	media *Hub
	rtp   *rtp.Hub // nil without rtp
	rec   *recorder
}

func newEnv(t *testing.T, pairs int) *env {
	t.Helper()
	b, err := bus.New(bus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // runs last: cleanups run in reverse
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("bus Close: %v", err)
		}
	})
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
		t.Cleanup(func() {
			if err := r.Close(); err != nil {
				t.Errorf("rtp Close: %v", err)
			}
		})
		e.rtp = r
	}
	m, err := New(Config{ExternalIP: externalIP}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("media Close: %v", err)
		}
	})
	e.media = m
	return e
}

func (e *env) publish(t *testing.T, ev events.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := e.bus.Publish(ctx, ev); err != nil {
		t.Fatalf("publish %s: %v", ev.Type(), err)
	}
}

// recorder keeps every event published on some channels, in the order
// one subscriber sees them (for one session, publish order).
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func record(t *testing.T, b bus.Bus, channels ...string) *recorder {
	t.Helper()
	r := &recorder{}
	sub, err := b.Subscribe(bus.Subscriber{
		Name:     "recorder",
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

// waitN waits until n events of session that are T are recorded and
// returns them.
func waitN[T events.Event](t *testing.T, r *recorder, session string, n int) []T {
	t.Helper()
	var got []T
	checkFor(t, 5*time.Second, func() error {
		if got = all[T](r, session); len(got) >= n {
			return nil
		}
		var zero T
		return fmt.Errorf("%d %T for %s, want %d; recorded: %v", len(got), zero, session, n, r.types(session))
	})
	return got
}

// waitFor returns the first recorded event of session that is T.
func waitFor[T events.Event](t *testing.T, r *recorder, session string) T {
	t.Helper()
	return waitN[T](t, r, session, 1)[0]
}

func (r *recorder) types(session string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.evs {
		if events.SessionOf(ev) == session {
			out = append(out, ev.Type())
		}
	}
	return slices.Clip(out)
}

// waitOutcome waits for MediaStreamStarted or MediaError of session.
func waitOutcome(t *testing.T, r *recorder, session string) (*events.MediaStreamStarted, *events.MediaError) {
	t.Helper()
	var started *events.MediaStreamStarted
	var failed *events.MediaError
	checkFor(t, 5*time.Second, func() error {
		if s := all[*events.MediaStreamStarted](r, session); len(s) > 0 {
			started = s[0]
		}
		if f := all[*events.MediaError](r, session); len(f) > 0 {
			failed = f[0]
		}
		if started == nil && failed == nil {
			return fmt.Errorf("neither MediaStreamStarted nor MediaError for %s; recorded %v", session, r.types(session))
		}
		return nil
	})
	return started, failed
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

func ref(session string) events.SessionRef { return events.SessionRef{SessionID: session} }
