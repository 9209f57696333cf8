package httpapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
)

func TestIdempotencyBounds(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	m := newIdempotency(3, time.Hour, func() time.Time { return now })
	ctx := context.Background()
	sum := sha256.Sum256([]byte("body"))
	runs := 0
	create := func(id string) func() (string, error) {
		return func() (string, error) { runs++; return id, nil }
	}
	for i := range 3 {
		if _, replayed, err := m.do(ctx, fmt.Sprint("k", i), sum, create(fmt.Sprint("c", i))); err != nil || replayed {
			t.Fatalf("k%d: replayed %v, %v", i, replayed, err)
		}
	}
	// Use k0, so that k1 is the least recently used when k3 comes.
	if id, replayed, _ := m.do(ctx, "k0", sum, create("x")); id != "c0" || !replayed {
		t.Errorf("k0 again = %s, replayed %v", id, replayed)
	}
	m.do(ctx, "k3", sum, create("c3"))
	if m.len() != 3 {
		t.Errorf("%d keys kept, want the capacity 3", m.len())
	}
	if id, replayed, _ := m.do(ctx, "k1", sum, create("c1-new")); id != "c1-new" || replayed {
		t.Errorf("k1 after eviction = %s (replayed %v), want a new call", id, replayed)
	}
	if id, _, _ := m.do(ctx, "k0", sum, create("x")); id != "c0" {
		t.Errorf("k0, recently used, was evicted: %s", id)
	}

	// Expiry.
	now = now.Add(time.Hour)
	if id, replayed, _ := m.do(ctx, "k0", sum, create("c0-new")); id != "c0-new" || replayed {
		t.Errorf("k0 after its ttl = %s (replayed %v), want a new call", id, replayed)
	}
	if runs != 6 {
		t.Errorf("create ran %d times, want 6", runs)
	}
}

func TestIdempotencyWaiterGivesUp(t *testing.T) {
	m := newIdempotency(10, time.Hour, time.Now)
	sum := sha256.Sum256([]byte("b"))
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.do(context.Background(), "k", sum, func() (string, error) {
			close(started)
			<-release
			return "c", nil
		})
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := m.do(ctx, "k", sum, func() (string, error) { t.Error("ran twice"); return "", nil })
	if callcore.ErrorCode(err) != callcore.CodeUnavailable || !errors.Is(err, context.Canceled) {
		t.Errorf("a waiter whose ctx ended: %v, want unavailable", err)
	}
	close(release)
	<-done
}
