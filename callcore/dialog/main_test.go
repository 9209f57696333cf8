package dialog

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
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

const (
	waitFor = 5 * time.Second

	offerSDP = "v=0\r\no=alice 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
	answerSDP = "v=0\r\no=callbus 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 10000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"

	farContact = "<sip:alice@10.0.0.2:5060>"
	farFrom    = `"Alice" <sip:alice@10.0.0.2>`
	ourTo      = "<sip:bob@127.0.0.1:5060>"
)

// harness runs Hub on a real bus and records, in seq order, every
// event the dialog publishes (dialog_to_transport and dialog_to_session).
type harness struct {
	t   *testing.T
	bus *bus.Memory
	d   *Hub

	mu     sync.Mutex
	got    []events.Event
	envs   []events.Envelope                // the envelopes of got
	inputs map[events.Event]events.Envelope // what the test published
	next   int
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	b, err := bus.New(bus.Config{Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("bus Close: %v", err)
		}
	})
	cfg := Config{ContactAddr: "127.0.0.1:5060", T1: time.Minute, UserAgent: "callbus-test"}
	if mod != nil {
		mod(&cfg)
	}
	d, err := New(cfg, b, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, bus: b, d: d, inputs: make(map[events.Event]events.Envelope)}
	tap, err := b.Tap(bus.TapConfig{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			r, err := tap.Next(context.Background())
			if err != nil {
				return
			}
			if r.Gap != nil {
				t.Errorf("tap gap: %+v", *r.Gap)
				continue
			}
			h.mu.Lock()
			switch r.Event.Channel() {
			case events.ChannelDialogToTransport, events.ChannelDialogToSession:
				h.got = append(h.got, r.Event)
				h.envs = append(h.envs, r.Envelope)
			default:
				h.inputs[r.Event] = r.Envelope
			}
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = tap.Close(); <-done })
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bustest.Close(t, "dialog", d.Close) })
	return h
}

// publish publishes ev as the transport or the session would.
func (h *harness) publish(ev events.Event) {
	h.t.Helper()
	if err := h.bus.Publish(context.Background(), ev); err != nil {
		h.t.Fatalf("publish %s: %v", ev.Type(), err)
	}
}

// expect waits for the next len(want) events the dialog published and
// checks their descriptions (see describe), in order.
func (h *harness) expect(want ...string) []events.Event {
	h.t.Helper()
	var evs []events.Event
	bustest.CheckFor(h.t, waitFor, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.got)-h.next < len(want) {
			return fmt.Errorf("want %v, have only %v", want, describeAll(h.got[h.next:]))
		}
		evs = append([]events.Event(nil), h.got[h.next:h.next+len(want)]...)
		h.next += len(want)
		return nil
	})
	got := describeAll(evs)
	for i := range want {
		if got[i] != want[i] {
			h.t.Fatalf("published %v, want %v", got, want)
		}
	}
	return evs
}

// all returns every event the dialog has published so far.
func (h *harness) all() []events.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]events.Event(nil), h.got...)
}

// causes returns the cause of every event the dialog has published so far.
func (h *harness) causes() []events.ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]events.ID, len(h.envs))
	for i, env := range h.envs {
		out[i] = env.Cause
	}
	return out
}

// idOf waits until the tap saw ev, published by the test, and returns its id.
func (h *harness) idOf(ev events.Event) events.ID {
	h.t.Helper()
	var id events.ID
	bustest.CheckFor(h.t, waitFor, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		env, ok := h.inputs[ev]
		if !ok {
			return fmt.Errorf("%s not seen on the bus", ev.Type())
		}
		id = env.ID
		return nil
	})
	return id
}

// skipTo moves the cursor past everything published so far.
func (h *harness) skipTo(n int) {
	h.mu.Lock()
	h.next = n
	h.mu.Unlock()
}

// syncCall proves every earlier event of a Call-ID was handled, and that
// nothing but what the test expected was published for it: an OPTIONS on
// the same key is answered 200 next.
func (h *harness) syncCall(callID string) {
	h.t.Helper()
	m := sipReq("OPTIONS", callID, farFrom+";tag=probe", ourTo, 1, "")
	h.publish(m)
	r := h.expect("resp 200")[0].(*events.SendSipResponse)
	if r.TransactionID != m.TransactionID {
		h.t.Fatalf("200 for %s, want the probe's %s", r.TransactionID, m.TransactionID)
	}
}

// syncSession does the same for a session id: a SendDtmf with a bad tone
// is answered with a DialogError.
func (h *harness) syncSession(sid string) {
	h.t.Helper()
	h.publish(&events.SendDtmf{SessionRef: events.SessionRef{SessionID: sid}, Tones: "?"})
	h.expect("DialogError")
}

// describe names an event for expect: "req INVITE", "resp 180", or the
// event type.
func describe(ev events.Event) string {
	switch e := ev.(type) {
	case *events.SendSipMessage:
		return "req " + e.Method
	case *events.SendSipResponse:
		return "resp " + strconv.Itoa(e.StatusCode)
	case *events.CallStateChanged:
		return "state " + e.NewState
	case *events.CallTerminated:
		return "terminated " + string(e.Reason)
	}
	return ev.Type()
}

func describeAll(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = describe(ev)
	}
	return out
}

// sipReq builds a request from the far end (10.0.0.2) as the transport
// publishes it.
func sipReq(method, callID, from, to string, cseq int, body string, extra ...events.Header) *events.SipMessageReceived {
	hs := events.Headers{
		{Name: "Via", Value: "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK" + callcore.NewID("")},
		{Name: "Max-Forwards", Value: "70"},
		{Name: "From", Value: from},
		{Name: "To", Value: to},
		{Name: "Call-ID", Value: callID},
		{Name: "CSeq", Value: fmt.Sprintf("%d %s", cseq, method)},
		{Name: "Contact", Value: farContact},
	}
	hs = append(hs, extra...)
	return &events.SipMessageReceived{
		Source:        "10.0.0.2:5060",
		Transport:     "udp",
		Method:        method,
		RequestURI:    "sip:bob@127.0.0.1:5060",
		Headers:       hs,
		Body:          body,
		TransactionID: callcore.NewID("st_"),
	}
}

// sipResp builds the far end's response to a request of ours, with toTag
// added to To when given.
func sipResp(req *events.SendSipMessage, code int, toTag, body string, extra ...events.Header) *events.SipResponseReceived {
	to := req.Headers.Get("To")
	if toTag != "" && tagOf(to) == "" {
		to += ";tag=" + toTag
	}
	hs := events.Headers{
		{Name: "Via", Value: "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK" + callcore.NewID("")},
		{Name: "From", Value: req.Headers.Get("From")},
		{Name: "To", Value: to},
		{Name: "Call-ID", Value: req.Headers.Get("Call-ID")},
		{Name: "CSeq", Value: req.Headers.Get("CSeq")},
	}
	hs = append(hs, extra...)
	return &events.SipResponseReceived{
		TransactionID: req.TransactionID,
		StatusCode:    code,
		ReasonPhrase:  callcore.ReasonPhrase(code),
		Headers:       hs,
		Body:          body,
	}
}

// header returns the value of a header, failing the test when absent.
func header(t *testing.T, hs events.Headers, name string) string {
	t.Helper()
	v := hs.Get(name)
	if v == "" {
		t.Fatalf("no %s header in %v", name, hs)
	}
	return v
}

func wantHeader(t *testing.T, hs events.Headers, name, want string) {
	t.Helper()
	if got := hs.Get(name); got != want {
		t.Fatalf("%s = %q, want %q", name, got, want)
	}
}

// inbound is an incoming call seen from the far end.
type inbound struct {
	callID, sid, tag, localTag string
	invite                     *events.SipMessageReceived
	cseq                       int // the far end's last CSeq
}

func (c *inbound) from() string { return farFrom + ";tag=" + c.tag }
func (c *inbound) to() string   { return ourTo + ";tag=" + c.localTag }

// req builds an in-dialog request from the far end with the next CSeq.
func (c *inbound) req(method, body string, extra ...events.Header) *events.SipMessageReceived {
	c.cseq++
	return sipReq(method, c.callID, c.from(), c.to(), c.cseq, body, extra...)
}

// ring delivers a new INVITE and checks 100, IncomingCall, 180 and ringing.
func (h *harness) ring(extra ...events.Header) *inbound {
	h.t.Helper()
	c := &inbound{callID: callcore.NewID("") + "@10.0.0.2", tag: "a" + callcore.NewID(""), cseq: 1}
	extra = append([]events.Header{{Name: "Content-Type", Value: "application/sdp"}}, extra...)
	c.invite = sipReq("INVITE", c.callID, c.from(), ourTo, 1, offerSDP, extra...)
	h.publish(c.invite)
	evs := h.expect("resp 100", "IncomingCall", "resp 180", "state ringing")
	if r := evs[0].(*events.SendSipResponse); r.TransactionID != c.invite.TransactionID {
		h.t.Fatalf("100 on %s, want the INVITE's %s", r.TransactionID, c.invite.TransactionID)
	}
	ic := evs[1].(*events.IncomingCall)
	c.sid = ic.SessionID
	if callcore.SessionNode(c.sid) != "n1" {
		h.t.Fatalf("session id %q is not owned by node n1", c.sid)
	}
	ringing := evs[2].(*events.SendSipResponse)
	c.localTag = tagOf(ringing.Headers.Get("To"))
	if c.localTag == "" {
		h.t.Fatalf("180 without a To tag: %v", ringing.Headers)
	}
	if evs[3].(*events.CallStateChanged).SessionID != c.sid {
		h.t.Fatalf("ringing for another session")
	}
	return c
}

// answer accepts the ringing call and ACKs the 200.
func (h *harness) answer(c *inbound) {
	h.t.Helper()
	h.publish(&events.AcceptCall{SessionRef: events.SessionRef{SessionID: c.sid}, SDPAnswer: answerSDP})
	h.expect("resp 200")
	ack := sipReq("ACK", c.callID, c.from(), c.to(), 1, "")
	ack.TransactionID = c.invite.TransactionID
	h.publish(ack)
	h.expect("CallEstablished")
}

// outbound is an outgoing call seen from the far end.
type outbound struct {
	sid, callID, farTag string
	invite              *events.SendSipMessage
	cseq                int
}

func (c *outbound) from() string { return `<sip:carol@10.0.0.3>;tag=` + c.farTag }
func (c *outbound) to() string   { return c.invite.Headers.Get("From") }

func (c *outbound) req(method, body string, extra ...events.Header) *events.SipMessageReceived {
	c.cseq++
	m := sipReq(method, c.callID, c.from(), c.to(), c.cseq, body, extra...)
	return m
}

// dial sends InitiateCall and returns the INVITE it produced.
func (h *harness) dial(extra ...events.Header) *outbound {
	h.t.Helper()
	c := &outbound{sid: callcore.NewSessionID("n1"), farTag: "c" + callcore.NewID("")}
	h.publish(&events.InitiateCall{SessionRef: events.SessionRef{SessionID: c.sid},
		From: "sip:alice@example.com", To: "sip:carol@10.0.0.3:5070", SDPOffer: offerSDP, Headers: extra})
	c.invite = h.expect("req INVITE")[0].(*events.SendSipMessage)
	c.callID = c.invite.Headers.Get("Call-ID")
	return c
}

// connect answers our INVITE with 200 and checks ACK and CallEstablished.
func (h *harness) connect(c *outbound, extra ...events.Header) *events.SendSipMessage {
	h.t.Helper()
	extra = append([]events.Header{{Name: "Contact", Value: "<sip:carol@10.0.0.3:5070>"},
		{Name: "Content-Type", Value: "application/sdp"}}, extra...)
	h.publish(sipResp(c.invite, 200, c.farTag, answerSDP, extra...))
	evs := h.expect("req ACK", "CallEstablished")
	if got := evs[1].(*events.CallEstablished).SDPAnswer; got != answerSDP {
		h.t.Fatalf("CallEstablished sdp %q", got)
	}
	return evs[0].(*events.SendSipMessage)
}

func sref(sid string) events.SessionRef { return events.SessionRef{SessionID: sid} }

// checkGone waits until the hub holds no dialog.
func (h *harness) checkGone() {
	h.t.Helper()
	bustest.CheckFor(h.t, waitFor, func() error {
		if n := h.d.count(); n != 0 {
			return fmt.Errorf("%d dialogs left", n)
		}
		return nil
	})
}

func hasLine(body, line string) bool {
	for _, l := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		if l == line {
			return true
		}
	}
	return false
}
