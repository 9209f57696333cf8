package callcore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestGroupWaitsForItsGoroutines(t *testing.T) {
	g := NewGroup(context.Background(), "test")
	release := make(chan struct{})
	var done atomic.Int32
	for range 3 {
		if !g.Go("worker", func(context.Context) { <-release; done.Add(1) }) {
			t.Fatal("Go refused before Stop")
		}
	}
	if got := g.Running(); !slices.Equal(got, []string{"worker", "worker", "worker"}) {
		t.Fatalf("Running = %v, want three workers", got)
	}
	close(release)
	if err := g.Wait(context.Background()); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if done.Load() != 3 {
		t.Fatalf("Wait returned with %d of 3 goroutines done", done.Load())
	}
	if got := g.Running(); len(got) != 0 {
		t.Fatalf("Running after Wait = %v", got)
	}
}

func TestGroupStopCancelsAndRefuses(t *testing.T) {
	parent := context.WithValue(context.Background(), struct{}{}, "v")
	g := NewGroup(parent, "test")
	saw := make(chan context.Context, 1)
	g.Go("watcher", func(ctx context.Context) { <-ctx.Done(); saw <- ctx })
	g.Stop()
	g.Stop() // idempotent
	if err := g.Wait(context.Background()); err != nil {
		t.Fatalf("Wait after Stop: %v", err)
	}
	if ctx := <-saw; ctx.Value(struct{}{}) != "v" {
		t.Fatal("the goroutine's context does not derive from NewGroup's")
	}
	if !g.Stopped() || g.Context().Err() == nil {
		t.Fatal("Stopped or Context does not show the Stop")
	}
	ran := false
	if g.Go("late", func(context.Context) { ran = true }) || g.Do("late", func(context.Context) { ran = true }) || ran {
		t.Fatal("Go or Do ran a function after Stop")
	}
}

func TestGroupDoCountsTheCaller(t *testing.T) {
	g := NewGroup(context.Background(), "test")
	var during []string
	if !g.Do("callback", func(context.Context) { during = g.Running() }) {
		t.Fatal("Do refused before Stop")
	}
	if !slices.Equal(during, []string{"callback"}) {
		t.Fatalf("Running inside Do = %v, want [callback]", during)
	}
	if got := g.Running(); len(got) != 0 {
		t.Fatalf("Running after Do = %v", got)
	}
}

// At the deadline Wait names what is still running, however long the
// goroutines go on; they are still waited for by a later Wait.
func TestGroupWaitReportsStragglersAtTheDeadline(t *testing.T) {
	g := NewGroup(context.Background(), "rtp")
	release := make(chan struct{})
	for _, name := range []string{"reader", "timer", "reader"} {
		g.Go(name, func(context.Context) { <-release }) // ignores ctx on purpose
	}
	g.Go("quick", func(context.Context) {})
	g.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := g.Wait(ctx)
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("Wait took %v past a 20ms deadline", waited)
	}
	var re *RunningError
	if !errors.As(err, &re) {
		t.Fatalf("Wait at the deadline = %v, want a *RunningError", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v does not wrap context.DeadlineExceeded", err)
	}
	if re.Group != "rtp" || !slices.Equal(re.Running, []string{"reader", "reader", "timer"}) {
		t.Errorf("report = %q %v, want rtp [reader reader timer]", re.Group, re.Running)
	}
	if msg := err.Error(); !strings.Contains(msg, "rtp: 3 goroutines still running (reader ×2, timer)") {
		t.Errorf("message %q does not name the stragglers", msg)
	}

	close(release)
	if err := g.Wait(context.Background()); err != nil {
		t.Fatalf("Wait once released: %v", err)
	}
}

// Goroutines told to stop that return at once are not reported, even by
// a Wait whose deadline has already passed.
func TestGroupWaitAfterTheDeadlineGivesStoppedGoroutinesTheirGrace(t *testing.T) {
	g := NewGroup(context.Background(), "test")
	for range 3 {
		g.Go("w", func(ctx context.Context) { <-ctx.Done() })
	}
	g.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v, want the stopped goroutines to return within StopGrace", err)
	}
}

func TestGroupWaitWithNothingRunning(t *testing.T) {
	g := NewGroup(context.Background(), "test")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Wait(ctx); err != nil {
		t.Fatalf("Wait on an empty group with an ended ctx: %v", err)
	}
	// The group is reusable until Stop: it goes idle and busy again.
	g.Go("a", func(context.Context) {})
	if err := g.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.Go("b", func(context.Context) {})
	if err := g.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A Go racing Stop either runs and is waited for, or runs nothing.
func TestGroupGoRacingStop(t *testing.T) {
	for range 50 {
		g := NewGroup(context.Background(), "test")
		var accepted, finished atomic.Int32
		go g.Stop()
		for range 20 {
			if g.Go("w", func(context.Context) { finished.Add(1) }) {
				accepted.Add(1)
				continue
			}
			if !g.Stopped() {
				t.Fatal("Go refused before Stop")
			}
		}
		g.Stop()
		if err := g.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if accepted.Load() != finished.Load() {
			t.Fatalf("Wait returned with %d of %d goroutines done", finished.Load(), accepted.Load())
		}
	}
}
