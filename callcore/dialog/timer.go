package dialog

import (
	"context"
	"sync"
	"time"
)

// timers owns every timer of the hub, so that Close can stop them all and
// wait for callbacks that are already running. A timer is a time.AfterFunc:
// no goroutine exists until it fires.
type timers struct {
	mu     sync.Mutex
	closed bool
	live   map[*timer]struct{}
	wg     sync.WaitGroup
}

// timer is one scheduled callback; a nil *timer is a stopped one.
type timer struct {
	ts *timers
	t  *time.Timer
}

// after schedules fn after d. It returns nil once close has begun.
func (ts *timers) after(d time.Duration, fn func()) *timer {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return nil
	}
	if ts.live == nil {
		ts.live = make(map[*timer]struct{})
	}
	tm := &timer{ts: ts}
	ts.wg.Add(1)
	// The callback takes ts.mu first, so it cannot run before tm is live.
	tm.t = time.AfterFunc(d, func() {
		defer ts.wg.Done()
		ts.mu.Lock()
		_, ok := ts.live[tm]
		delete(ts.live, tm)
		ts.mu.Unlock()
		if ok {
			fn()
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
	_, ok := ts.live[tm]
	delete(ts.live, tm)
	ts.mu.Unlock()
	if ok && tm.t.Stop() {
		ts.wg.Done()
	}
}

// close stops every timer, refuses new ones, cancels the callbacks' ctx
// (so that a callback blocked on a full bus returns) and waits for running
// callbacks. It is idempotent.
func (ts *timers) close(cancel context.CancelFunc) {
	ts.mu.Lock()
	ts.closed = true
	live := ts.live
	ts.live = nil
	ts.mu.Unlock()
	for tm := range live {
		if tm.t.Stop() {
			ts.wg.Done()
		}
	}
	if cancel != nil {
		cancel()
	}
	ts.wg.Wait()
}

// count returns how many timers are scheduled.
func (ts *timers) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.live)
}
