package bus

import (
	"sync/atomic"
	"time"
)

// A clock read costs about 50 ns on this project's 2-core VMs, half a bare
// channel hop, so Publish reads none: envelopes are stamped with a coarse
// clock that the bus's ticker advances every coarseTick. Envelope times thus
// have millisecond resolution; seq, not time, orders events.

const coarseTick = time.Millisecond

// coarseClock is a wall clock with coarseTick resolution, read with one
// atomic load.
type coarseClock struct {
	unix atomic.Int64 // unix nanos; 0 while the ticker is not running
}

// nanos returns the coarse time in unix nanos, or the precise time while
// the ticker is not running.
func (c *coarseClock) nanos() int64 {
	if n := c.unix.Load(); n != 0 {
		return n
	}
	return time.Now().UnixNano()
}

// ticker is the bus's one background goroutine: it advances the coarse
// clock and, every BlockedAfter/2, has the monitor look for blocked handlers.
func (m *Memory) ticker() {
	defer close(m.tickDone)
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	scanEvery := max(int(m.cfg.BlockedAfter/2/coarseTick), 1)
	for n := 0; ; n++ {
		select {
		case now := <-t.C:
			m.coarse.unix.Store(now.UnixNano())
			if n%scanEvery == 0 {
				m.watch()
			}
		case <-m.tickStop:
			m.coarse.unix.Store(0)
			return
		}
	}
}

// watch checks every shard for a handler blocked since the last scan.
func (m *Memory) watch() {
	m.mu.Lock()
	subs := append([]*subscriber(nil), m.subs...)
	m.mu.Unlock()
	for _, s := range subs {
		for _, sh := range s.shards {
			sh.watch()
		}
	}
}

// monoStart anchors monotonic readings for handler timing.
var monoStart = time.Now()

// mono returns the monotonic time since the process started: one clock read.
func mono() time.Duration { return time.Since(monoStart) }
