package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

func TestPublishReachesEverySubscriberOfTheChannel(t *testing.T) {
	m := newBus(t, Config{})
	var a, b, other atomic.Int32
	sub := func(name, ch string, n *atomic.Int32) {
		if _, err := m.Subscribe(Subscriber{Name: name, Channels: []string{ch},
			Handle: func(context.Context, events.Envelope, events.Event) error { n.Add(1); return nil }}); err != nil {
			t.Fatal(err)
		}
	}
	sub("a", events.ChannelDialogToSession, &a)
	sub("b", events.ChannelDialogToSession, &b)
	sub("other", events.ChannelMediaToSession, &other)
	for i := 0; i < 10; i++ {
		if err := m.Publish(context.Background(), stateEv("s1", "ringing")); err != nil {
			t.Fatal(err)
		}
	}
	checkFor(t, 5*time.Second, func() error {
		if a.Load() != 10 || b.Load() != 10 {
			return fmt.Errorf("a=%d b=%d, want 10 each", a.Load(), b.Load())
		}
		return nil
	})
	if other.Load() != 0 {
		t.Fatalf("a subscriber of another channel got %d events", other.Load())
	}
}

// Each key's events arrive in publish order while many keys are published
// concurrently from several goroutines.
func TestOrderPerKeyUnderConcurrency(t *testing.T) {
	const publishers, keysEach, perKey = 4, 25, 200
	m := newBus(t, Config{Shards: 4, QueueSize: 256})
	var mu sync.Mutex
	last := map[string]uint32{}
	var bad atomic.Int32
	var got atomic.Int64
	_, err := m.Subscribe(Subscriber{Name: "order", Channels: []string{events.ChannelRTPToMedia},
		Handle: func(_ context.Context, _ events.Envelope, ev events.Event) error {
			p := ev.(*events.RtpPacketReceived)
			mu.Lock()
			if p.Timestamp != last[p.SessionID]+1 {
				bad.Add(1)
			}
			last[p.SessionID] = p.Timestamp
			mu.Unlock()
			got.Add(1)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := uint32(1); n <= perKey; n++ {
				for k := 0; k < keysEach; k++ {
					if err := m.Publish(context.Background(), rtpEv(fmt.Sprintf("p%d-k%d", p, k), n)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	checkFor(t, 10*time.Second, func() error {
		if n := got.Load(); n != publishers*keysEach*perKey {
			return fmt.Errorf("handled %d of %d", n, publishers*keysEach*perKey)
		}
		return nil
	})
	if bad.Load() != 0 {
		t.Fatalf("%d events out of order", bad.Load())
	}
}

// A handler blocked on one key holds up neither other keys of its shard
// nor the keys of other shards; the blocked key's later events wait, in
// order, and follow once it returns.
func TestBlockedKeyDoesNotBlockOthers(t *testing.T) {
	m := newBus(t, Config{Shards: 2, BlockedAfter: 5 * time.Millisecond})
	release := make(chan struct{})
	var mu sync.Mutex
	var order []uint32
	others := map[string]bool{}
	_, err := m.Subscribe(Subscriber{Name: "blocky", Channels: []string{events.ChannelRTPToMedia},
		Handle: func(ctx context.Context, _ events.Envelope, ev events.Event) error {
			p := ev.(*events.RtpPacketReceived)
			if p.SessionID == "stuck" {
				if p.Timestamp == 1 {
					select {
					case <-release:
					case <-ctx.Done():
					}
				}
				mu.Lock()
				order = append(order, p.Timestamp)
				mu.Unlock()
				return nil
			}
			mu.Lock()
			others[p.SessionID] = true
			mu.Unlock()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 10*time.Second)
	for ts := uint32(1); ts <= 5; ts++ {
		if err := m.Publish(ctx, rtpEv("stuck", ts)); err != nil {
			t.Fatal(err)
		}
	}
	// With two shards, about half of these share the stuck key's shard.
	const n = 64
	for i := 0; i < n; i++ {
		if err := m.Publish(ctx, rtpEv("k"+strconv.Itoa(i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	checkFor(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(others) != n {
			return fmt.Errorf("%d of %d other keys handled while one key is blocked", len(others), n)
		}
		if len(order) != 0 {
			return fmt.Errorf("blocked key's events ran early: %v", order)
		}
		return nil
	})
	close(release)
	checkFor(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(order) != "[1 2 3 4 5]" {
			return fmt.Errorf("blocked key handled %v, want [1 2 3 4 5]", order)
		}
		return nil
	})
	// The shard is whole again: the stuck key's new events run inline.
	if err := m.Publish(ctx, rtpEv("stuck", 6)); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(order) != 6 || order[5] != 6 {
			return fmt.Errorf("after release: %v", order)
		}
		return nil
	})
}

// Different keys really run at the same time: eight handlers meet at a
// rendezvous that none can pass alone.
func TestKeysRunInParallel(t *testing.T) {
	const n = 8
	m := newBus(t, Config{Shards: 4, BlockedAfter: 5 * time.Millisecond})
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	var passed atomic.Int32
	_, err := m.Subscribe(Subscriber{Name: "meet", Channels: []string{events.ChannelDialogToSession},
		Handle: func(ctx context.Context, _ events.Envelope, _ events.Event) error {
			arrived.Done()
			select {
			case <-all:
				passed.Add(1)
			case <-ctx.Done():
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := m.Publish(context.Background(), stateEv("s"+strconv.Itoa(i), "ringing")); err != nil {
			t.Fatal(err)
		}
	}
	checkFor(t, 5*time.Second, func() error {
		if passed.Load() != n {
			return fmt.Errorf("%d of %d handlers passed the rendezvous", passed.Load(), n)
		}
		return nil
	})
}

func TestFullQueueBlocksPublishUntilCtxEnds(t *testing.T) {
	m := newBus(t, Config{Shards: 1, QueueSize: 16, BlockedAfter: time.Hour})
	release := make(chan struct{})
	var handled atomic.Int32
	_, err := m.Subscribe(Subscriber{Name: "slow", Channels: []string{events.ChannelDialogToSession},
		Handle: func(ctx context.Context, _ events.Envelope, _ events.Event) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			handled.Add(1)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	// One in the handler, then the ring's 16 cells.
	for i := 0; i < 17; i++ {
		if err := m.Publish(ctxTimeout(t, 5*time.Second), stateEv("s", "ringing")); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = m.Publish(ctx, stateEv("s", "ringing"))
	if !errors.Is(err, ErrBackpressure) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish to a full queue: %v, want ErrBackpressure and DeadlineExceeded", err)
	}
	// A waiting publisher goes on as soon as there is room.
	done := make(chan error, 1)
	go func() { done <- m.Publish(ctxTimeout(t, 5*time.Second), stateEv("s", "ringing")) }()
	select {
	case err := <-done:
		t.Fatalf("publish returned %v while the queue was full", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("publish after room was made: %v", err)
	}
	checkFor(t, 5*time.Second, func() error {
		if handled.Load() != 18 {
			return fmt.Errorf("handled %d of 18", handled.Load())
		}
		return nil
	})
	var blocked float64
	for _, mf := range gather(t, m) {
		if mf.GetName() == "callbus_bus_publish_blocked_total" {
			blocked = mf.Metric[0].GetCounter().GetValue()
		}
	}
	if blocked < 2 {
		t.Fatalf("callbus_bus_publish_blocked_total = %v, want ≥ 2", blocked)
	}
}

func TestCauseIsTheHandledEvent(t *testing.T) {
	m := newBus(t, Config{})
	type rec struct {
		env events.Envelope
		ev  events.Event
	}
	got := make(chan rec, 10)
	_, err := m.Subscribe(Subscriber{Name: "dialog", Channels: []string{events.ChannelSessionToDialog},
		Handle: func(ctx context.Context, env events.Envelope, ev events.Event) error {
			got <- rec{env, ev}
			// Published inside the handler: caused by ev.
			if err := m.Publish(ctx, stateEv("s1", "ringing")); err != nil {
				return err
			}
			// Published later from another goroutine, as a timer would.
			go func() {
				_ = m.Publish(WithCause(context.Background(), env.ID), stateEv("s1", "timeout"))
			}()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Subscribe(Subscriber{Name: "session", Channels: []string{events.ChannelDialogToSession},
		Handle: func(_ context.Context, env events.Envelope, ev events.Event) error {
			got <- rec{env, ev}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	root := &events.TerminateSession{SessionRef: events.SessionRef{SessionID: "s1"}, Reason: "bye"}
	if err := m.Publish(context.Background(), root); err != nil {
		t.Fatal(err)
	}
	first := <-got
	if !first.env.Cause.IsZero() {
		t.Fatalf("an event published outside a handler has cause %v", first.env.Cause)
	}
	for i := 0; i < 2; i++ {
		r := <-got
		if r.env.Cause != first.env.ID {
			t.Fatalf("%s has cause %v, want %v", r.ev.Type(), r.env.Cause, first.env.ID)
		}
	}
}

func TestEnvelope(t *testing.T) {
	m := newBus(t, Config{Node: "n1"})
	const publishers, each = 4, 250
	var mu sync.Mutex
	seqs := map[uint64]bool{}
	ids := map[events.ID]bool{}
	var dataSeqs atomic.Int32
	_, err := m.Subscribe(Subscriber{Name: "env",
		Channels: []string{events.ChannelDialogToSession, events.ChannelRTPToMedia},
		Handle: func(_ context.Context, env events.Envelope, ev events.Event) error {
			mu.Lock()
			defer mu.Unlock()
			if env.Node != "n1" || env.Time.IsZero() || ids[env.ID] || env.ID.IsZero() {
				t.Errorf("bad envelope %+v", env)
			}
			ids[env.ID] = true
			if events.IsDataPlane(ev) {
				if env.Seq != 0 {
					dataSeqs.Add(1)
				}
				return nil
			}
			seqs[env.Seq] = true
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				_ = m.Publish(context.Background(), stateEv(fmt.Sprintf("s%d", p), "ringing"))
				_ = m.Publish(context.Background(), rtpEv(fmt.Sprintf("s%d", p), uint32(i)))
			}
		}()
	}
	wg.Wait()
	checkFor(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(ids) != 2*publishers*each {
			return fmt.Errorf("%d of %d delivered", len(ids), 2*publishers*each)
		}
		return nil
	})
	for s := uint64(1); s <= publishers*each; s++ {
		if !seqs[s] {
			t.Fatalf("seq %d missing: control-plane seqs must be 1..%d with no hole", s, publishers*each)
		}
	}
	if dataSeqs.Load() != 0 {
		t.Fatalf("%d RTP packet events carried a seq", dataSeqs.Load())
	}
	if m.LastSeq() != publishers*each {
		t.Fatalf("LastSeq = %d", m.LastSeq())
	}
}

func TestStartSeqContinuesAfterRestart(t *testing.T) {
	m := newBus(t, Config{StartSeq: 41})
	tap, err := m.Tap(TapConfig{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	if err := m.Publish(context.Background(), stateEv("s", "ringing")); err != nil {
		t.Fatal(err)
	}
	r, err := tap.Next(ctxTimeout(t, 5*time.Second))
	if err != nil || r.Envelope.Seq != 42 {
		t.Fatalf("first seq after StartSeq 41: %+v %v", r.Envelope, err)
	}
}

func TestBadInput(t *testing.T) {
	m := newBus(t, Config{})
	ctx := context.Background()
	if err := m.Publish(ctx, nil); !errors.Is(err, ErrNilEvent) {
		t.Errorf("nil event: %v", err)
	}
	err := m.Publish(ctx, stateEv("", "ringing"))
	if !errors.Is(err, ErrEmptyKey) || !strings.Contains(err.Error(), "dialog_to_session/CallStateChanged") {
		t.Errorf("empty key: %v, want ErrEmptyKey naming the event", err)
	}
	if m.LastSeq() != 0 {
		t.Errorf("a refused event took seq %d", m.LastSeq())
	}
	for name, sc := range map[string]Subscriber{
		"no name":     {Channels: []string{"x"}, Handle: func(context.Context, events.Envelope, events.Event) error { return nil }},
		"no channels": {Name: "x", Handle: func(context.Context, events.Envelope, events.Event) error { return nil }},
		"no handler":  {Name: "x", Channels: []string{"x"}},
		"twice":       {Name: "x", Channels: []string{"x", "x"}, Handle: func(context.Context, events.Envelope, events.Event) error { return nil }},
	} {
		if _, err := m.Subscribe(sc); !errors.Is(err, ErrBadSubscriber) {
			t.Errorf("%s: %v, want ErrBadSubscriber", name, err)
		}
	}
	ok := Subscriber{Name: "dup", Channels: []string{"x"}, Handle: func(context.Context, events.Envelope, events.Event) error { return nil }}
	if _, err := m.Subscribe(ok); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Subscribe(ok); !errors.Is(err, ErrBadSubscriber) {
		t.Errorf("a second subscriber named dup: %v", err)
	}
}

func TestHandlerFailuresAreIsolated(t *testing.T) {
	m := newBus(t, Config{})
	var handled atomic.Int32
	_, err := m.Subscribe(Subscriber{Name: "flaky", Channels: []string{events.ChannelDialogToSession},
		Handle: func(_ context.Context, _ events.Envelope, ev events.Event) error {
			handled.Add(1)
			switch ev.(*events.CallStateChanged).NewState {
			case "error":
				return errors.New("boom")
			case "panic":
				panic("kaboom")
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"error", "panic", "ok", "panic", "ok"} {
		if err := m.Publish(context.Background(), stateEv("s", st)); err != nil {
			t.Fatal(err)
		}
	}
	checkFor(t, 5*time.Second, func() error {
		if handled.Load() != 5 {
			return fmt.Errorf("handled %d of 5 after failures", handled.Load())
		}
		return nil
	})
	checkFor(t, 5*time.Second, func() error {
		for _, mf := range gather(t, m) {
			if mf.GetName() == "callbus_bus_handler_errors_total" {
				for _, mt := range mf.Metric {
					if mt.GetCounter().GetValue() == 3 {
						return nil
					}
				}
			}
		}
		return errors.New("callbus_bus_handler_errors_total never reached 3")
	})
}

func TestRequestReply(t *testing.T) {
	m := newBus(t, Config{})
	var observed atomic.Int32
	_, err := m.Subscribe(Subscriber{Name: "session", Channels: []string{events.ChannelAPIToSession},
		Serve: func(_ context.Context, env events.Envelope, cmd events.Event) (*events.CommandResult, error) {
			if env.Seq == 0 {
				return nil, errors.New("a command must carry a seq")
			}
			switch c := cmd.(type) {
			case *events.CmdAnswerCall:
				switch c.SessionID {
				case "missing":
					return nil, callcore.Errorf(callcore.CodeNotFound, "no call %s", c.SessionID)
				case "panic":
					panic("server bug")
				case "slow":
					time.Sleep(200 * time.Millisecond)
				}
				return &events.CommandResult{ID: c.SessionID, State: string(callcore.StateActive)}, nil
			}
			return nil, callcore.Errorf(callcore.CodeBadRequest, "unexpected %s", cmd.Type())
		}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Subscribe(Subscriber{Name: "observer", Channels: []string{events.ChannelAPIToSession},
		Handle: func(context.Context, events.Envelope, events.Event) error { observed.Add(1); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	answer := func(id string) *events.CmdAnswerCall {
		return &events.CmdAnswerCall{SessionRef: events.SessionRef{SessionID: id}}
	}
	res, err := m.Request(ctxTimeout(t, 5*time.Second), answer("c1"))
	if err != nil || res.ID != "c1" || res.State != "active" {
		t.Fatalf("reply %+v, %v", res, err)
	}
	_, err = m.Request(ctxTimeout(t, 5*time.Second), answer("missing"))
	if callcore.ErrorCode(err) != callcore.CodeNotFound {
		t.Fatalf("not found: %v", err)
	}
	_, err = m.Request(ctxTimeout(t, 5*time.Second), answer("panic"))
	if callcore.ErrorCode(err) != callcore.CodeInternal {
		t.Fatalf("server panic: %v (code %s), want internal", err, callcore.ErrorCode(err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = m.Request(ctx, answer("slow"))
	if callcore.ErrorCode(err) != callcore.CodeUnavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no reply in time: %v", err)
	}
	_, err = m.Request(ctxTimeout(t, 5*time.Second), &events.InitiateCall{SessionRef: events.SessionRef{SessionID: "x"}})
	if callcore.ErrorCode(err) != callcore.CodeUnavailable || !errors.Is(err, ErrNoServer) {
		t.Fatalf("no server: %v", err)
	}
	_, err = m.Subscribe(Subscriber{Name: "second", Channels: []string{events.ChannelAPIToSession},
		Serve: func(context.Context, events.Envelope, events.Event) (*events.CommandResult, error) { return nil, nil }})
	if !errors.Is(err, ErrDuplicateServer) {
		t.Fatalf("second server: %v", err)
	}
	checkFor(t, 5*time.Second, func() error {
		if observed.Load() != 4 {
			return fmt.Errorf("observer saw %d of 4 commands", observed.Load())
		}
		return nil
	})
}

func TestUnsubscribeDrains(t *testing.T) {
	m := newBus(t, Config{})
	var handled atomic.Int32
	sub, err := m.Subscribe(Subscriber{Name: "u", Channels: []string{events.ChannelDialogToSession},
		Handle: func(context.Context, events.Envelope, events.Event) error {
			time.Sleep(100 * time.Microsecond)
			handled.Add(1)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := m.Publish(context.Background(), stateEv("s"+strconv.Itoa(i%7), "ringing")); err != nil {
			t.Fatal(err)
		}
	}
	if err := sub.Unsubscribe(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if handled.Load() != 100 {
		t.Fatalf("Unsubscribe returned with %d of 100 handled", handled.Load())
	}
	if err := m.Publish(context.Background(), stateEv("s", "ringing")); err != nil {
		t.Fatal(err)
	}
	if handled.Load() != 100 {
		t.Fatal("an unsubscribed handler still receives events")
	}
}

// A key set apart while its lane is full must lose nothing: a publisher
// waiting for lane space while the lane drains empty and is retired must
// not push onto the retired lane (found by the rtp layer's benchmark: a few
// events of 20000 were never handled).
func TestBlockedLaneRetiredWhilePublisherWaits(t *testing.T) {
	m := newBus(t, Config{Shards: 1, QueueSize: 16, BlockedAfter: 2 * time.Millisecond})
	const n = 6000
	var handled atomic.Int64
	var seen sync.Map
	_, err := m.Subscribe(Subscriber{Name: "slow-at-times", Channels: []string{events.ChannelRTPToMedia},
		Handle: func(ctx context.Context, _ events.Envelope, ev events.Event) error {
			p := ev.(*events.RtpPacketReceived)
			if p.Timestamp%500 == 0 {
				time.Sleep(6 * time.Millisecond) // long enough to be set apart
			}
			seen.Store(p.Timestamp, true)
			handled.Add(1)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 20*time.Second)
	for ts := uint32(1); ts <= n; ts++ {
		if err := m.Publish(ctx, rtpEv("one-key", ts)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for handled.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := handled.Load(); got != n {
		var missing []uint32
		for ts := uint32(1); ts <= n && len(missing) < 10; ts++ {
			if _, ok := seen.Load(ts); !ok {
				missing = append(missing, ts)
			}
		}
		t.Fatalf("handled %d of %d events; first missing timestamps %v", got, n, missing)
	}
}
