package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testNode = "n1"

// SDP fixtures. remoteOffer is what a phone offers in its INVITE;
// mediaAnswer and mediaOffer are what media makes; remoteAnswer is a
// phone's answer to mediaOffer (PCMA chosen).
const (
	remoteOffer = "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n" +
		"m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n" +
		"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
	mediaAnswer = "v=0\r\no=callbus 1000 1 IN IP4 127.0.0.1\r\ns=callbus\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
	mediaOffer = "v=0\r\no=callbus 2000 7 IN IP4 127.0.0.1\r\ns=callbus\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 20002 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n" +
		"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
	remoteAnswer = "v=0\r\no=bob 77 77 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n" +
		"m=audio 30000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)

// record is one event seen on the bus.
type record struct {
	env events.Envelope
	ev  events.Event
}

// harness runs a real bus with Hub on it. The test plays dialog and
// media: it publishes their events and reads what the session sent them.
// Every event the session publishes (session_to_dialog, session_to_media,
// session_to_app) is recorded per key, in bus order, and each test must
// expect all of them: finish fails on any left unread. CallUpdated is kept
// apart (updates): finish checks that every call's latest one is the
// call's resource and that none repeats the one before it.
type harness struct {
	t   *testing.T
	bus *bus.Memory
	s   *Hub

	mu      sync.Mutex
	out     map[string][]record        // what the session published, per key
	updates map[string][]callcore.Call // the CallUpdated of each call, in order
	in      map[string][]record        // what the test published (dialog, media, commands), per key
	cursor  map[string]int
	failed  []string // bus handler failures, from the log
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, out: map[string][]record{}, in: map[string][]record{}, cursor: map[string]int{},
		updates: map[string][]callcore.Call{}}
	log := slog.New(&failHandler{h: h})
	b, err := bus.New(bus.Config{Node: testNode, Logger: log, StopGrace: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.bus = b
	sub := func(name string, into map[string][]record, channels ...string) {
		_, err := b.Subscribe(bus.Subscriber{Name: name, Channels: channels,
			Handle: func(_ context.Context, env events.Envelope, ev events.Event) error {
				h.mu.Lock()
				if u, ok := ev.(*events.CallUpdated); ok {
					h.updates[u.SessionID] = append(h.updates[u.SessionID], u.Call)
				} else {
					into[ev.Key()] = append(into[ev.Key()], record{env, ev})
				}
				h.mu.Unlock()
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
	sub("recorder", h.out, events.ChannelSessionToDialog, events.ChannelSessionToMedia, events.ChannelSessionToApp)
	sub("inputs", h.in, events.ChannelDialogToSession, events.ChannelMediaToSession, events.ChannelAPIToSession)
	s, err := New(cfg, b, log)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.finish)
	return h
}

// finish closes Hub and the bus, then checks that every event the
// session published was expected and that no handler failed.
func (h *harness) finish() {
	t := h.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.s.Close(ctx); err != nil {
		t.Errorf("Hub.Close: %v", err)
	}
	if err := h.s.Close(ctx); err != nil {
		t.Errorf("second Hub.Close: %v", err)
	}
	if err := h.bus.Close(ctx); err != nil {
		t.Errorf("bus.Close: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.failed {
		t.Errorf("bus handler failed: %s", f)
	}
	if t.Failed() {
		return
	}
	for key, list := range h.out {
		if n := h.cursor[key]; n < len(list) {
			t.Errorf("%s: unexpected events after the expected ones: %s", key, kinds(list[n:]))
		}
	}
	for id, ups := range h.updates {
		for i := 1; i < len(ups); i++ {
			if sameCall(&ups[i], &ups[i-1]) {
				t.Errorf("%s: CallUpdated %d repeats the one before it: %+v", id, i, ups[i])
			}
		}
		if c, ok := h.s.Get(id); ok && !sameCall(&c, &ups[len(ups)-1]) {
			t.Errorf("%s: latest CallUpdated %+v, but the call is %+v", id, ups[len(ups)-1], c)
		}
	}
	for _, c := range h.s.List() {
		if len(h.updates[c.ID]) == 0 {
			t.Errorf("%s: no CallUpdated published for the call", c.ID)
		}
	}
}

// failHandler is the log of the test: it records bus handler failures.
type failHandler struct{ h *harness }

func (f *failHandler) Enabled(context.Context, slog.Level) bool { return true }
func (f *failHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "bus handler failed" {
		var b strings.Builder
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
		f.h.mu.Lock()
		f.h.failed = append(f.h.failed, b.String())
		f.h.mu.Unlock()
	}
	return nil
}
func (f *failHandler) WithAttrs([]slog.Attr) slog.Handler { return f }
func (f *failHandler) WithGroup(string) slog.Handler      { return f }

// kind names an event as the tests write it: "dialog:AcceptCall",
// "media:StartMediaStream", "app:CallAnswered".
func kind(ev events.Event) string {
	return strings.TrimPrefix(ev.Channel(), "session_to_") + ":" + ev.Type()
}

func kinds(rs []record) string {
	k := make([]string, len(rs))
	for i, r := range rs {
		k[i] = kind(r.ev)
	}
	return "[" + strings.Join(k, " ") + "]"
}

// waitTimeout bounds every wait of the tests.
const waitTimeout = 5 * time.Second

// expect waits for the next events the session published under key and
// checks that they are exactly want, in order; it returns them.
func (h *harness) expect(key string, want ...string) []record {
	h.t.Helper()
	var got []record
	bustest.CheckFor(h.t, waitTimeout, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		list, n := h.out[key], h.cursor[key]
		if len(list)-n < len(want) {
			return fmt.Errorf("%s: want %v next, have %s", key, want, kinds(list[n:]))
		}
		got = append([]record(nil), list[n:n+len(want)]...)
		return nil
	})
	for i, r := range got {
		if kind(r.ev) != want[i] {
			h.t.Fatalf("%s: want %v next, got %s", key, want, kinds(got))
		}
	}
	h.mu.Lock()
	h.cursor[key] += len(want)
	h.mu.Unlock()
	return got
}

// expectEv waits for the next event under key, checks its kind and
// returns it as T.
func expectEv[T events.Event](h *harness, key, want string) T {
	h.t.Helper()
	r := h.expect(key, want)[0]
	ev, ok := r.ev.(T)
	if !ok {
		h.t.Fatalf("%s: %s is a %T", key, want, r.ev)
	}
	return ev
}

// input returns the envelope of the first event of type typ the test
// published under key, once the bus has delivered it.
func (h *harness) input(key, typ string) events.Envelope {
	h.t.Helper()
	var env events.Envelope
	bustest.CheckFor(h.t, waitTimeout, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, r := range h.in[key] {
			if r.ev.Type() == typ {
				env = r.env
				return nil
			}
		}
		return fmt.Errorf("%s: no %s published", key, typ)
	})
	return env
}

// newKeys returns the keys with recorded output that are not in known.
func (h *harness) newKeys(known ...string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for k := range h.out {
		found := false
		for _, o := range known {
			found = found || o == k
		}
		if !found {
			out = append(out, k)
		}
	}
	return out
}

func (h *harness) publish(ev events.Event) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.bus.Publish(ctx, ev); err != nil {
		h.t.Fatalf("publish %s: %v", ev.Type(), err)
	}
}

func (h *harness) request(cmd events.Event) (*events.CommandResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return h.bus.Request(ctx, cmd)
}

// ok sends cmd and checks that it is accepted, leaving the call in state.
func (h *harness) ok(cmd events.Event, state callcore.CallState) {
	h.t.Helper()
	res, err := h.request(cmd)
	if err != nil {
		h.t.Fatalf("%s: %v", cmd.Type(), err)
	}
	if res.ID != cmd.Key() || res.State != string(state) {
		h.t.Fatalf("%s: got %+v, want id %s state %s", cmd.Type(), res, cmd.Key(), state)
	}
}

// refused sends cmd and checks that it is refused with code (and field,
// for validation_failed).
func (h *harness) refused(cmd events.Event, code callcore.Code, field string) *callcore.Error {
	h.t.Helper()
	res, err := h.request(cmd)
	var ce *callcore.Error
	if !errors.As(err, &ce) {
		h.t.Fatalf("%s: got %+v, %v; want a *callcore.Error %s", cmd.Type(), res, err, code)
	}
	if ce.Code != code || ce.Field != field {
		h.t.Fatalf("%s: got %s (field %q): %v; want %s (field %q)", cmd.Type(), ce.Code, ce.Field, ce, code, field)
	}
	return ce
}

// lastUpdate returns the latest CallUpdated of id, or false.
func (h *harness) lastUpdate(id string) (callcore.Call, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ups := h.updates[id]
	if len(ups) == 0 {
		return callcore.Call{}, false
	}
	return ups[len(ups)-1], true
}

// waitUpdate polls until the latest CallUpdated of id satisfies ok.
func (h *harness) waitUpdate(id string, ok func(callcore.Call) bool) callcore.Call {
	h.t.Helper()
	var c callcore.Call
	bustest.CheckFor(h.t, waitTimeout, func() error {
		var have bool
		if c, have = h.lastUpdate(id); !have || !ok(c) {
			return fmt.Errorf("%s: latest CallUpdated %+v (have=%v)", id, c, have)
		}
		return nil
	})
	return c
}

// call returns the resource of id, failing the test when it is unknown.
func (h *harness) call(id string) callcore.Call {
	h.t.Helper()
	c, ok := h.s.Get(id)
	if !ok {
		h.t.Fatalf("Get(%s): unknown", id)
	}
	return c
}

// internals is what the session keeps of a call beyond its resource.
type internals struct {
	heldBy     []string // events.ByLocal and/or events.ByRemote
	transfer   *TransferInProgress
	transferOf string
	webhookURL string
}

// internals reads them under the call's lock, failing the test when the
// call is unknown.
func (h *harness) internals(id string) internals {
	h.t.Helper()
	c := h.s.lookup(id)
	if c == nil {
		h.t.Fatalf("lookup(%s): unknown", id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	in := internals{transferOf: c.transferOf, webhookURL: c.webhookURL}
	if c.localHold {
		in.heldBy = append(in.heldBy, events.ByLocal)
	}
	if c.remoteHold {
		in.heldBy = append(in.heldBy, events.ByRemote)
	}
	if c.transfer != nil {
		t := *c.transfer
		in.transfer = &t
	}
	return in
}

func sref(id string) events.SessionRef { return events.SessionRef{SessionID: id} }

func newID() string { return callcore.NewSessionID(testNode) }

// incoming publishes an IncomingCall to "to" and returns its session id.
func (h *harness) incoming(to string) string {
	id := newID()
	h.publish(&events.IncomingCall{SessionRef: sref(id), CallID: "cid-" + id,
		From: "<sip:alice@example.com>;tag=a1", To: to, SDPOffer: remoteOffer})
	return id
}

// answeredInbound runs an inbound call under the ring policy to active.
func (h *harness) answeredInbound() string {
	h.t.Helper()
	id := h.incoming("<sip:bob@callbus.test>")
	h.expect(id, "app:CallCreated")
	h.ok(&events.CmdAnswerCall{SessionRef: sref(id)}, callcore.StateRinging)
	h.expect(id, "media:StartMediaStream")
	h.publish(&events.MediaStreamStarted{SessionRef: sref(id), LocalPort: 20000, Codec: "PCMU", LocalSDP: mediaAnswer})
	h.expect(id, "dialog:AcceptCall")
	h.publish(&events.CallEstablished{SessionRef: sref(id)})
	h.expect(id, "app:CallAnswered")
	return id
}

// answeredOutbound runs an outgoing call to active.
func (h *harness) answeredOutbound() string {
	h.t.Helper()
	id := newID()
	h.ok(&events.CmdMakeCall{SessionRef: sref(id), To: "sip:bob@example.com"}, callcore.StateInitiating)
	h.expect(id, "app:CallCreated", "media:StartMediaStream")
	h.publish(&events.MediaStreamStarted{SessionRef: sref(id), LocalPort: 20002, Codec: "PCMU", LocalSDP: mediaOffer})
	h.expect(id, "dialog:InitiateCall")
	h.publish(&events.CallStateChanged{SessionRef: sref(id), NewState: "ringing"})
	h.expect(id, "app:CallRinging")
	h.publish(&events.CallEstablished{SessionRef: sref(id), SDPAnswer: remoteAnswer})
	h.expect(id, "media:UpdateMediaStream", "app:CallAnswered")
	return id
}

// remoteBye ends an answered call from the far end.
func (h *harness) remoteBye(id string) *events.CallEnded {
	h.t.Helper()
	h.publish(&events.CallTerminated{SessionRef: sref(id), Reason: "remote_hangup"})
	h.expect(id, "media:StopMediaStream")
	h.publish(&events.MediaStreamStopped{SessionRef: sref(id), Reason: "stopped"})
	return expectEv[*events.CallEnded](h, id, "app:CallEnded")
}

// waitState polls until the call's snapshot is in state.
func (h *harness) waitState(id string, state callcore.CallState) callcore.Call {
	h.t.Helper()
	var c callcore.Call
	bustest.CheckFor(h.t, waitTimeout, func() error {
		c = h.call(id)
		if c.State != state {
			return fmt.Errorf("%s is %s, want %s", id, c.State, state)
		}
		return nil
	})
	return c
}
