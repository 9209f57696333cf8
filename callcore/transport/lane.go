package transport

import (
	"context"
	"fmt"
	"sync"
)

// maxLaneJobs bounds the sends queued for one key. A SIP dialog has a
// handful in flight at most; thousands mean a stuck peer or a loop, and
// are refused (the bus counts and logs the handler error) rather than held.
const maxLaneJobs = 1024

// laneSet runs jobs in order per key, off the bus handler: the handler
// returns at once, and a key's sends (180 then 200, INVITE then CANCEL)
// still leave in the order the dialog published them. A lane's goroutine
// exists only while it has work.
type laneSet struct {
	t     *Hub
	mu    sync.Mutex
	lanes map[string]*lane
	idle  chan struct{} // closed when the last lane empties; nil when idle
}

type lane struct {
	jobs []func()
}

func (s *laneSet) init(t *Hub) {
	s.t = t
	s.lanes = make(map[string]*lane)
}

// run queues job on key's lane, starting the lane's goroutine if idle. It
// returns an error when the lane is full or the transport is closed.
func (s *laneSet) run(key string, job func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.lanes[key]; ok {
		if len(l.jobs) >= maxLaneJobs {
			return fmt.Errorf("transport: key %s: %d sends already queued", key, len(l.jobs))
		}
		l.jobs = append(l.jobs, job)
		return nil
	}
	l := &lane{jobs: []func(){job}}
	if !s.t.g.Go("send lane", func(context.Context) { s.drain(key, l) }) {
		return ErrClosed
	}
	if len(s.lanes) == 0 {
		s.idle = make(chan struct{})
	}
	s.lanes[key] = l
	return nil
}

// idleCh returns a channel closed once no lane has work, or nil when
// none has.
func (s *laneSet) idleCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lanes) == 0 {
		return nil
	}
	return s.idle
}

func (s *laneSet) drain(key string, l *lane) {
	for {
		s.mu.Lock()
		if len(l.jobs) == 0 {
			delete(s.lanes, key)
			if len(s.lanes) == 0 {
				close(s.idle)
				s.idle = nil
			}
			s.mu.Unlock()
			return
		}
		job := l.jobs[0]
		l.jobs[0] = nil
		l.jobs = l.jobs[1:]
		s.mu.Unlock()
		job()
	}
}
