package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore/events"
)

// A tap that does not read is told the exact seqs it missed, and the
// publisher never waits for it.
func TestLaggingTapIsToldWhatItMissed(t *testing.T) {
	m := newBus(t, Config{})
	tap, err := m.Tap(TapConfig{Name: "slow", Buffer: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	ctx := ctxTimeout(t, 5*time.Second)
	for i := 0; i < 100; i++ {
		// An already-cancelled ctx: Publish fails if it ever waits.
		dead, cancel := context.WithCancel(ctx)
		cancel()
		if err := m.Publish(dead, stateEv("s", "ringing")); err != nil {
			t.Fatalf("publish %d waited for a tap: %v", i, err)
		}
	}
	for want := uint64(1); want <= 4; want++ {
		r, err := tap.Next(ctx)
		if err != nil || r.Gap != nil || r.Envelope.Seq != want {
			t.Fatalf("record %d: %+v %v", want, r, err)
		}
	}
	r, err := tap.Next(ctx)
	if err != nil || r.Gap == nil {
		t.Fatalf("want a gap, got %+v %v", r, err)
	}
	if *r.Gap != (Gap{FromSeq: 5, ToSeq: 100, Dropped: 96, Reason: GapLagging}) {
		t.Fatalf("gap %+v, want seqs 5..100", *r.Gap)
	}
	// After the gap the tap goes on with what comes next.
	if err := m.Publish(ctx, stateEv("s", "ringing")); err != nil {
		t.Fatal(err)
	}
	r, err = tap.Next(ctx)
	if err != nil || r.Envelope.Seq != 101 {
		t.Fatalf("after the gap: %+v %v", r, err)
	}
}

// A gap reported mid-stream comes before the events after it, and RTP
// packet events missed count in Dropped without a seq.
func TestGapOrderWithDataPlane(t *testing.T) {
	m := newBus(t, Config{})
	tap, err := m.Tap(TapConfig{Name: "rtp", Buffer: 2, DataPlane: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	ctx := ctxTimeout(t, 5*time.Second)
	publish := func(ev events.Event) {
		if err := m.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	publish(stateEv("s", "a")) // seq 1
	publish(rtpEv("s", 1))
	publish(rtpEv("s", 2))     // missed
	publish(stateEv("s", "b")) // seq 2, missed
	var got []string
	for i := 0; i < 3; i++ {
		r, err := tap.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Gap != nil {
			got = append(got, fmt.Sprintf("gap %d-%d/%d", r.Gap.FromSeq, r.Gap.ToSeq, r.Gap.Dropped))
			continue
		}
		got = append(got, fmt.Sprintf("%s#%d", r.Event.Type(), r.Envelope.Seq))
		if i == 1 { // room again: the next event follows the gap
			publish(stateEv("s", "c"))
		}
	}
	want := "[CallStateChanged#1 RtpPacketReceived#0 gap 2-2/2]"
	if fmt.Sprint(got) != want {
		t.Fatalf("tap read %v, want %v", got, want)
	}
	r, err := tap.Next(ctx)
	if err != nil || r.Envelope.Seq != 3 {
		t.Fatalf("after the gap: %+v %v", r, err)
	}
}

func TestTapWithoutDataPlaneSeesNoRTP(t *testing.T) {
	m := newBus(t, Config{})
	tap, err := m.Tap(TapConfig{Name: "ctl"})
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	ctx := ctxTimeout(t, 5*time.Second)
	_ = m.Publish(ctx, rtpEv("s", 1))
	_ = m.Publish(ctx, stateEv("s", "a"))
	r, err := tap.Next(ctx)
	if err != nil || r.Event.Type() != "CallStateChanged" {
		t.Fatalf("%+v %v", r, err)
	}
}

// Replay from history then live, with concurrent publishing: every seq
// after since exactly once, in order.
func TestTapReplayThenLiveHasNoGapNoDuplicate(t *testing.T) {
	m := newBus(t, Config{History: 4096})
	ctx := ctxTimeout(t, 10*time.Second)
	for i := 0; i < 500; i++ {
		_ = m.Publish(ctx, stateEv("s", "a"))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 1000; i++ {
			_ = m.Publish(ctx, stateEv("s", "b"))
		}
	}()
	tap, err := m.Tap(TapConfig{Name: "resume", Replay: true, Since: 200, Buffer: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	wg.Wait()
	for want := uint64(201); want <= 1500; want++ {
		r, err := tap.Next(ctx)
		if err != nil || r.Gap != nil || r.Envelope.Seq != want {
			t.Fatalf("want seq %d, got %+v %v", want, r, err)
		}
	}
}

func TestTapReplayBeyondHistory(t *testing.T) {
	m := newBus(t, Config{History: 10})
	ctx := ctxTimeout(t, 5*time.Second)
	for i := 0; i < 30; i++ {
		_ = m.Publish(ctx, stateEv("s", "a"))
	}
	tap, err := m.Tap(TapConfig{Name: "old", Replay: true, Since: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	r, err := tap.Next(ctx)
	if err != nil || r.Gap == nil || *r.Gap != (Gap{FromSeq: 6, ToSeq: 20, Dropped: 15, Reason: GapHistory}) {
		t.Fatalf("want a history gap 6..20, got %+v %v", r.Gap, err)
	}
	for want := uint64(21); want <= 30; want++ {
		r, err := tap.Next(ctx)
		if err != nil || r.Envelope.Seq != want {
			t.Fatalf("want %d, got %+v %v", want, r, err)
		}
	}
	if _, err := m.Tap(TapConfig{Replay: true, Since: 31}); !errors.Is(err, ErrSinceAhead) {
		t.Fatalf("since ahead of the newest seq: %v", err)
	}
}

func TestTapCloseAndBusClose(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tap, _ := m.Tap(TapConfig{Name: "x"})
	_ = m.Publish(context.Background(), stateEv("s", "a"))
	if err := m.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 5*time.Second)
	if r, err := tap.Next(ctx); err != nil || r.Envelope.Seq != 1 {
		t.Fatalf("a record published before Close is still readable: %+v %v", r, err)
	}
	if _, err := tap.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("after bus Close: %v, want ErrClosed", err)
	}
	if err := m.Publish(ctx, stateEv("s", "a")); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after Close: %v", err)
	}
	if _, err := m.Tap(TapConfig{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("tap after Close: %v", err)
	}
}

// Two taps reading the same event get one encoding of it: the first
// Frame encodes, the second returns the same bytes, and both decode to the
// event with its envelope. A record read back from the history shares it
// too; a gap record has no frame.
func TestRecordFrameIsEncodedOnce(t *testing.T) {
	m := newBus(t, Config{Node: "a"})
	ctx := ctxTimeout(t, 5*time.Second)
	t1, err := m.Tap(TapConfig{Name: "one"})
	if err != nil {
		t.Fatal(err)
	}
	defer t1.Close()
	t2, err := m.Tap(TapConfig{Name: "two"})
	if err != nil {
		t.Fatal(err)
	}
	defer t2.Close()
	if err := m.Publish(ctx, stateEv("s1", "ringing")); err != nil {
		t.Fatal(err)
	}
	r1, err := t1.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := t2.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b1, enc1, err := r1.Frame()
	if err != nil || !enc1 {
		t.Fatalf("first Frame: encoded=%v err=%v", enc1, err)
	}
	b2, enc2, err := r2.Frame()
	if err != nil || enc2 {
		t.Fatalf("second Frame: encoded=%v err=%v, want the shared encoding", enc2, err)
	}
	if &b1[0] != &b2[0] {
		t.Fatal("the two taps got separate encodings")
	}
	env, ev, err := events.Unmarshal(b1)
	if err != nil || env.Seq != r1.Envelope.Seq || env.ID != r1.Envelope.ID || env.Node != "a" || ev.Type() != "CallStateChanged" {
		t.Fatalf("frame %s decodes to %+v %v, %v", b1, env, ev, err)
	}
	t3, err := m.Tap(TapConfig{Name: "late", Replay: true, Since: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer t3.Close()
	r3, err := t3.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b3, enc3, err := r3.Frame(); err != nil || enc3 || &b3[0] != &b1[0] {
		t.Fatalf("replayed Frame: encoded=%v err=%v", enc3, err)
	}
	if _, _, err := (Record{Gap: &Gap{FromSeq: 1, ToSeq: 1, Dropped: 1}}).Frame(); err == nil {
		t.Fatal("a gap record has a frame")
	}
}
