package bus

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// DrainError reports what Close or Unsubscribe could not finish.
type DrainError struct {
	// Undelivered counts the queued events dropped at the deadline.
	Undelivered int
	// Examples names some of them: "subscriber: channel/type id".
	Examples []string
	// Stuck names the subscribers whose handlers had not returned StopGrace
	// after the deadline; their goroutines are left running.
	Stuck []string
}

// Error summarises the report.
func (e *DrainError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bus: %d events undelivered", e.Undelivered)
	if len(e.Examples) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(e.Examples, "; "))
	}
	if len(e.Stuck) > 0 {
		fmt.Fprintf(&b, "; handlers still running in %s", strings.Join(e.Stuck, ", "))
	}
	return b.String()
}

// Close drains and stops the bus; see Bus. While it drains, handlers may
// still publish (their follow-on events are part of the drain); once ctx
// ends or no event is left, Publish returns ErrClosed, what is still queued
// is dropped and reported, handler contexts are cancelled, and Close waits
// up to Config.StopGrace for running handlers. Taps return their remaining
// records, then ErrClosed. Close is idempotent.
func (m *Memory) Close(ctx context.Context) error {
	m.closeMu.Lock()
	defer m.closeMu.Unlock()
	if m.closed {
		return m.closeErr
	}
	m.closed = true
	m.state.Store(stateDraining)
	m.drain(ctx)
	m.state.Store(stateClosed)

	m.mu.Lock()
	subs := append([]*subscriber(nil), m.subs...)
	m.mu.Unlock()
	for _, s := range subs {
		s.halt()
	}
	m.cancel()
	var rep DrainError
	grace := time.Now().Add(m.cfg.StopGrace)
	for _, s := range subs {
		if !waitAll([]*subscriber{s}, time.Until(grace)) {
			// Its runners are still in a handler: leave its queues to
			// them (they drop what they find) and report the count.
			rep.Stuck = append(rep.Stuck, s.name)
			rep.Undelivered += s.depth()
			continue
		}
		s.collectDropped()
		rep.Undelivered += len(s.dropped)
		if len(s.dropped) > 0 && len(rep.Examples) < 10 {
			rep.Examples = append(rep.Examples, s.droppedExamples()...)
		}
	}
	if m.tickStarted() {
		close(m.tickStop)
		<-m.tickDone
	}

	m.seq.mu.Lock()
	taps := m.seq.taps
	m.seq.taps = nil
	m.seq.dataTaps.Store(0)
	m.seq.mu.Unlock()
	for _, t := range taps {
		t.shut()
	}
	if rep.Undelivered > 0 || len(rep.Stuck) > 0 {
		m.closeErr = &rep
	}
	return m.closeErr
}

// drain returns once every event published so far has been handled, with
// no publish in between, or when ctx ends. Each round sends a barrier
// through every shard; a round during which no publish completed, and that
// found no blocked key, proves the bus idle.
func (m *Memory) drain(ctx context.Context) {
	for ctx.Err() == nil {
		m.mu.Lock()
		subs := append([]*subscriber(nil), m.subs...)
		m.mu.Unlock()
		before := m.completed()
		idle := true
		for _, s := range subs {
			ok, err := s.barrier(ctx)
			if err != nil {
				return
			}
			idle = idle && ok
		}
		if idle && m.completed() == before {
			return
		}
		if !idle {
			waitTick(ctx)
		}
	}
}

// waitAll waits up to grace for the runners of subs to return.
func waitAll(subs []*subscriber, grace time.Duration) bool {
	done := make(chan struct{})
	go func() {
		for _, s := range subs {
			s.wg.Wait()
		}
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
