package bus

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// A subscriber spreads its keys over shards by hash. Each shard is a
// bounded ring read by one runner goroutine, so a delivery costs one
// queue hop and a key's events are handled in order. When a handler runs
// for longer than Config.BlockedAfter, the bus's monitor detaches its runner
// and starts a new one for the shard; events for the blocked key wait in a
// lane of their own until the old runner, its handler returned, has handled
// them. So a blocked key holds up only itself.

// item is one queued delivery. It travels by value, so queuing allocates
// nothing, and is kept small (80 bytes): the envelope is rebuilt from it at
// delivery.
type item struct {
	ev    events.Event
	r     *route
	ctl   *control // nil for a plain delivery
	seq   uint64
	at    int64 // unix nanos
	id    events.ID
	cause events.ID
}

// control marks the rare items that are not plain deliveries.
type control struct {
	reply   chan reply      // the server's copy of a Request
	barrier *sync.WaitGroup // a drain barrier, which carries no event
}

func (it *item) envelope(node string) events.Envelope {
	return events.Envelope{Seq: it.seq, ID: it.id, Time: time.Unix(0, it.at), Node: node, Cause: it.cause}
}

// lane holds the events of one blocked key, in order.
type lane struct {
	buf     []item // ring
	head, n int
}

func (l *lane) push(it item) {
	if l.n == len(l.buf) {
		grown := make([]item, max(8, 2*len(l.buf)))
		for i := 0; i < l.n; i++ {
			grown[i] = l.buf[(l.head+i)%len(l.buf)]
		}
		l.buf, l.head = grown, 0
	}
	l.buf[(l.head+l.n)%len(l.buf)] = it
	l.n++
}

func (l *lane) pop() item {
	it := l.buf[l.head]
	l.buf[l.head] = item{}
	l.head = (l.head + 1) % len(l.buf)
	l.n--
	return it
}

// subscriber queues and runs the deliveries of one Subscriber.
type subscriber struct {
	m        *Memory
	name     string
	channels []string
	handle   Handler
	serve    Server
	capacity int // per shard and per blocked lane
	maxDet   int32
	shards   []*shard
	stats    *subStats

	stopped  atomic.Bool
	stop     chan struct{}
	wg       sync.WaitGroup
	detached atomic.Int32 // runners handling blocked keys

	haltOnce  sync.Once
	dropMu    sync.Mutex
	dropped   []droppedItem // what halt found undelivered
	unsubOnce sync.Once
	unsubErr  error
}

type droppedItem struct {
	id  events.ID
	typ string
	ch  string
}

// shard is one channel of a subscriber and its runner.
type shard struct {
	s *subscriber
	q *ring

	mu        sync.Mutex
	cur       *runner          // the runner reading ch
	blocked   map[string]*lane // keys whose handler runs on a detached runner
	nblocked  atomic.Int32
	laneSpace *sync.Cond // signalled when a blocked lane shrinks
	lastSeen  uint64     // monitor's view of cur.state at its last scan
}

// runner states: seq<<2 | busy | detached.
const (
	runBusy     = 1
	runDetached = 2
)

// runner is one goroutine reading a shard.
type runner struct {
	sh    *shard
	state atomic.Uint64
	cur   events.Event // the delivery in progress
	// ctx is handed to every handler this runner calls, its id set to the
	// event being handled: a context per delivery would be the one
	// allocation of a hop. Like an http.Request's context it is valid only
	// until the handler returns (see Handler).
	ctx  causeCtx
	acc  statBatch
	n    uint64
	mark time.Duration // end of the last timed handler, while in a run; else 0
}

func newSubscriber(m *Memory, sc Subscriber) *subscriber {
	n := m.cfg.Shards
	s := &subscriber{
		m:        m,
		name:     sc.Name,
		channels: append([]string(nil), sc.Channels...),
		handle:   sc.Handle,
		serve:    sc.Serve,
		capacity: max(sc.QueueSize/n, 16),
		maxDet:   int32(sc.MaxWorkers),
		shards:   make([]*shard, n),
		stats:    &subStats{},
		stop:     make(chan struct{}),
	}
	for i := range s.shards {
		sh := &shard{s: s, q: newRing(s.capacity), blocked: map[string]*lane{}}
		sh.laneSpace = sync.NewCond(&sh.mu)
		s.shards[i] = sh
	}
	return s
}

func (s *subscriber) newRunner(sh *shard) *runner {
	r := &runner{sh: sh}
	r.ctx.Context = s.m.baseCtx
	return r
}

// start starts one runner per shard.
func (s *subscriber) start() {
	for _, sh := range s.shards {
		r := s.newRunner(sh)
		sh.cur = r
		s.wg.Add(1)
		go r.loop()
	}
}

func (s *subscriber) shardOf(hash uint64) *shard {
	return s.shards[hash&uint64(len(s.shards)-1)] // len is a power of two
}

// enqueue queues it on its key's shard, waiting while the shard is full.
func (s *subscriber) enqueue(ctx context.Context, it *item, hash uint64) error {
	sh := s.shardOf(hash)
	if !sh.q.tryPush(it) {
		s.stats.blocked.Add(1)
		if err := sh.q.push(ctx, it, s.stop); err != nil {
			if err == ErrClosed {
				return err
			}
			return fmt.Errorf("%w: %q; %s %s not delivered: %w",
				ErrBackpressure, s.name, it.r.typ, it.id, err)
		}
	}
	if s.stopped.Load() { // raced with halt: the item may never be handled
		return ErrClosed
	}
	return nil
}

// loop reads the shard until the subscriber stops or the runner is
// detached, in which case it goes on with the blocked key's lane.
func (r *runner) loop() {
	s := r.sh.s
	defer s.wg.Done()
	for {
		var it item
		if !r.next(&it) {
			r.acc.flush()
			return
		}
		if s.stopped.Load() {
			r.acc.flush()
			s.drop(it)
			return
		}
		if it.ctl != nil && it.ctl.barrier != nil {
			r.acc.flush()
			it.ctl.barrier.Done()
			continue
		}
		if r.sh.nblocked.Load() > 0 && r.sh.divert(it) {
			continue
		}
		if !r.deliver(&it) {
			r.acc.flush()
			r.drainLane(it.ev.Key())
			return
		}
	}
}

// next takes the shard's next item into *it, waiting for one; it reports
// false once the subscriber has stopped. Before parking it publishes its
// statistics and yields a few times: publishers often come back within a
// microsecond, and waking a parked runner costs most of a hop.
func (r *runner) next(it *item) bool {
	q := r.sh.q
	if q.tryPop(it) {
		return true
	}
	r.mark = 0 // the run is over: waiting is not handler time
	r.acc.flush()
	for i := 0; i < spinYields; i++ {
		runtime.Gosched()
		if q.tryPop(it) {
			return true
		}
	}
	for {
		if r.sh.s.stopped.Load() {
			return false
		}
		if q.park(it) || q.tryPop(it) {
			return true
		}
	}
}

// spinYields is how often next yields before it parks.
const spinYields = 4

// deliver handles it and reports false when the monitor detached the
// runner meanwhile.
func (r *runner) deliver(it *item) bool {
	// cur is written before the state that says busy, and read by the
	// monitor only once it has detached the runner, after which the runner
	// never writes it again.
	r.cur = it.ev
	v := r.state.Load() + 4
	r.state.Store(v | runBusy)
	r.call(it)
	return r.state.CompareAndSwap(v|runBusy, v)
}

// call runs one delivery and records its statistics. Every control-plane
// delivery is timed; one RTP packet delivery in sampleEvery, since a clock
// read costs half a hop.
//
// In a run of back-to-back deliveries one handler's end is the next one's
// start, so a timed delivery costs one clock read, not two.
func (r *runner) call(it *item) {
	r.n++
	timing := !it.r.dataPlane || r.n%sampleEvery == 0
	t0 := r.mark
	if timing && t0 == 0 {
		t0 = mono()
	}
	r.ctx.id = it.id
	err := r.sh.s.call(&r.ctx, it)
	d := time.Duration(-1)
	r.mark = 0
	if timing {
		r.mark = mono()
		d = r.mark - t0
	}
	r.acc.add(it.r.stats, d, err)
}

// sampleEvery is the sampling rate of RTP packet handler timing.
const sampleEvery = 16

// divert queues it on its key's lane when the key is blocked; it waits
// while the lane is full.
func (sh *shard) divert(it item) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	key := it.ev.Key()
	for {
		// Look the lane up again after every wait: drainLane retires a
		// lane once it is empty, and an item pushed onto a retired lane
		// would never be handled. With the lane gone the key is no longer
		// blocked and the item takes the shard's queue.
		l := sh.blocked[key]
		if l == nil {
			return false
		}
		if l.n < sh.s.capacity || sh.s.stopped.Load() {
			l.push(it)
			return true
		}
		sh.laneSpace.Wait()
	}
}

// drainLane handles the events queued for key while the runner was
// blocked, then retires the key's lane and the runner.
func (r *runner) drainLane(key string) {
	sh := r.sh
	defer sh.s.detached.Add(-1)
	for {
		sh.mu.Lock()
		l := sh.blocked[key]
		if l.n == 0 || sh.s.stopped.Load() {
			if l.n == 0 {
				delete(sh.blocked, key)
				sh.nblocked.Add(-1)
			}
			sh.mu.Unlock()
			r.acc.flush()
			return
		}
		it := l.pop()
		sh.laneSpace.Broadcast()
		sh.mu.Unlock()
		r.call(&it)
		r.acc.flush()
	}
}

// watch is the monitor's check of one shard: a runner seen busy with the
// same delivery at two scans in a row is detached and replaced.
func (sh *shard) watch() {
	s := sh.s
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.cur
	v := r.state.Load()
	if v&runBusy == 0 || v != sh.lastSeen {
		sh.lastSeen = v
		return
	}
	if s.stopped.Load() || s.detached.Load() >= s.maxDet {
		return
	}
	if !r.state.CompareAndSwap(v, v|runDetached) {
		return // the handler returned just now
	}
	// The runner, when its handler returns, finds itself detached and
	// waits for sh.mu before it touches the lane: install it first.
	key := r.cur.Key()
	sh.blocked[key] = &lane{}
	sh.nblocked.Add(1)
	s.detached.Add(1)
	s.stats.detaches.Add(1)
	s.m.log.Debug("bus handler blocked; key set apart so the shard goes on",
		"subscriber", s.name, "key", key)
	next := s.newRunner(sh)
	sh.cur = next
	sh.lastSeen = 0
	s.wg.Add(1)
	go next.loop()
}

// call runs one delivery, isolating the bus from the handler's failures.
// It returns the handler's failure, already logged.
func (s *subscriber) call(ctx *causeCtx, it *item) (err error) {
	env := it.envelope(s.m.node)
	defer func() {
		if p := recover(); p != nil {
			buf := make([]byte, 4096)
			buf = buf[:runtime.Stack(buf, false)]
			err = fmt.Errorf("handler panic: %v\n%s", p, buf)
		}
		if err != nil {
			s.m.log.handlerError(s.name, it, err)
			if it.ctl != nil && it.ctl.reply != nil {
				it.ctl.reply <- reply{err: &callcore.Error{Code: callcore.CodeInternal,
					Message: fmt.Sprintf("%s failed on %s", s.name, it.r.typ), Err: err}}
			}
		}
	}()
	switch {
	case it.ctl != nil && it.ctl.reply != nil:
		res, rerr := s.serve(ctx, env, it.ev)
		if rerr == nil || callcore.ErrorCode(rerr) != callcore.CodeInternal {
			it.ctl.reply <- reply{res: res, err: rerr} // an answer, not a failure
			return nil
		}
		return rerr // the deferred func logs it and answers internal
	case s.handle != nil:
		return s.handle(ctx, env, it.ev)
	default:
		if _, rerr := s.serve(ctx, env, it.ev); callcore.ErrorCode(rerr) == callcore.CodeInternal {
			return rerr
		}
		return nil
	}
}

// barrier waits until every event queued on s before the call has been
// handled, or ctx ends. It reports whether s was found idle: no blocked lane.
func (s *subscriber) barrier(ctx context.Context) (bool, error) {
	var wg sync.WaitGroup
	wg.Add(len(s.shards))
	for _, sh := range s.shards {
		if s.stopped.Load() { // no runner would ever take the barrier
			return false, ErrClosed
		}
		if err := sh.q.push(ctx, &item{ctl: &control{barrier: &wg}}, s.stop); err != nil {
			return false, err
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return false, ctx.Err()
	case <-s.stop: // halted meanwhile: its runners are gone
		return false, ErrClosed
	}
	return s.detached.Load() == 0, nil
}

// halt refuses new items, stops the runners and drops what is still
// queued, answering requests with ErrClosed. It is idempotent.
func (s *subscriber) halt() {
	s.haltOnce.Do(func() {
		s.stopped.Store(true)
		close(s.stop)
		for _, sh := range s.shards {
			sh.mu.Lock()
			sh.laneSpace.Broadcast()
			sh.mu.Unlock()
			sh.q.wake() // a parked runner then sees stopped
		}
	})
}

// drop records an item that will not be handled, answering a request.
func (s *subscriber) drop(it item) {
	switch {
	case it.ctl != nil && it.ctl.barrier != nil:
		it.ctl.barrier.Done()
		return
	}
	s.dropMu.Lock()
	s.dropped = append(s.dropped, droppedItem{id: it.id, typ: it.r.typ, ch: it.r.ch.name})
	s.dropMu.Unlock()
	if it.ctl != nil && it.ctl.reply != nil {
		it.ctl.reply <- reply{err: &callcore.Error{Code: callcore.CodeUnavailable,
			Message: "bus closed before the command was handled", Err: ErrClosed}}
	}
}

// collectDropped empties the stopped subscriber's queues into s.dropped.
// Call it once the runners have returned.
func (s *subscriber) collectDropped() {
	drop := s.drop
	for _, sh := range s.shards {
		var it item
		for sh.q.tryPop(&it) {
			drop(it)
		}
		sh.mu.Lock()
		for _, l := range sh.blocked {
			for l.n > 0 {
				drop(l.pop())
			}
		}
		sh.mu.Unlock()
	}
}

// depth returns the events queued, for metrics.
func (s *subscriber) depth() int {
	n := 0
	for _, sh := range s.shards {
		n += sh.q.len()
		sh.mu.Lock()
		for _, l := range sh.blocked {
			n += l.n
		}
		sh.mu.Unlock()
	}
	return n
}

// Unsubscribe stops new deliveries to s, drains its queue until ctx ends,
// then stops its runners; see Subscription.
func (s *subscriber) Unsubscribe(ctx context.Context) error {
	s.unsubOnce.Do(func() {
		s.m.unsubscribe(s)
		// Publishers that read the subscriber list before the removal may
		// still be sending; a barrier round after them settles that.
		for {
			before := s.m.completed()
			idle, err := s.barrier(ctx)
			if err != nil || (idle && s.m.completed() == before) {
				break
			}
			if !idle {
				waitTick(ctx)
			}
		}
		s.halt()
		if !waitAll([]*subscriber{s}, s.m.cfg.StopGrace) {
			s.unsubErr = &DrainError{Undelivered: s.depth(), Stuck: []string{s.name}}
			return
		}
		s.collectDropped()
		if len(s.dropped) > 0 {
			s.unsubErr = &DrainError{Undelivered: len(s.dropped), Examples: s.droppedExamples()}
		}
	})
	return s.unsubErr
}

func waitTick(ctx context.Context) {
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (s *subscriber) droppedExamples() []string {
	var out []string
	for i, d := range s.dropped {
		if i == 5 {
			out = append(out, fmt.Sprintf("… and %d more", len(s.dropped)-i))
			break
		}
		out = append(out, fmt.Sprintf("%s: %s/%s %s", s.name, d.ch, d.typ, d.id))
	}
	return out
}
