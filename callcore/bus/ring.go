package bus

import (
	"context"
	"sync/atomic"
	"unsafe"
)

// ring is a shard's queue: a bounded multi-producer, single-consumer ring
// of items after Dmitry Vyukov's bounded MPMC queue. A Go channel costs a
// hop two lock round trips shared by both sides; here a publish is one CAS
// on the tail and one store on its cell, and a receive touches only the
// cell, which is what lets the bus stay near a bare channel's cost while
// doing more per event.
//
// The consumer parks on notify when the ring is empty, after announcing it
// in sleeping; a producer that finds it asleep after filling a cell wakes it.
// Both sides store, then load the other's flag (sequentially consistent
// atomics), so at least one of them sees the other and no wake-up is lost.
// Producers facing a full ring wait on space, announced in waiters, the
// same way.
type ring struct {
	mask  uint64
	cells []cell

	_    cacheLinePad
	tail atomic.Uint64 // next position producers claim
	_    cacheLinePad
	head uint64 // next position the consumer reads; consumer-owned
	// taken mirrors head for readers other than the consumer (metrics),
	// published when the consumer goes idle.
	taken atomic.Uint64
	_     cacheLinePad

	sleeping atomic.Int32 // 1 while the consumer is parked or about to be
	waiters  atomic.Int32 // producers waiting for space
	notify   chan struct{}
	space    chan struct{}
}

// cell is padded to 128 bytes, two cache lines, so that a producer filling
// one cell and the consumer reading its neighbour do not share a line.
type cell struct {
	seq atomic.Uint64
	it  item
	_   [128 - 8 - unsafe.Sizeof(item{})]byte
}

// newRing returns a ring holding at least n items (rounded up to a power of 2).
func newRing(n int) *ring {
	size := uint64(2)
	for size < uint64(n) {
		size <<= 1
	}
	q := &ring{
		mask:   size - 1,
		cells:  make([]cell, size),
		notify: make(chan struct{}, 1),
		space:  make(chan struct{}, 1),
	}
	for i := range q.cells {
		q.cells[i].seq.Store(uint64(i))
	}
	return q
}

// tryPush queues *it unless the ring is full.
func (q *ring) tryPush(it *item) bool {
	pos := q.tail.Load()
	for {
		c := &q.cells[pos&q.mask]
		seq := c.seq.Load()
		switch dif := int64(seq - pos); {
		case dif == 0:
			if q.tail.CompareAndSwap(pos, pos+1) {
				c.it = *it
				c.seq.Store(pos + 1)
				if q.sleeping.Load() != 0 && q.sleeping.CompareAndSwap(1, 0) {
					select {
					case q.notify <- struct{}{}:
					default:
					}
				}
				return true
			}
			pos = q.tail.Load()
		case dif < 0:
			return false // full: the cell still holds an item a lap behind
		default:
			pos = q.tail.Load() // another producer took pos
		}
	}
}

// push queues *it, waiting while the ring is full until ctx ends or stop
// closes. It reports ctx's error, or errStopped.
func (q *ring) push(ctx context.Context, it *item, stop <-chan struct{}) error {
	for {
		if q.tryPush(it) {
			return nil
		}
		q.waiters.Add(1)
		if q.tryPush(it) { // the consumer may have made room before it saw us
			q.waiters.Add(-1)
			return nil
		}
		select {
		case <-q.space:
			q.waiters.Add(-1)
		case <-ctx.Done():
			q.waiters.Add(-1)
			return ctx.Err()
		case <-stop:
			q.waiters.Add(-1)
			return ErrClosed
		}
	}
}

// tryPop takes the next item into *it, reporting false when the ring is
// empty (or its next cell is still being filled). Consumer only.
func (q *ring) tryPop(it *item) bool {
	c := &q.cells[q.head&q.mask]
	if c.seq.Load() != q.head+1 {
		return false
	}
	*it = c.it
	c.it = item{} // let the event be collected
	c.seq.Store(q.head + q.mask + 1)
	q.head++
	if q.waiters.Load() != 0 {
		select {
		case q.space <- struct{}{}:
		default:
		}
	}
	return true
}

// park waits until a producer may have queued something, or wake is called.
// Consumer only.
func (q *ring) park(it *item) bool {
	q.taken.Store(q.head)
	q.sleeping.Store(1)
	if q.tryPop(it) {
		q.sleeping.Store(0)
		return true
	}
	<-q.notify
	q.sleeping.Store(0)
	return false
}

// wake unparks the consumer, e.g. to have it notice that it should stop.
func (q *ring) wake() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// len returns roughly how many items are queued; for metrics.
func (q *ring) len() int {
	t, h := q.tail.Load(), q.taken.Load()
	if t < h {
		return 0
	}
	return int(t - h)
}
