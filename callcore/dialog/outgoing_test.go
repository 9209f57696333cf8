package dialog

import (
	"fmt"
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore/events"
)

// A Call-ID the session offers is taken unless it is unusable; without
// one the dialog makes its own.
func TestOutgoingCallID(t *testing.T) {
	for name, given := range map[string]string{"none": "", "spaces": "bad id"} {
		t.Run("call_id="+name, func(t *testing.T) {
			h := newHarness(t, nil)
			var hs []events.Header
			if given != "" {
				hs = append(hs, events.Header{Name: "Call-ID", Value: given})
			}
			c := h.dial(hs...)
			if id := header(t, c.invite.Headers, "Call-ID"); id == given || !strings.HasSuffix(id, "@127.0.0.1") {
				t.Fatalf("Call-ID = %q", id)
			}
		})
	}
}

func TestOutgoingCall(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.FromDisplay = "Callbus" })
	c := h.dial(
		events.Header{Name: "X-Campaign", Value: "spring"},
		events.Header{Name: "Call-ID", Value: "chosen@node"}, // the session may pick it
	)
	inv := c.invite
	if inv.Destination != "sip:carol@10.0.0.3:5070" || !strings.HasPrefix(inv.TransactionID, "ct_") || inv.Body != offerSDP {
		t.Fatalf("INVITE = %+v", inv)
	}
	hs := inv.Headers
	from := header(t, hs, "From")
	if !strings.HasPrefix(from, `"Callbus" <sip:alice@example.com>;tag=`) || tagOf(from) == "" {
		t.Fatalf("From = %q", from)
	}
	wantHeader(t, hs, "To", "<sip:carol@10.0.0.3:5070>")
	if id := header(t, hs, "Call-ID"); id != "chosen@node" {
		t.Fatalf("Call-ID = %q, want the session's chosen@node", id)
	}
	if n := len(hs.Values("Call-ID")); n != 1 {
		t.Fatalf("%d Call-IDs", n)
	}
	wantHeader(t, hs, "CSeq", "1 INVITE")
	wantHeader(t, hs, "Contact", "<sip:callbus@127.0.0.1:5060>")
	wantHeader(t, hs, "Content-Type", "application/sdp")
	wantHeader(t, hs, "User-Agent", "callbus-test")
	wantHeader(t, hs, "X-Campaign", "spring")
	header(t, hs, "Allow")
	for _, name := range []string{"Via", "Max-Forwards", "Content-Length", "Route"} {
		if hs.Get(name) != "" {
			t.Fatalf("INVITE has %s; the transport adds it or there is no route", name)
		}
	}

	h.publish(sipResp(inv, 100, "", ""))
	h.publish(sipResp(inv, 180, c.farTag, ""))
	h.expect("state ringing")
	h.publish(sipResp(inv, 183, c.farTag, "")) // ringing is reported once
	h.syncCall(c.callID)

	ack := h.connect(c,
		events.Header{Name: "Record-Route", Value: "<sip:p1.example.com;lr>"},
		events.Header{Name: "Record-Route", Value: "<sip:p2.example.com;lr>"},
	)
	if ack.Destination != "sip:carol@10.0.0.3:5070" || ack.TransactionID != "" || ack.Body != "" {
		t.Fatalf("ACK = %+v", ack)
	}
	wantHeader(t, ack.Headers, "CSeq", "1 ACK")
	wantHeader(t, ack.Headers, "From", from)
	wantHeader(t, ack.Headers, "To", "<sip:carol@10.0.0.3:5070>;tag="+c.farTag)
	if got := fmt.Sprint(ack.Headers.Values("Route")); got != "[<sip:p2.example.com;lr> <sip:p1.example.com;lr>]" {
		t.Fatalf("ACK Route = %s, want the Record-Route reversed", got)
	}

	// 2xx retransmissions are ACKed again, on the INVITE's transaction id
	// or on none (sipgo issue #120).
	re := sipResp(inv, 200, c.farTag, answerSDP, events.Header{Name: "Contact", Value: "<sip:carol@10.0.0.3:5070>"})
	h.publish(re)
	if again := h.expect("req ACK")[0]; again != events.Event(ack) {
		t.Fatalf("re-ACK %+v differs from the ACK", again)
	}
	re.TransactionID = ""
	h.publish(re)
	h.expect("req ACK")

	h.publish(&events.TerminateSession{SessionRef: sref(c.sid), Reason: "local_hangup"})
	bye := h.expect("req BYE")[0].(*events.SendSipMessage)
	wantHeader(t, bye.Headers, "CSeq", "2 BYE")
	if bye.Destination != "sip:carol@10.0.0.3:5070" {
		t.Fatalf("BYE to %q", bye.Destination)
	}
	h.publish(sipResp(bye, 200, "", ""))
	h.expect("terminated local_hangup")
	h.checkGone()
}

func TestOutgoingCallFailure(t *testing.T) {
	for _, tc := range []struct {
		code   int
		reason string
	}{
		{486, "busy"}, {600, "busy"}, {603, "rejected"}, {403, "rejected"},
		{480, "no_answer"}, {408, "no_answer"}, {404, "failed"}, {500, "failed"}, {302, "failed"},
	} {
		t.Run(fmt.Sprintf("status=%d", tc.code), func(t *testing.T) {
			h := newHarness(t, nil)
			c := h.dial()
			h.publish(sipResp(c.invite, 100, "", ""))
			h.publish(sipResp(c.invite, tc.code, c.farTag, ""))
			evs := h.expect("DialogError", "terminated "+tc.reason)
			if de := evs[0].(*events.DialogError); de.ErrorCode != tc.code || de.SessionID != c.sid {
				t.Fatalf("DialogError = %+v", de)
			}
			h.checkGone()
		})
	}
}

func TestOutgoingCancel(t *testing.T) {
	t.Run("provisional=after", func(t *testing.T) {
		h := newHarness(t, nil)
		c := h.dial()
		// No CANCEL before a provisional response (RFC 3261 §9.1).
		h.publish(&events.TerminateSession{SessionRef: sref(c.sid), Reason: "local_hangup"})
		h.syncSession(c.sid)
		h.publish(sipResp(c.invite, 180, c.farTag, ""))
		cancel := h.expect("req CANCEL")[0].(*events.SendSipMessage)
		if cancel.TransactionID != c.invite.TransactionID || cancel.Destination != c.invite.Destination {
			t.Fatalf("CANCEL = %+v", cancel)
		}
		wantHeader(t, cancel.Headers, "CSeq", "1 CANCEL")
		wantHeader(t, cancel.Headers, "To", c.invite.Headers.Get("To"))
		wantHeader(t, cancel.Headers, "From", c.invite.Headers.Get("From"))
		// The CANCEL's own 200 counts for nothing; the INVITE's 487 ends it.
		okCancel := sipResp(cancel, 200, c.farTag, "")
		okCancel.TransactionID = c.invite.TransactionID
		h.publish(okCancel)
		h.publish(sipResp(c.invite, 487, c.farTag, ""))
		h.expect("terminated cancelled")
		h.checkGone()
	})
	t.Run("provisional=before", func(t *testing.T) {
		h := newHarness(t, nil)
		c := h.dial()
		h.publish(sipResp(c.invite, 180, c.farTag, ""))
		h.expect("state ringing")
		h.publish(&events.TerminateSession{SessionRef: sref(c.sid), Reason: "local_hangup"})
		h.expect("req CANCEL")
		// The answer crossed our CANCEL: ACK it and end the call with BYE.
		h.publish(sipResp(c.invite, 200, c.farTag, answerSDP, events.Header{Name: "Contact", Value: "<sip:carol@10.0.0.3:5070>"}))
		evs := h.expect("req ACK", "req BYE")
		h.publish(sipResp(evs[1].(*events.SendSipMessage), 200, "", ""))
		h.expect("terminated cancelled")
		h.checkGone()
	})
}

func TestOutgoingInviteTransportError(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial()
	h.publish(&events.TransportError{Error: "timer B", ErrorCode: events.TransportErrTimeout, TransactionID: c.invite.TransactionID})
	evs := h.expect("DialogError", "terminated failed")
	if evs[0].(*events.DialogError).ErrorCode != 408 {
		t.Fatalf("DialogError = %+v", evs[0])
	}
	h.checkGone()
}

func TestOutgoingForked2xxIsACKedAndBYEd(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial()
	h.connect(c)
	fork := sipResp(c.invite, 200, "other", answerSDP, events.Header{Name: "Contact", Value: "<sip:fork@10.0.0.9>"})
	fork.TransactionID = ""
	h.publish(fork)
	evs := h.expect("req ACK", "req BYE")
	for _, ev := range evs {
		m := ev.(*events.SendSipMessage)
		if m.Destination != "sip:fork@10.0.0.9" || tagOf(m.Headers.Get("To")) != "other" {
			t.Fatalf("%s to %q with To %q", m.Method, m.Destination, m.Headers.Get("To"))
		}
	}
	// Our call goes on.
	h.publish(c.req("BYE", ""))
	h.expect("resp 200", "terminated remote_hangup")
}

func TestOutgoingCallBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   events.InitiateCall
	}{
		{"to=bad", events.InitiateCall{To: "sip:", SDPOffer: offerSDP}},
		{"from=bad", events.InitiateCall{To: "sip:carol@10.0.0.3", From: "http://x", SDPOffer: offerSDP}},
		{"sdp=none", events.InitiateCall{To: "sip:carol@10.0.0.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			ev := tc.ev
			ev.SessionID = "n1.bad"
			h.publish(&ev)
			h.expect("DialogError", "terminated failed")
			h.checkGone()
		})
	}
}

func TestOutgoingCallDefaultsAndURIHeaders(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Transport = "tcp" })
	sid := "n1.defaults"
	h.publish(&events.InitiateCall{SessionRef: sref(sid), To: "carol@10.0.0.3?Replaces=a%40b%3Bto-tag%3D1%3Bfrom-tag%3D2",
		SDPOffer: offerSDP, Headers: events.Headers{{Name: "Route", Value: "<sip:proxy.example.com;lr>"}}})
	inv := h.expect("req INVITE")[0].(*events.SendSipMessage)
	if inv.Destination != "sip:carol@10.0.0.3" {
		t.Fatalf("Request-URI %q", inv.Destination)
	}
	wantHeader(t, inv.Headers, "Replaces", "a@b;to-tag=1;from-tag=2")
	wantHeader(t, inv.Headers, "Route", "<sip:proxy.example.com;lr>")
	wantHeader(t, inv.Headers, "Contact", "<sip:callbus@127.0.0.1:5060;transport=tcp>")
	if from := inv.Headers.Get("From"); !strings.HasPrefix(from, "<sip:callbus@127.0.0.1>;tag=") {
		t.Fatalf("default From = %q", from)
	}
}
