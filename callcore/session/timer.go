package session

import (
	"context"
	"sync"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
)

// timer is one armed timer of a call.
type timer struct{ t *time.Timer }

// timers owns every timer of the layer, so that Close can stop them and
// wait for the ones already running: a callback runs counted in g, and
// never once stopAll has run (it stops g under mu).
type timers struct {
	mu     sync.Mutex
	set    map[*timer]struct{}
	closed bool
	g      *callcore.Group
}

func (ts *timers) init(g *callcore.Group) {
	ts.set = make(map[*timer]struct{})
	ts.g = g
}

// after runs fn in its own goroutine after d, unless stopped first, with
// a context that Close cancels. It returns nil once stopAll has run.
func (ts *timers) after(d time.Duration, fn func(ctx context.Context)) *timer {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return nil
	}
	tm := &timer{}
	tm.t = time.AfterFunc(d, func() {
		ts.mu.Lock()
		if ts.closed {
			ts.mu.Unlock()
			return
		}
		delete(ts.set, tm)
		ts.mu.Unlock()
		ts.g.Do("timer", fn) // refused if stopAll ran meanwhile
	})
	ts.set[tm] = struct{}{}
	return tm
}

// stop stops tm if it has not fired; nil is ignored.
func (ts *timers) stop(tm *timer) {
	if tm == nil {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	tm.t.Stop()
	delete(ts.set, tm)
}

// stopAll stops every timer, refuses new ones and cancels the context of
// the callbacks running; g.Wait waits for them.
func (ts *timers) stopAll() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.closed = true
	for tm := range ts.set {
		tm.t.Stop()
	}
	clear(ts.set)
	ts.g.Stop()
}

// arm (re)starts the timer of the step's call held in slot: after d, fn
// runs as a new step of the call, under its lock, unless the timer was
// disarmed or replaced meanwhile. What fn emits is published with the
// event that armed the timer as its cause.
func (st *step) arm(slot **timer, d time.Duration, fn func(*step)) {
	s, c, cause := st.s, st.c, st.cause
	s.timers.stop(*slot)
	var tm *timer
	tm = s.timers.after(d, func(ctx context.Context) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if *slot != tm {
			return
		}
		*slot = nil
		ts := s.begin(c, cause)
		fn(ts)
		if err := ts.flush(bus.WithCause(ctx, cause)); err != nil {
			s.log.Warn("timer step not published", "session_id", c.id, "error", err)
		}
	})
	*slot = tm
}

// disarm stops the timer in slot; the call's lock is held.
func (st *step) disarm(slot **timer) {
	st.s.timers.stop(*slot)
	*slot = nil
}

// disarmCallTimers stops the timers of the step's call except the
// teardown guard.
func (st *step) disarmCallTimers() {
	st.disarm(&st.c.ringTimer)
	st.disarm(&st.c.recTimer)
}
