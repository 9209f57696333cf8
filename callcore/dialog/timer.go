package dialog

import (
	"context"
	"sync"
	"time"

	"github.com/callbus/callbus/callcore"
)

// timers owns every timer of the hub, so that Close can stop them all and
// wait for callbacks that are already running. A timer is a time.AfterFunc:
// no goroutine exists until it fires, and its callback then runs counted
// in g, never once close has run (it stops g under mu).
type timers struct {
	mu     sync.Mutex
	closed bool
	live   map[*timer]struct{}
	g      *callcore.Group // set by open
}

// timer is one scheduled callback; a nil *timer is a stopped one.
type timer struct {
	ts *timers
	t  *time.Timer
}

// open lets timers run their callbacks in g, whose context they receive.
func (ts *timers) open(g *callcore.Group) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.g = g
}

// after schedules fn after d. It returns nil before open and once close
// has begun.
func (ts *timers) after(d time.Duration, fn func(ctx context.Context)) *timer {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed || ts.g == nil {
		return nil
	}
	if ts.live == nil {
		ts.live = make(map[*timer]struct{})
	}
	tm := &timer{ts: ts}
	g := ts.g
	// The callback takes ts.mu first, so it cannot run before tm is live.
	tm.t = time.AfterFunc(d, func() {
		ts.mu.Lock()
		_, ok := ts.live[tm]
		delete(ts.live, tm)
		ts.mu.Unlock()
		if ok {
			g.Do("timer", fn) // refused if close ran meanwhile
		}
	})
	ts.live[tm] = struct{}{}
	return tm
}

// stop cancels tm. A callback already running is not waited for; callers
// make their callbacks check, under their own lock, that they still apply.
func (tm *timer) stop() {
	if tm == nil {
		return
	}
	ts := tm.ts
	ts.mu.Lock()
	delete(ts.live, tm)
	ts.mu.Unlock()
	tm.t.Stop()
}

// close stops every timer, refuses new ones and cancels the callbacks'
// ctx (so that a callback blocked on a full bus returns). It returns the
// group to wait on for the callbacks running, nil before open. It is
// idempotent.
func (ts *timers) close() *callcore.Group {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.closed = true
	for tm := range ts.live {
		tm.t.Stop()
	}
	ts.live = nil
	if ts.g != nil {
		ts.g.Stop()
	}
	return ts.g
}

// count returns how many timers are scheduled.
func (ts *timers) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.live)
}
