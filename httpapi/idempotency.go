package httpapi

import (
	"container/list"
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/callbus/callbus/callcore"
)

// How many Idempotency-Keys are remembered, and for how long.
const (
	idempotencyCapacity = 100_000
	idempotencyTTL      = 24 * time.Hour
)

// idempotency remembers, per Idempotency-Key, the request body's digest
// and the call it created. It is in memory and per node: a restart, or a
// retry that reaches another node, forgets the key. It is bounded: past
// capacity the least recently used key is forgotten, and a key is
// forgotten ttl after it was first used.
type idempotency struct {
	mu       sync.Mutex
	entries  map[string]*list.Element // of *idemEntry
	lru      list.List                // front: most recently used
	capacity int
	ttl      time.Duration
	now      func() time.Time
}

type idemEntry struct {
	key     string
	sum     [sha256.Size]byte
	created time.Time
	done    chan struct{} // closed once the first request finished
	id      string        // the call created; "" while running or after a failure
}

func newIdempotency(capacity int, ttl time.Duration, now func() time.Time) *idempotency {
	return &idempotency{entries: make(map[string]*list.Element), capacity: capacity, ttl: ttl, now: now}
}

// do runs create once per key: the first request under key runs it; a
// later one with the same body digest waits for the first and gets its
// id with replayed set; one with another digest is refused with
// validation_failed naming the Idempotency-Key header. When create fails,
// the key is forgotten so that a retry runs it again.
func (m *idempotency) do(ctx context.Context, key string, sum [sha256.Size]byte,
	create func() (string, error)) (id string, replayed bool, err error) {
	for {
		m.mu.Lock()
		e := m.lookup(key)
		if e == nil {
			e = &idemEntry{key: key, sum: sum, created: m.now(), done: make(chan struct{})}
			m.insert(e)
			m.mu.Unlock()
			id, err := create()
			m.mu.Lock()
			if err != nil {
				m.remove(e)
			} else {
				e.id = id
			}
			close(e.done)
			m.mu.Unlock()
			return id, false, err
		}
		m.mu.Unlock()
		if e.sum != sum {
			return "", false, invalid(HeaderIdempotencyKey,
				"%s was used with another request body; use a new key for a new call", HeaderIdempotencyKey)
		}
		select {
		case <-e.done:
		case <-ctx.Done():
			return "", false, &callcore.Error{Code: callcore.CodeUnavailable,
				Message: "the first request with this " + HeaderIdempotencyKey + " is still running", Err: ctx.Err()}
		}
		m.mu.Lock()
		id := e.id
		m.mu.Unlock()
		if id != "" {
			return id, true, nil
		}
		// The first request failed and forgot the key: run it again.
	}
}

// lookup returns the live entry of key, marking it used; nil when there
// is none or it expired. m.mu is held.
func (m *idempotency) lookup(key string) *idemEntry {
	el, ok := m.entries[key]
	if !ok {
		return nil
	}
	e := el.Value.(*idemEntry)
	if m.now().Sub(e.created) >= m.ttl {
		m.remove(e)
		return nil
	}
	m.lru.MoveToFront(el)
	return e
}

// insert adds e, forgetting the least recently used entries past
// capacity. m.mu is held.
func (m *idempotency) insert(e *idemEntry) {
	m.entries[e.key] = m.lru.PushFront(e)
	for m.lru.Len() > m.capacity {
		m.remove(m.lru.Back().Value.(*idemEntry))
	}
}

// remove forgets e if it is still the entry of its key. m.mu is held.
func (m *idempotency) remove(e *idemEntry) {
	if el, ok := m.entries[e.key]; ok && el.Value == e {
		m.lru.Remove(el)
		delete(m.entries, e.key)
	}
}

// len returns how many keys are remembered.
func (m *idempotency) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lru.Len()
}
