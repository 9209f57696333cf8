package bus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/callbus/callbus/callcore/events"
)

// sequencer numbers the control-plane events, keeps the retained history
// and hands every event to the taps, all under one lock so that taps see
// seqs in order. Taps are offered events without waiting: a full tap
// records a gap instead.
type sequencer struct {
	mu       sync.Mutex
	seq      uint64
	start    uint64
	hist     []item // ring indexed by seq
	taps     []*tap
	dataTaps atomic.Int32
	clock    *coarseClock
	node     string
	frames   frameCache // the encoded frames the taps share (Record.Frame)
}

func (q *sequencer) init(history int, start uint64, clock *coarseClock, node string) {
	q.clock, q.node = clock, node
	q.hist = make([]item, history)
	q.seq, q.start = start, start
}

func (q *sequencer) last() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.seq
}

// observe gives a control-plane item its seq and time, retains it, and
// offers it to the taps; a data-plane item only to the taps that want it.
func (q *sequencer) observe(it *item) {
	q.mu.Lock()
	if !it.r.dataPlane {
		q.seq++
		it.seq = q.seq
		it.at = q.clock.nanos() // under the lock: time order is seq order
		q.hist[q.seq%uint64(len(q.hist))] = *it
	}
	if len(q.taps) > 0 {
		env := it.envelope(q.node)
		for _, t := range q.taps {
			if it.r.dataPlane && !t.dataPlane {
				continue
			}
			t.offer(env, it.ev)
		}
	}
	q.mu.Unlock()
}

// oldestLocked returns the seq of the oldest retained event.
func (q *sequencer) oldestLocked() uint64 {
	if q.seq-q.start <= uint64(len(q.hist)) {
		return q.start + 1
	}
	return q.seq - uint64(len(q.hist)) + 1
}

const replayChunk = 256

// readHistory appends the retained events with seq in [from, to) to dst,
// at most replayChunk of them, preceded by a gap for any no longer
// retained. It returns dst and the next seq to read.
func (q *sequencer) readHistory(from, to uint64, dst []Record) ([]Record, uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if oldest := q.oldestLocked(); from < oldest {
		last := min(oldest, to) - 1
		dst = append(dst, Record{Gap: &Gap{FromSeq: from, ToSeq: last, Dropped: last - from + 1, Reason: GapHistory}})
		from = last + 1
	}
	for ; from < to && len(dst) < replayChunk; from++ {
		it := &q.hist[from%uint64(len(q.hist))]
		dst = append(dst, Record{Envelope: it.envelope(q.node), Event: it.ev, frames: &q.frames})
	}
	return dst, from
}

func (q *sequencer) add(t *tap, cfg TapConfig) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if cfg.Replay {
		if cfg.Since > q.seq {
			return fmt.Errorf("%w: since %d, newest %d", ErrSinceAhead, cfg.Since, q.seq)
		}
		t.replayNext, t.liveFrom = cfg.Since+1, q.seq+1
	}
	q.taps = append(q.taps, t)
	if t.dataPlane {
		q.dataTaps.Add(1)
	}
	return nil
}

func (q *sequencer) remove(t *tap) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, o := range q.taps {
		if o == t {
			q.taps = append(q.taps[:i:i], q.taps[i+1:]...)
			if t.dataPlane {
				q.dataTaps.Add(-1)
			}
			return true
		}
	}
	return false
}

// tap is one observer: a bounded ring of records filled by the sequencer
// and read by one goroutine through Next.
type tap struct {
	q         *sequencer
	name      string
	dataPlane bool
	stats     *tapStats

	mu     sync.Mutex
	buf    []Record
	head   int
	n      int
	gap    *Gap // missed events not yet reported, all after buf's
	closed bool
	notify chan struct{}

	// Reader-side replay state, touched only by Next.
	replayNext, liveFrom uint64
	replayBuf            []Record
	replayPos            int
}

// Tap starts observing the bus; see Bus and TapConfig. It returns
// ErrSinceAhead when cfg.Since is beyond the newest seq, and ErrClosed after
// Close.
func (m *Memory) Tap(cfg TapConfig) (Tap, error) {
	if m.state.Load() == stateClosed {
		return nil, ErrClosed
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = m.cfg.TapBuffer
	}
	if cfg.Buffer < 2 {
		cfg.Buffer = 2 // room for a gap and the event after it
	}
	t := &tap{
		q:         &m.seq,
		name:      cfg.Name,
		dataPlane: cfg.DataPlane,
		stats:     m.tapStats(cfg.Name),
		buf:       make([]Record, cfg.Buffer),
		notify:    make(chan struct{}, 1),
	}
	if err := m.seq.add(t, cfg); err != nil {
		return nil, err
	}
	return t, nil
}

// offer queues a record or, when the ring is full, adds it to the gap.
// It runs under the sequencer's lock and never waits for the reader.
func (t *tap) offer(env events.Envelope, ev events.Event) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	if t.gap != nil {
		if t.n+2 > len(t.buf) {
			t.extendGap(env)
			t.mu.Unlock()
			return
		}
		t.push(Record{Gap: t.gap})
		t.gap = nil
	}
	if t.n == len(t.buf) {
		t.gap = &Gap{Reason: GapLagging}
		t.stats.gaps.Add(1)
		t.extendGap(env)
	} else {
		t.push(Record{Envelope: env, Event: ev, frames: &t.q.frames})
	}
	t.mu.Unlock()
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

func (t *tap) extendGap(env events.Envelope) {
	if env.Seq != 0 {
		if t.gap.FromSeq == 0 {
			t.gap.FromSeq = env.Seq
		}
		t.gap.ToSeq = env.Seq
	}
	t.gap.Dropped++
	t.stats.missed.Add(1)
}

func (t *tap) push(r Record) {
	t.buf[(t.head+t.n)%len(t.buf)] = r
	t.n++
}

// Next returns the next record; see Tap. It must be called from one
// goroutine at a time.
func (t *tap) Next(ctx context.Context) (Record, error) {
	for t.replayPos < len(t.replayBuf) || t.replayNext < t.liveFrom {
		if t.replayPos < len(t.replayBuf) {
			r := t.replayBuf[t.replayPos]
			t.replayBuf[t.replayPos] = Record{}
			t.replayPos++
			return r, nil
		}
		t.replayBuf, t.replayNext = t.q.readHistory(t.replayNext, t.liveFrom, t.replayBuf[:0])
		t.replayPos = 0
	}
	for {
		t.mu.Lock()
		if t.n > 0 {
			r := t.buf[t.head]
			t.buf[t.head] = Record{}
			t.head = (t.head + 1) % len(t.buf)
			t.n--
			t.mu.Unlock()
			return r, nil
		}
		if g := t.gap; g != nil {
			t.gap = nil
			t.mu.Unlock()
			return Record{Gap: g}, nil
		}
		if t.closed {
			t.mu.Unlock()
			return Record{}, ErrClosed
		}
		t.mu.Unlock()
		select {
		case <-t.notify:
		case <-ctx.Done():
			return Record{}, ctx.Err()
		}
	}
}

// Close stops the tap; records already queued can still be read.
func (t *tap) Close() error {
	t.q.remove(t)
	t.shut()
	return nil
}

func (t *tap) shut() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	select {
	case t.notify <- struct{}{}:
	default:
	}
}
