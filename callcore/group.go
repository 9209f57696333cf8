package callcore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// StopGrace is how long Wait, once its context has ended, still gives the
// goroutines of a stopped group to return before it reports them: long
// enough for a goroutine woken by its cancelled context or closed socket
// to be scheduled, short enough to add little to a shutdown's deadline.
const StopGrace = 50 * time.Millisecond

// Group starts the goroutines of one component and counts them by name, so
// that the component's Close can stop them, wait for them within its
// deadline and say which ones outlived it (nats-server's startGoRoutine).
// Create it with NewGroup; its methods are safe for concurrent use.
type Group struct {
	name   string
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	stopped bool
	running map[string]int // name → goroutines of that name running
	n       int
	idle    chan struct{} // closed when n drops to 0; nil while n is 0
}

// NewGroup returns a group called name (the prefix of its reports) whose
// goroutines receive a context derived from ctx, which Stop cancels. It
// starts nothing.
func NewGroup(ctx context.Context, name string) *Group {
	g := &Group{name: name, running: make(map[string]int)}
	g.ctx, g.cancel = context.WithCancel(ctx)
	return g
}

// Context returns the context the group's goroutines receive. It ends when
// Stop is called or the parent given to NewGroup ends.
func (g *Group) Context() context.Context { return g.ctx }

// Go runs fn in a new goroutine, counted under name until fn returns. It
// reports false, and runs nothing, once Stop has been called.
func (g *Group) Go(name string, fn func(ctx context.Context)) bool {
	if !g.enter(name) {
		return false
	}
	go func() {
		defer g.leave(name)
		fn(g.ctx)
	}()
	return true
}

// Do runs fn on the calling goroutine, counted under name as if Go had
// started it: for the callbacks that a library or time.AfterFunc runs on a
// goroutine of its own, which Close must wait for all the same. It reports
// false, and runs nothing, once Stop has been called.
func (g *Group) Do(name string, fn func(ctx context.Context)) bool {
	if !g.enter(name) {
		return false
	}
	defer g.leave(name)
	fn(g.ctx)
	return true
}

func (g *Group) enter(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	if g.n == 0 {
		g.idle = make(chan struct{})
	}
	g.n++
	g.running[name]++
	return true
}

func (g *Group) leave(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c := g.running[name] - 1; c > 0 {
		g.running[name] = c
	} else {
		delete(g.running, name)
	}
	g.n--
	if g.n == 0 {
		close(g.idle)
		g.idle = nil
	}
}

// Stop cancels the goroutines' context and refuses new goroutines from
// then on. It does not wait for the running ones: Wait does. Stop is
// idempotent.
func (g *Group) Stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.cancel()
}

// Stopped reports whether Stop has been called.
func (g *Group) Stopped() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stopped
}

// Running returns the names of the goroutines running now, one entry per
// goroutine, sorted.
func (g *Group) Running() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.runningLocked()
}

func (g *Group) runningLocked() []string {
	names := make([]string, 0, g.n)
	for name, c := range g.running {
		for range c {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Wait returns nil once no goroutine of the group is running. When ctx ends
// first it returns a *RunningError naming the goroutines still running,
// which wraps ctx's error; after Stop, that is those still running
// StopGrace past the end of ctx, so that goroutines which return as soon
// as they are told to are not reported. Wait stops nothing: call Stop
// first so that the goroutines return.
func (g *Group) Wait(ctx context.Context) error {
	g.mu.Lock()
	idle := g.idle
	g.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	if g.Stopped() {
		t := time.NewTimer(StopGrace)
		defer t.Stop()
		select {
		case <-idle:
			return nil
		case <-t.C:
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == 0 {
		return nil
	}
	return &RunningError{Group: g.name, Running: g.runningLocked(), Err: ctx.Err()}
}

// RunningError is Wait's report that its context ended while goroutines of
// the group were still running.
type RunningError struct {
	// Group is the group's name.
	Group string
	// Running names the goroutines still running, one entry per
	// goroutine, sorted.
	Running []string
	// Err is the context's error.
	Err error
}

// Error says how many goroutines of which names are still running, e.g.
// "rtp: 3 goroutines still running (rtcp read ×2, report timer): context
// deadline exceeded".
func (e *RunningError) Error() string {
	var parts []string
	for i := 0; i < len(e.Running); {
		j := i + 1
		for j < len(e.Running) && e.Running[j] == e.Running[i] {
			j++
		}
		if j-i > 1 {
			parts = append(parts, fmt.Sprintf("%s ×%d", e.Running[i], j-i))
		} else {
			parts = append(parts, e.Running[i])
		}
		i = j
	}
	noun := "goroutines"
	if len(e.Running) == 1 {
		noun = "goroutine"
	}
	return fmt.Sprintf("%s: %d %s still running (%s): %v", e.Group, len(e.Running), noun, strings.Join(parts, ", "), e.Err)
}

// Unwrap returns the context's error.
func (e *RunningError) Unwrap() error { return e.Err }
