// Package bustest holds the helpers that the layers' tests share: a bus
// closed with the test, a recorder of what is published on some channels,
// polling with a deadline, and free RTP port pairs. Tests only.
package bustest

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
)

// NewBus returns a bus closed at the end of the test, failing the test if
// Close reports anything undelivered.
func NewBus(t testing.TB, cfg bus.Config) *bus.Memory {
	t.Helper()
	b, err := bus.New(cfg)
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

// CloseTimeout bounds a Close that a test runs at its end.
const CloseTimeout = 10 * time.Second

// Close calls close (the Close of a hub, a feed, a store) with a context
// that ends after CloseTimeout, failing the test if it returns an error.
// It suits t.Cleanup, where t.Context() has already ended.
func Close(t testing.TB, what string, close func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CloseTimeout)
	defer cancel()
	if err := close(ctx); err != nil {
		t.Errorf("%s Close: %v", what, err)
	}
}

// Publish publishes ev, failing the test on error.
func Publish(t testing.TB, b bus.Bus, ev events.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Publish(ctx, ev); err != nil {
		t.Fatalf("publish %s: %v", ev.Type(), err)
	}
}

// CheckFor polls fn until it returns nil, failing the test with fn's last
// error once total has passed: the one way the tests wait for a condition
// (nats-server's checkFor), never a sleep. It polls after 1ms, then ever
// less often up to every maxPoll, so that a condition met at once is seen
// at once and a slow one does not keep a core busy.
func CheckFor(t testing.TB, total time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	poll := time.Millisecond
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", total, err)
		}
		time.Sleep(poll)
		poll = min(2*poll, maxPoll)
	}
}

// maxPoll is the longest pause between two polls of CheckFor.
const maxPoll = 10 * time.Millisecond

// Recorder keeps every event published on some channels.
type Recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

// Record subscribes a Recorder to channels until the test ends.
func Record(t testing.TB, b bus.Bus, channels ...string) *Recorder {
	t.Helper()
	r := &Recorder{}
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

// Events returns a copy of everything recorded.
func (r *Recorder) Events() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// Types lists the recorded events as type/session, for failure messages.
func (r *Recorder) Types() []string {
	var out []string
	for _, ev := range r.Events() {
		out = append(out, ev.Type()+"/"+events.SessionOf(ev))
	}
	return slices.Compact(out)
}

// TypesOf lists the types of session's recorded events, in order.
func (r *Recorder) TypesOf(session string) []string {
	var out []string
	for _, ev := range r.Events() {
		if events.SessionOf(ev) == session {
			out = append(out, ev.Type())
		}
	}
	return out
}

// All returns the recorded events of session that are T.
func All[T events.Event](r *Recorder, session string) []T {
	var out []T
	for _, ev := range r.Events() {
		if e, ok := ev.(T); ok && events.SessionOf(ev) == session {
			out = append(out, e)
		}
	}
	return out
}

// WaitN waits until n events of session that are T are recorded, for up
// to five seconds, and returns them.
func WaitN[T events.Event](t testing.TB, r *Recorder, session string, n int) []T {
	t.Helper()
	var got []T
	CheckFor(t, 5*time.Second, func() error {
		if got = All[T](r, session); len(got) >= n {
			return nil
		}
		var zero T
		return fmt.Errorf("%d %T for %s, want %d; recorded: %v", len(got), zero, session, n, r.Types())
	})
	return got
}

// WaitFor returns the first recorded event of session that is T, waiting
// for up to five seconds.
func WaitFor[T events.Event](t testing.TB, r *Recorder, session string) T {
	t.Helper()
	return WaitN[T](t, r, session, 1)[0]
}

// PortRange hands out RTP port pairs from [Lo, Hi) that can be bound on
// 127.0.0.1 when asked. Give each test package its own range, below
// Linux's ephemeral range (32768-60999) where every ":0" socket lands:
// go test runs packages in parallel.
type PortRange struct {
	Lo, Hi int
	cursor atomic.Int32
}

// FreePairs returns [lo, hi], n even/odd pairs that are free right now.
func (p *PortRange) FreePairs(t testing.TB, n int) [2]int {
	t.Helper()
	p.cursor.CompareAndSwap(0, int32(p.Lo))
	for range 200 {
		lo := int(p.cursor.Add(int32(2*n))) - 2*n
		if lo+2*n > p.Hi {
			p.cursor.Store(int32(p.Lo))
			continue
		}
		if allFree(lo, lo+2*n-1) {
			return [2]int{lo, lo + 2*n - 1}
		}
	}
	t.Fatalf("no %d free port pairs in %d-%d", n, p.Lo, p.Hi)
	return [2]int{}
}

func allFree(lo, hi int) bool {
	var conns []*net.UDPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for port := lo; port <= hi; port++ {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			return false
		}
		conns = append(conns, c)
	}
	return true
}
