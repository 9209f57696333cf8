package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// An unfiltered feed carries every control-plane event, each frame exactly
// events.Marshal of it, with contiguous seqs, and no RTP packet event.
func TestFeedUnfiltered(t *testing.T) {
	b, s := newFeed(t, bus.Config{}, Config{})
	conn := s.dial(t, "", nil)

	const calls = 100
	for i := range calls {
		id := fmt.Sprintf("s%d", i)
		publishAll(t, b, created(id), rtpIn(id, uint32(i)), sipMessage("c"+id, "v=0\r\n"), stateChanged(id, "ringing"))
	}
	last := b.LastSeq()
	if last != 3*calls {
		t.Fatalf("LastSeq %d, want %d", last, 3*calls)
	}
	got := readUntil(t, conn, seqIs(last))

	// What each frame must be: the bus's own envelopes, marshalled.
	tap, err := b.Tap(bus.TapConfig{Name: "test", Replay: true, Since: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	want := map[uint64][]byte{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range last {
		rec, err := tap.Next(ctx)
		if err != nil || rec.Gap != nil {
			t.Fatalf("test tap: %v %v", err, rec.Gap)
		}
		w, err := events.Marshal(rec.Envelope, rec.Event)
		if err != nil {
			t.Fatal(err)
		}
		want[rec.Envelope.Seq] = w
	}

	if len(got) != int(last) {
		t.Fatalf("%d frames, want %d: %v", len(got), last, got)
	}
	for i, f := range got {
		if f.Seq != uint64(i+1) {
			t.Fatalf("frame %d has seq %d, want %d (%v)", i, f.Seq, i+1, f)
		}
		if f.Type == "RtpPacketReceived" {
			t.Fatalf("unfiltered feed sent an RTP packet event: %v", f)
		}
		if !bytes.Equal(f.raw, want[f.Seq]) {
			t.Fatalf("frame seq %d:\n got %s\nwant %s", f.Seq, f.raw, want[f.Seq])
		}
	}
	if st := s.feed.Stats(); st.FramesSent != uint64(last) || st.GapsSent != 0 || st.Clients != 1 {
		t.Errorf("stats %+v, want %d frames, no gap, 1 client", st, last)
	}
}

// Filters combine with AND, the values of one list with OR; RTP packet
// events come only when named in types.
func TestFeedFilters(t *testing.T) {
	b, s := newFeed(t, bus.Config{}, Config{})
	set := []events.Event{
		created("s1"),                 // 0
		stateChanged("s1", "ringing"), // 1
		created("s2"),                 // 2
		&events.SendDtmf{SessionRef: ref("s1"), Tones: "1"},        // 3 session_to_dialog
		&events.MediaSendDtmf{SessionRef: ref("s2"), Tones: "2"},   // 4 session_to_media
		sipMessage("call-x", ""),                                   // 5 no session
		ended("s1"),                                                // 6
		rtpIn("s1", 7),                                             // 7
		&events.SendRtpPacket{SessionRef: ref("s2"), Timestamp: 8}, // 8
	}
	for _, tc := range []struct {
		query string
		want  []int
		end   events.Event // matches the query; its data differs from every event of set
	}{
		{"channels=session_to_app", []int{0, 2, 6}, ended("s9")},
		{"channels=session_to_app,dialog_to_session", []int{0, 1, 2, 6}, ended("s9")},
		{"channels=session_to_app&channels=transport_to_dialog", []int{0, 2, 5, 6}, ended("s9")},
		{"channels=+session_to_app+,", []int{0, 2, 6}, ended("s9")},
		{"types=CallCreated", []int{0, 2}, created("s9")},
		{"types=SendDtmf", []int{3, 4}, &events.SendDtmf{SessionRef: ref("s9")}},
		{"types=SendDtmf&channels=session_to_media", []int{4}, &events.MediaSendDtmf{SessionRef: ref("s9")}},
		{"session_id=s1", []int{0, 1, 3, 6}, &events.CallEnded{SessionRef: ref("s1"), Reason: "end"}},
		{"session_id=s1,s2&types=CallCreated,CallEnded", []int{0, 2, 6}, ended("s2")},
		{"channels=dialog_to_session&types=CallStateChanged&session_id=s2", nil, stateChanged("s2", "active")},
		{"types=RtpPacketReceived", []int{7}, rtpIn("s9", 9)},
		{"types=SendRtpPacket,CallEnded", []int{6, 8}, ended("s9")},
		{"types=RtpPacketReceived,SendRtpPacket&session_id=s2", []int{8}, &events.SendRtpPacket{SessionRef: ref("s2")}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			conn := s.dial(t, tc.query, nil)
			publishAll(t, b, set...)
			publishAll(t, b, tc.end)
			endData, err := json.Marshal(tc.end)
			if err != nil {
				t.Fatal(err)
			}
			name := func(f frame) string { return f.Channel + "/" + f.Type + "/" + f.SessionID }
			got := readUntil(t, conn, func(f frame) bool { return f.Type == tc.end.Type() && bytes.Equal(f.Data, endData) })
			var gotNames, wantNames []string
			for _, f := range got[:len(got)-1] {
				gotNames = append(gotNames, name(f))
			}
			for _, i := range tc.want {
				ev := set[i]
				wantNames = append(wantNames, ev.Channel()+"/"+ev.Type()+"/"+events.SessionOf(ev))
			}
			if !slices.Equal(gotNames, wantNames) {
				t.Errorf("got %v\nwant %v", gotNames, wantNames)
			}
			for _, f := range got {
				if rtp := f.Type == "RtpPacketReceived" || f.Type == "SendRtpPacket"; rtp != (f.Seq == 0) {
					t.Errorf("frame %v: RTP packet events and only they carry no seq", f)
				}
			}
		})
	}
}

// A bad query or a request that is not a WebSocket handshake is refused
// before the upgrade with a *callcore.Error, and nothing is written.
func TestFeedRefused(t *testing.T) {
	b, s := newFeed(t, bus.Config{}, Config{})
	publishAll(t, b, created("s1"), created("s2"))
	for _, tc := range []struct {
		name, query string
		code        callcore.Code
		field, msg  string
	}{
		{"channels=unknown", "channels=session_to_app,nope", callcore.CodeValidationFailed, "channels", `"nope"`},
		{"channels=type_name", "channels=CallCreated", callcore.CodeValidationFailed, "channels", `"CallCreated"`},
		{"types=unknown", "types=CallCreated&types=NoSuchEvent", callcore.CodeValidationFailed, "types", `"NoSuchEvent"`},
		{"types=channel_name", "types=session_to_app", callcore.CodeValidationFailed, "types", `"session_to_app"`},
		{"since=negative", "since=-1", callcore.CodeValidationFailed, "since", `"-1"`},
		{"since=word", "since=abc", callcore.CodeValidationFailed, "since", `"abc"`},
		{"since=empty", "since=", callcore.CodeValidationFailed, "since", `""`},
		{"since=plus", "since=%2B1", callcore.CodeValidationFailed, "since", `"+1"`},
		{"since=overflow", "since=18446744073709551616", callcore.CodeValidationFailed, "since", `"18446744073709551616"`},
		{"since=twice", "since=1&since=2", callcore.CodeValidationFailed, "since", "2 times"},
		{"since=ahead", "since=3", callcore.CodeValidationFailed, "since", "newest seq 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, resp, err := websocket.Dial(ctx, s.url(tc.query), nil)
			if err == nil {
				t.Fatal("dial succeeded")
			}
			herr := s.handleErr(t)
			var ce *callcore.Error
			if !errors.As(herr, &ce) {
				t.Fatalf("Handle returned %T %v, want *callcore.Error", herr, herr)
			}
			if ce.Code != tc.code || ce.Field != tc.field || !strings.Contains(ce.Message, tc.msg) {
				t.Errorf("got %s field=%q %q, want %s field=%q containing %s", ce.Code, ce.Field, ce.Message, tc.code, tc.field, tc.msg)
			}
			// Only the test handler's response: Handle wrote nothing.
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || string(body) != herr.Error()+"\n" {
				t.Errorf("response %d %q, want 400 %q", resp.StatusCode, body, herr.Error()+"\n")
			}
		})
	}

	t.Run("handshake=missing", func(t *testing.T) {
		resp, err := http.Get(s.srv.URL + "/v1/events?channels=session_to_app")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		herr := s.handleErr(t)
		if code := callcore.ErrorCode(herr); code != callcore.CodeBadRequest || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("got %s (%v), response %d; want bad_request and the handler's 400", code, herr, resp.StatusCode)
		}
	})

	t.Run("feed=closed", func(t *testing.T) {
		_, s := newFeed(t, bus.Config{}, Config{})
		s.feed.Close(t.Context())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, _, err := websocket.Dial(ctx, s.url(""), nil); err == nil {
			t.Fatal("dial succeeded after Close")
		}
		if code := callcore.ErrorCode(s.handleErr(t)); code != callcore.CodeUnavailable {
			t.Errorf("code %s, want unavailable", code)
		}
	})

	if got := s.feed.Stats().Accepted; got != 0 {
		t.Errorf("%d connections accepted, want none", got)
	}
}

// A client that drops mid-load and resumes with since=the last seq it saw
// gets every later seq once: across both connections each seq from the
// first to the last appears exactly once, and no gap.
func TestFeedResumeUnderLoad(t *testing.T) {
	const total, half, dropAt = 20000, 10000, 5000
	b, s := newFeed(t, bus.Config{History: 1 << 15}, Config{Buffer: 1 << 15})
	conn1 := s.dial(t, "", nil)

	dropped := make(chan struct{})
	published := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		publish := func(from, to int) error {
			for i := from; i < to; i++ {
				if err := b.Publish(ctx, stateChanged(fmt.Sprintf("s%d", i%50), "active")); err != nil {
					return err
				}
			}
			return nil
		}
		if err := publish(0, half); err != nil {
			published <- err
			return
		}
		// The second half is published while the client reconnects,
		// replays and switches to live.
		<-dropped
		published <- publish(half, total)
	}()

	count := map[uint64]int{}
	first := readSeqsUntil(t, conn1, seqIs(dropAt))
	conn1.CloseNow()
	close(dropped)
	last := first[len(first)-1].Seq

	conn2 := s.dial(t, "since="+strconv.FormatUint(last, 10), nil)
	second := readSeqsUntil(t, conn2, seqIs(total))
	if err := <-published; err != nil {
		t.Fatalf("publish: %v", err)
	}
	for _, f := range slices.Concat(first, second) {
		if f.isGap() || f.Seq == 0 {
			t.Fatalf("unexpected frame %v", f)
		}
		count[f.Seq]++
	}
	for seq := uint64(1); seq <= total; seq++ {
		if count[seq] != 1 {
			t.Fatalf("seq %d seen %d times (first connection up to %d, second from %d)", seq, count[seq], last, second[0].Seq)
		}
	}
	if len(count) != total {
		t.Fatalf("%d distinct seqs, want %d", len(count), total)
	}
}

// since older than the retained history: the first frame is a history Gap
// naming what is gone, then the retained events follow.
func TestFeedHistoryGap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		published uint64
		since     uint64
		gap       *bus.Gap
		firstSeq  uint64
	}{
		{"since=0/retained", 10, 0, nil, 1},
		{"since=10/retained", 16, 10, nil, 11},
		{"since=10/lost", 100, 10, &bus.Gap{FromSeq: 11, ToSeq: 84, Dropped: 74, Reason: bus.GapHistory}, 85},
		{"since=0/lost", 20, 0, &bus.Gap{FromSeq: 1, ToSeq: 4, Dropped: 4, Reason: bus.GapHistory}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, s := newFeed(t, bus.Config{History: 16}, Config{})
			for i := range tc.published {
				publishAll(t, b, stateChanged(fmt.Sprintf("s%d", i), "ringing"))
			}
			conn := s.dial(t, "since="+strconv.FormatUint(tc.since, 10), nil)
			got := readUntil(t, conn, seqIs(tc.published))
			publishAll(t, b, ended("live")) // after the replay, live
			got = append(got, readFrame(t, conn))
			if tc.gap != nil {
				if !got[0].isGap() || got[0].gap(t) != *tc.gap {
					t.Fatalf("first frame %v, want gap %+v", got[0], *tc.gap)
				}
				got = got[1:]
			}
			for i, f := range got {
				if f.Seq != tc.firstSeq+uint64(i) {
					t.Fatalf("frame %d is %v, want seq %d", i, f, tc.firstSeq+uint64(i))
				}
			}
			if got[len(got)-1].Type != "CallEnded" {
				t.Errorf("last frame %v, want the live CallEnded", got[len(got)-1])
			}
		})
	}
}

// A client that reads nothing for a while falls behind its tiny tap
// buffer and is told with a lagging Gap; meanwhile the publisher runs to
// completion and a fast client of the same bus sees every seq, no gap.
func TestFeedSlowClient(t *testing.T) {
	const n = 4000 // within the fast feed's buffer, so it cannot lag
	b := bustest.NewBus(t, bus.Config{})
	slowFeed := newServer(t, b, Config{Buffer: 16, WriteTimeout: time.Minute, PingInterval: time.Minute})
	fastFeed := newServer(t, b, Config{})
	slow := slowFeed.dial(t, "", smallReceiveBuffer())
	fast := fastFeed.dial(t, "", nil)

	fastDone := make(chan []frame, 1)
	fastErr := make(chan error, 1)
	go func() {
		var got []frame
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for {
			typ, p, err := fast.Read(ctx)
			if err != nil {
				fastErr <- err
				return
			}
			f, err := decodeSeq(typ, p)
			if err != nil {
				fastErr <- err
				return
			}
			got = append(got, f)
			if f.Seq == n {
				fastDone <- got
				return
			}
		}
	}()

	body := strings.Repeat("a=x-padding:0123456789abcdef\r\n", 35) // ~1 KB a frame
	published := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := range n {
			if err := b.Publish(ctx, sipMessage(fmt.Sprintf("call-%d", i), body)); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	// The slow client has read nothing yet: publishing must still end.
	select {
	case err := <-published:
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("publisher blocked by the slow client")
	}

	select {
	case got := <-fastDone:
		for i, f := range got {
			if f.isGap() || f.Seq != uint64(i+1) {
				t.Fatalf("fast client frame %d: %v, want seq %d", i, f, i+1)
			}
		}
	case err := <-fastErr:
		t.Fatalf("fast client: %v", err)
	}

	// Now the slow client reads: every seq is either sent or named by a gap.
	var gaps []bus.Gap
	seen := map[uint64]int{}
	readSeqsUntil(t, slow, func(f frame) bool {
		if f.isGap() {
			g := f.gap(t)
			gaps = append(gaps, g)
			for seq := g.FromSeq; seq <= g.ToSeq; seq++ {
				seen[seq]++
			}
			return g.ToSeq == n
		}
		seen[f.Seq]++
		return f.Seq == n
	})
	if len(gaps) == 0 {
		t.Fatal("the slow client got no gap")
	}
	for _, g := range gaps {
		if g.Reason != bus.GapLagging || g.Dropped != g.ToSeq-g.FromSeq+1 {
			t.Errorf("gap %+v, want a lagging gap counting its range", g)
		}
	}
	for seq := uint64(1); seq <= n; seq++ {
		if seen[seq] != 1 {
			t.Fatalf("slow client: seq %d sent or named %d times; gaps %+v", seq, seen[seq], gaps)
		}
	}
	if st := slowFeed.feed.Stats(); st.GapsSent != uint64(len(gaps)) || st.SlowDisconnects != 0 {
		t.Errorf("slow feed stats %+v, want %d gaps, no disconnect", st, len(gaps))
	}
	if st := fastFeed.feed.Stats(); st.GapsSent != 0 || st.FramesSent != n {
		t.Errorf("fast feed stats %+v, want %d frames, no gap", st, n)
	}
}

// A client that cannot take one frame within WriteTimeout is disconnected
// with 1013 and a reason (which it reads once it drains its socket).
func TestFeedStuckClientDisconnected(t *testing.T) {
	b, s := newFeed(t, bus.Config{}, Config{Buffer: 16, WriteTimeout: 300 * time.Millisecond, PingInterval: time.Minute})
	conn := s.dial(t, "", smallReceiveBuffer())

	body := strings.Repeat("a=x-padding:0123456789abcdef\r\n", 140)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; s.feed.Stats().SlowDisconnects == 0; i++ {
		if ctx.Err() != nil {
			t.Fatalf("no slow disconnect after %d events: %+v", i, s.feed.Stats())
		}
		if err := b.Publish(ctx, sipMessage(fmt.Sprintf("call-%d", i), body)); err != nil {
			t.Fatal(err)
		}
	}
	err := readClose(t, conn)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusTryAgainLater || !strings.Contains(ce.Reason, "too slow") {
		t.Fatalf("closed with %v, want 1013 too slow", err)
	}
	bustest.CheckFor(t, 10*time.Second, func() error {
		if n := s.feed.Clients(); n != 0 {
			return fmt.Errorf("%d clients", n)
		}
		return nil
	})
}

// Pings keep an idle client that answers them; a client that does not is
// closed with 1008.
func TestFeedPing(t *testing.T) {
	const interval = 200 * time.Millisecond

	t.Run("client=answering", func(t *testing.T) {
		b, s := newFeed(t, bus.Config{}, Config{PingInterval: interval})
		var pings atomic.Int64
		conn := s.dial(t, "", &websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool {
			pings.Add(1)
			return true
		}})
		frames := make(chan frame, 1)
		readErr := make(chan error, 1)
		go func() { // a reader answers the pings
			typ, p, err := conn.Read(context.Background())
			if err == nil {
				var f frame
				if f, err = decodeFrame(typ, p); err == nil {
					frames <- f
					return
				}
			}
			readErr <- err
		}()
		bustest.CheckFor(t, 10*time.Second, func() error {
			if n := pings.Load(); n < 3 {
				return fmt.Errorf("%d pings", n)
			}
			return nil
		})
		publishAll(t, b, created("idle"))
		select {
		case f := <-frames:
			if f.Type != "CallCreated" || f.SessionID != "idle" {
				t.Errorf("frame %v, want CallCreated/idle", f)
			}
		case err := <-readErr:
			t.Fatalf("idle client: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no frame")
		}
		if st := s.feed.Stats(); st.Clients != 1 || st.PingTimeouts != 0 {
			t.Errorf("stats %+v, want the client kept", st)
		}
	})

	t.Run("client=silent", func(t *testing.T) {
		_, s := newFeed(t, bus.Config{}, Config{PingInterval: interval})
		conn := s.dial(t, "", nil) // never reads until told: no pong
		bustest.CheckFor(t, 10*time.Second, func() error {
			if n := s.feed.Stats().PingTimeouts; n != 1 {
				return fmt.Errorf("%d ping timeouts", n)
			}
			return nil
		})
		err := readClose(t, conn)
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("closed with %v, want 1008", err)
		}
		bustest.CheckFor(t, 10*time.Second, func() error {
			if n := s.feed.Clients(); n != 0 {
				return fmt.Errorf("%d clients", n)
			}
			return nil
		})
	})
}

// Close ends every client with StatusGoingAway, Handle returns, and no
// goroutine of the feed is left.
func TestFeedClose(t *testing.T) {
	b, s := newFeed(t, bus.Config{}, Config{})
	before := goleak.IgnoreCurrent()
	const n = 3
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = s.dial(t, "", nil)
	}
	publishAll(t, b, created("s1"))
	for _, c := range conns {
		if f := readFrame(t, c); f.Type != "CallCreated" {
			t.Fatalf("frame %v", f)
		}
	}
	if got := s.feed.Clients(); got != n {
		t.Fatalf("%d clients, want %d", got, n)
	}

	closed := make(chan error, n)
	for _, c := range conns {
		go func() {
			_, _, err := c.Read(context.Background())
			closed <- err
		}()
	}
	if err := s.feed.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("client closed with %v, want going away", err)
		}
	}
	if got, ret := s.feed.Clients(), s.returned.Load(); got != 0 || ret != n {
		t.Errorf("after Close: %d clients, %d Handle calls returned; want 0 and %d", got, ret, n)
	}
	if err := s.feed.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, c := range conns {
		c.CloseNow()
	}
	s.srv.CloseClientConnections()
	goleak.VerifyNone(t, before)
}

// A client that never answers the close handshake holds Close only until
// its deadline: its connection is then cut, Handle returns, and Close says
// so.
func TestFeedCloseAtTheDeadline(t *testing.T) {
	_, s := newFeed(t, bus.Config{}, Config{})
	s.dial(t, "", nil) // never read: the close frame goes unanswered
	bustest.CheckFor(t, 5*time.Second, func() error {
		if n := s.feed.Clients(); n != 1 {
			return fmt.Errorf("%d clients, want 1", n)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err := s.feed.Close(ctx)
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("Close took %v with a 200ms deadline", took)
	}
	var re *callcore.RunningError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "1 connections cut short") {
		t.Fatalf("Close = %v, want one connection cut short", err)
	}
	bustest.CheckFor(t, 5*time.Second, func() error {
		if n := s.returned.Load(); n != 1 {
			return fmt.Errorf("%d Handle calls returned, want 1", n)
		}
		return nil
	})
	if again := s.feed.Close(t.Context()); again != err {
		t.Fatalf("second Close = %v, want the first's result", again)
	}
}

func TestGapFrame(t *testing.T) {
	at := time.Date(2026, 11, 27, 3, 14, 7, 123456000, time.UTC)
	got := string(GapFrame("a", at, bus.Gap{FromSeq: 5, ToSeq: 9, Dropped: 7, Reason: bus.GapLagging}))
	want := `{"time":"2026-11-27T03:14:07.123456Z","node":"a","channel":"feed","type":"Gap","data":{"from_seq":5,"to_seq":9,"dropped":7,"reason":"lagging"}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// When the bus closes, each client gets what its tap still holds, then
// StatusGoingAway; a new request is refused as unavailable.
func TestFeedBusClosed(t *testing.T) {
	b, s := newFeed(t, bus.Config{}, Config{})
	conn := s.dial(t, "", nil)
	publishAll(t, b, created("s1"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if f := readFrame(t, conn); f.Seq != 1 || f.Type != "CallCreated" {
		t.Fatalf("frame %v, want CallCreated seq 1", f)
	}
	if err := readClose(t, conn); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("closed with %v, want going away", err)
	}
	if _, _, err := websocket.Dial(ctx, s.url(""), nil); err == nil {
		t.Fatal("dial succeeded on a closed bus")
	}
	if code := callcore.ErrorCode(s.handleErr(t)); code != callcore.CodeUnavailable {
		t.Errorf("code %s, want unavailable", code)
	}
}
