package session

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
)

func newBus(t *testing.T) *bus.Memory {
	t.Helper()
	b, err := bus.New(bus.Config{Node: testNode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("bus.Close: %v", err)
		}
	})
	return b
}

func TestNewRefusesBadConfig(t *testing.T) {
	b := newBus(t)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"inbound=pickup", Config{Inbound: "pickup"}},
		{"ring_timeout=-1s", Config{RingTimeout: -time.Second}},
		{"max_calls=-1", Config{MaxCalls: -1}},
		{"from=not-sip", Config{From: "callbus"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, b, nil); !errors.Is(err, ErrBadConfig) {
				t.Fatalf("New: %v, want ErrBadConfig", err)
			}
		})
	}
	if _, err := New(Config{}, nil, nil); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("New with a nil bus: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	s, err := New(Config{}, newBus(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if c.Node != testNode || c.Inbound != PolicyRing || c.RingTimeout != 30*time.Second || c.RecentCalls != 1000 ||
		c.From != DefaultFrom || len(c.Codecs) != 2 || c.Codecs[0] != "PCMU" || c.Codecs[1] != "PCMA" {
		t.Fatalf("defaults: %+v", c)
	}
	if err := s.Close(t.Context()); err != nil { // never opened
		t.Fatal(err)
	}
}

func TestOpenClose(t *testing.T) {
	b := newBus(t)
	s, err := New(Config{}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); !errors.Is(err, ErrAlreadyOpen) {
		t.Fatalf("second Open: %v", err)
	}
	// A second server of api_to_session is refused by the bus.
	other, _ := New(Config{}, b, nil)
	if err := other.Open(context.Background()); err == nil {
		t.Fatal("a second Hub opened on the same bus")
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Open(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Open after Close: %v", err)
	}
	// Closed, the session no longer serves commands.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = b.Request(ctx, &events.CmdAnswerCall{SessionRef: sref(newID())})
	if callcore.ErrorCode(err) != callcore.CodeUnavailable {
		t.Fatalf("Request after Close: %v, want unavailable", err)
	}
}

// A timer callback that does not return holds Close only until its
// deadline; Close then names it, and says so again when called again.
func TestCloseAtTheDeadline(t *testing.T) {
	s, err := New(Config{}, newBus(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	running, release := make(chan struct{}), make(chan struct{})
	s.timers.after(0, func(context.Context) { close(running); <-release })
	<-running
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = s.Close(ctx)
	close(release)
	var re *callcore.RunningError
	if !errors.As(err, &re) || !slices.Equal(re.Running, []string{"timer"}) {
		t.Fatalf("Close = %v, want a RunningError naming the timer", err)
	}
	if again := s.Close(t.Context()); again != err {
		t.Fatalf("second Close = %v, want the first's result", again)
	}
}

// Close stops the timers of live calls (goleak checks the goroutines; the
// harness that nothing more was published).
func TestCloseStopsTimers(t *testing.T) {
	h := newHarness(t, Config{RingTimeout: time.Hour, TeardownTimeout: time.Hour})
	for i := 0; i < 10; i++ {
		ringing := h.incoming("sip:bob@callbus.test") // arms the ring timer
		h.expect(ringing, "app:CallCreated")
		ending := h.answeredInbound()
		h.ok(&events.CmdHangupCall{SessionRef: sref(ending)}, callcore.StateTerminating) // arms the teardown guard
		h.expect(ending, "dialog:TerminateSession", "media:StopMediaStream")
	}
	armed := func() int {
		h.s.timers.mu.Lock()
		defer h.s.timers.mu.Unlock()
		return len(h.s.timers.set)
	}
	if n := armed(); n != 20 {
		t.Fatalf("%d timers armed, want 20", n)
	}
	if err := h.s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := armed(); n != 0 {
		t.Fatalf("%d timers armed after Close", n)
	}
}

// Terminated calls stay listed until RecentCalls newer ones ended.
func TestRecentCalls(t *testing.T) {
	h := newHarness(t, Config{RecentCalls: 2})
	live := h.incoming("sip:bob@callbus.test")
	h.expect(live, "app:CallCreated")
	var ended []string
	for i := 0; i < 3; i++ {
		id := h.incoming("sip:bob@callbus.test")
		h.expect(id, "app:CallCreated")
		h.ok(&events.CmdRejectCall{SessionRef: sref(id)}, callcore.StateTerminated)
		h.expect(id, "dialog:RejectCall", "app:CallEnded")
		ended = append(ended, id)
	}
	if _, ok := h.s.Get(ended[0]); ok {
		t.Fatal("the oldest terminated call is still known")
	}
	list := h.s.List()
	if len(list) != 3 || list[0].ID != live || list[1].ID != ended[1] || list[2].ID != ended[2] {
		t.Fatalf("List() = %v", ids(list))
	}
	if list[1].State != callcore.StateTerminated || list[1].EndReason != callcore.EndRejected || list[1].EndedAt.IsZero() {
		t.Fatalf("terminated call: %+v", list[1])
	}
	h.refused(&events.CmdHangupCall{SessionRef: sref(ended[0])}, callcore.CodeNotFound, "")
	h.refused(&events.CmdHangupCall{SessionRef: sref(ended[2])}, callcore.CodeInvalidState, "")
}

// Events for sessions the layer does not know are dropped without failing.
func TestUnknownSessionEvents(t *testing.T) {
	h := newHarness(t, Config{})
	id := newID()
	h.publish(&events.CallTerminated{SessionRef: sref(id), Reason: "remote_hangup"})
	h.publish(&events.MediaStreamStarted{SessionRef: sref(id)})
	h.input(id, "MediaStreamStarted")
}

// Many calls at once, each on its own key: the map and counters hold.
func TestConcurrentCalls(t *testing.T) {
	h := newHarness(t, Config{Inbound: PolicyAnswer})
	const n = 50
	ids := make([]string, n)
	for i := range ids {
		ids[i] = h.incoming("sip:bob@callbus.test")
	}
	for _, id := range ids {
		h.expect(id, "app:CallCreated", "media:StartMediaStream")
		h.publish(&events.MediaStreamStarted{SessionRef: sref(id), Codec: "PCMU", LocalSDP: mediaAnswer})
	}
	for _, id := range ids {
		h.expect(id, "dialog:AcceptCall")
		h.publish(&events.CallEstablished{SessionRef: sref(id)})
		h.publish(&events.CallTerminated{SessionRef: sref(id), Reason: "remote_hangup"})
		h.publish(&events.MediaStreamStopped{SessionRef: sref(id)})
		_ = h.s.List()
	}
	for _, id := range ids {
		h.expect(id, "app:CallAnswered", "media:StopMediaStream", "app:CallEnded")
	}
	if live := h.s.Live(); live != 0 {
		t.Fatalf("Live() = %d", live)
	}
}

func ids(cs []callcore.Call) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// The snapshot marshals to the call resource's field names, without the
// in-process ones.
func TestCallJSON(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredInbound()
	b, err := json.Marshal(h.call(id))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "direction", "from", "to", "state", "created_at", "answered_at", "sip_call_id", "held", "media"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, b)
		}
	}
	for _, k := range []string{"ended_at", "end_reason", "WebhookURL", "HeldBy", "Headers", "Transfer", "TransferOf"} {
		if _, ok := m[k]; ok {
			t.Errorf("%q in %s", k, b)
		}
	}
	if media := m["media"].(map[string]any); media["codec"] != "PCMU" || media["local_rtp"] != "127.0.0.1:20000" {
		t.Errorf("media %v", media)
	}
}

// Every change of a call's resource is followed by a CallUpdated carrying
// the call as it stands after it: the states an inbound call passes
// through appear in order, and the answer, the codec and the end are in
// the resource that follows the event that caused them.
func TestCallUpdatedFollowsEachChange(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredInbound()
	up := h.waitUpdate(id, func(c callcore.Call) bool { return c.State == callcore.StateActive })
	if up.AnsweredAt.IsZero() || up.Media.Codec != "PCMU" || up.Media.LocalRTP != "127.0.0.1:20000" || up.Direction != callcore.Inbound {
		t.Fatalf("CallUpdated after the answer: %+v", up)
	}
	h.publish(&events.CallTerminated{SessionRef: sref(id), Reason: "remote_hangup"})
	h.expect(id, "media:StopMediaStream")
	h.publish(&events.MediaStreamStopped{SessionRef: sref(id)})
	h.expect(id, "app:CallEnded")
	end := h.waitUpdate(id, func(c callcore.Call) bool { return c.State == callcore.StateTerminated })
	if end.EndReason != callcore.EndRemoteHangup || end.EndedAt.IsZero() {
		t.Fatalf("CallUpdated after the end: %+v", end)
	}
	h.mu.Lock()
	var states []callcore.CallState
	for _, c := range h.updates[id] {
		if len(states) == 0 || states[len(states)-1] != c.State {
			states = append(states, c.State)
		}
	}
	h.mu.Unlock()
	want := []callcore.CallState{callcore.StateRinging, callcore.StateActive, callcore.StateTerminating, callcore.StateTerminated}
	if !slices.Equal(states, want) {
		t.Fatalf("states in CallUpdated: %v, want %v", states, want)
	}
}
