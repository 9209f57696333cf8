package media

import (
	"sync/atomic"
	"time"
)

// runClock is the sender clock: one goroutine for every session, ticking
// every h.tick on absolute deadlines (start + n·tick), so that the period
// does not drift with the time each tick takes. When it wakes more than a
// tick late it skips the ticks it missed (counted) rather than bursting
// them: a far end's jitter buffer copes with a gap better than with a
// burst, and the RTP timestamps still follow wall time (they advance by
// the tick index).
func (h *Hub) runClock(stop <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	var n uint64
	for {
		n++
		deadline := start.Add(time.Duration(n) * h.tick)
		if wait := time.Until(deadline); wait > 0 {
			timer.Reset(wait)
			select {
			case <-stop:
				return
			case <-timer.C:
			}
		} else {
			select {
			case <-stop:
				return
			default:
			}
		}
		late := time.Since(deadline)
		if late >= h.tick {
			skip := uint64(late / h.tick)
			n += skip
			h.pacing.skipped.Add(skip)
			late -= time.Duration(skip) * h.tick
		}
		h.pacing.observe(late)
		h.runTick(n)
	}
}

// runTick produces tick n of every started session: first the received
// frame of each session a bridged peer takes audio from is taken from its
// queue (so that it is ready whatever the list's order), then each
// session's packet is produced and published.
func (h *Hub) runTick(n uint64) {
	list := *h.active.Load()
	for _, s := range list {
		if s.peered.Load() {
			s.mu.Lock()
			s.popReceived(n)
			s.mu.Unlock()
		}
	}
	for _, s := range list {
		h.sendFrame(s, n)
	}
}

// PacingStats describes the sender clock's pacing since Open: how many
// ticks ran, how many were skipped because the clock woke more than a tick
// late, and the lateness of the ticks that ran relative to their deadline
// (percentiles from a histogram: 10 µs resolution up to 2 ms, 100 µs up to
// 20 ms, 1 ms up to 200 ms).
type PacingStats struct {
	Ticks, Skipped uint64
	P50, P99, Max  time.Duration
}

// Pacing returns the sender clock's pacing figures.
func (h *Hub) Pacing() PacingStats { return h.pacing.stats() }

// The lateness histogram's buckets: fine where the pacing target (p99 ≤
// 2 ms) is judged, coarse beyond.
const (
	fineBuckets   = 200 // 10 µs each, 0-2 ms
	mediumBuckets = 180 // 100 µs each, 2-20 ms
	coarseBuckets = 180 // 1 ms each, 20-200 ms
	pacingBuckets = fineBuckets + mediumBuckets + coarseBuckets + 1
)

// pacing is the clock's lateness histogram. The clock is its only
// writer; readers may run at any time, so every cell is atomic.
type pacing struct {
	ticks, skipped atomic.Uint64
	max            atomic.Int64
	buckets        [pacingBuckets]atomic.Uint64
}

func bucketOf(d time.Duration) int {
	switch {
	case d < 0:
		return 0
	case d < 2*time.Millisecond:
		return int(d / (10 * time.Microsecond))
	case d < 20*time.Millisecond:
		return fineBuckets + int((d-2*time.Millisecond)/(100*time.Microsecond))
	case d < 200*time.Millisecond:
		return fineBuckets + mediumBuckets + int((d-20*time.Millisecond)/time.Millisecond)
	}
	return pacingBuckets - 1
}

// bucketTop returns the upper bound of bucket i.
func bucketTop(i int) time.Duration {
	switch {
	case i < fineBuckets:
		return time.Duration(i+1) * 10 * time.Microsecond
	case i < fineBuckets+mediumBuckets:
		return 2*time.Millisecond + time.Duration(i-fineBuckets+1)*100*time.Microsecond
	case i < pacingBuckets-1:
		return 20*time.Millisecond + time.Duration(i-fineBuckets-mediumBuckets+1)*time.Millisecond
	}
	return time.Duration(1<<63 - 1)
}

func (p *pacing) observe(late time.Duration) {
	late = max(late, 0)
	p.ticks.Add(1)
	p.buckets[bucketOf(late)].Add(1)
	if int64(late) > p.max.Load() {
		p.max.Store(int64(late))
	}
}

func (p *pacing) stats() PacingStats {
	st := PacingStats{Ticks: p.ticks.Load(), Skipped: p.skipped.Load(), Max: time.Duration(p.max.Load())}
	var counts [pacingBuckets]uint64
	var total uint64
	for i := range p.buckets {
		counts[i] = p.buckets[i].Load()
		total += counts[i]
	}
	pct := func(q float64) time.Duration {
		if total == 0 {
			return 0
		}
		want := uint64(q*float64(total) + 0.999999)
		var cum uint64
		for i, c := range counts {
			if cum += c; cum >= want {
				return min(bucketTop(i), st.Max)
			}
		}
		return st.Max
	}
	st.P50, st.P99 = pct(0.50), pct(0.99)
	return st
}
