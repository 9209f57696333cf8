package dialog

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

func TestIncomingCallAnswered(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring(
		events.Header{Name: "Record-Route", Value: "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"},
		events.Header{Name: "Record-Route", Value: "<sip:p3.example.com;lr>"},
		events.Header{Name: "X-Account", Value: "42"},
	)
	evs := h.all()
	ic := evs[1].(*events.IncomingCall)
	if ic.CallID != c.callID || ic.From != c.from() || ic.To != ourTo || ic.SDPOffer != offerSDP {
		t.Fatalf("IncomingCall = %+v", ic)
	}
	if ic.Headers.Get("X-Account") != "42" || len(ic.Headers) != len(c.invite.Headers) {
		t.Fatalf("IncomingCall headers = %v, want the INVITE's", ic.Headers)
	}
	ringing := evs[2].(*events.SendSipResponse)
	if ringing.TransactionID != c.invite.TransactionID || ringing.ReasonPhrase != "Ringing" {
		t.Fatalf("180 = %+v", ringing)
	}
	wantHeader(t, ringing.Headers, "Contact", "<sip:callbus@127.0.0.1:5060>")
	wantHeader(t, ringing.Headers, "To", c.to())

	h.publish(&events.AcceptCall{SessionRef: sref(c.sid), SDPAnswer: answerSDP})
	ok := h.expect("resp 200")[0].(*events.SendSipResponse)
	if ok.TransactionID != c.invite.TransactionID || ok.Body != answerSDP {
		t.Fatalf("200 = %+v", ok)
	}
	wantHeader(t, ok.Headers, "To", c.to()) // the same tag as the 180
	wantHeader(t, ok.Headers, "Contact", "<sip:callbus@127.0.0.1:5060>")
	wantHeader(t, ok.Headers, "Content-Type", "application/sdp")
	wantHeader(t, ok.Headers, "Call-ID", c.callID)
	wantHeader(t, ok.Headers, "Server", "callbus-test")
	header(t, ok.Headers, "Allow")

	ack := sipReq("ACK", c.callID, c.from(), c.to(), 1, "")
	ack.TransactionID = c.invite.TransactionID
	h.publish(ack)
	est := h.expect("CallEstablished")[0].(*events.CallEstablished)
	if est.SessionID != c.sid || est.SDPAnswer != "" {
		t.Fatalf("CallEstablished = %+v", est)
	}

	// Our BYE follows the route set (the Record-Route, in order) to the
	// far end's Contact.
	h.publish(&events.TerminateSession{SessionRef: sref(c.sid), Reason: "local_hangup"})
	bye := h.expect("req BYE")[0].(*events.SendSipMessage)
	if bye.Destination != "sip:alice@10.0.0.2:5060" || !strings.HasPrefix(bye.TransactionID, "ct_") {
		t.Fatalf("BYE to %q tx %q", bye.Destination, bye.TransactionID)
	}
	wantHeader(t, bye.Headers, "From", c.to())
	wantHeader(t, bye.Headers, "To", c.from())
	wantHeader(t, bye.Headers, "Call-ID", c.callID)
	wantHeader(t, bye.Headers, "CSeq", "1 BYE")
	routes := bye.Headers.Values("Route")
	want := []string{"<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>", "<sip:p3.example.com;lr>"}
	if fmt.Sprint(routes) != fmt.Sprint(want) {
		t.Fatalf("Route = %v, want %v", routes, want)
	}
	h.publish(sipResp(bye, 200, "", ""))
	h.expect("terminated local_hangup")
	h.checkGone()
}

func TestIncomingCall2xxRetransmittedUntilACK(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.T1, c.T2, c.NoACKTimeout = 5*time.Millisecond, 20*time.Millisecond, time.Minute
	})
	c := h.ring()
	h.publish(&events.AcceptCall{SessionRef: sref(c.sid), SDPAnswer: answerSDP})
	first := h.expect("resp 200")[0].(*events.SendSipResponse)
	count200 := func() int {
		n := 0
		for _, ev := range h.all() {
			if r, ok := ev.(*events.SendSipResponse); ok && r.StatusCode == 200 && r.TransactionID == first.TransactionID {
				if r != first {
					t.Errorf("retransmission %+v differs from the 200", r)
				}
				n++
			}
		}
		return n
	}
	bustest.CheckFor(t, waitFor, func() error {
		if n := count200(); n < 4 {
			return fmt.Errorf("%d 200s sent, want the first and 3 retransmissions", n)
		}
		return nil
	})
	ack := sipReq("ACK", c.callID, c.from(), c.to(), 1, "v=0\r\n")
	ack.TransactionID = c.invite.TransactionID
	h.publish(ack)
	var est int
	bustest.CheckFor(t, waitFor, func() error {
		for i, ev := range h.all() {
			if e, ok := ev.(*events.CallEstablished); ok {
				if e.SDPAnswer != "v=0\r\n" {
					t.Errorf("CallEstablished sdp %q, want the ACK's", e.SDPAnswer)
				}
				est = i
				return nil
			}
		}
		return fmt.Errorf("no CallEstablished")
	})
	bustest.CheckFor(t, waitFor, func() error {
		if n := h.d.timers.count(); n != 0 {
			return fmt.Errorf("%d timers still live after the ACK", n)
		}
		return nil
	})
	n := count200()
	for _, ev := range h.all()[est:] {
		if describe(ev) == "resp 200" {
			t.Fatalf("200 retransmitted after the ACK")
		}
	}
	h.skipTo(len(h.all()))
	h.syncCall(c.callID)
	if count200() != n {
		t.Fatalf("200s went on after the ACK")
	}
}

func TestRetransmissionIntervalDoublesUpToT2(t *testing.T) {
	t1, t2 := 500*time.Millisecond, 4*time.Second
	var got []time.Duration
	for d := t1; len(got) < 6; d = nextInterval(d, t2) {
		got = append(got, d)
	}
	want := []time.Duration{t1, 2 * t1, 4 * t1, 8 * t1, t2, t2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("intervals %v, want %v", got, want)
	}
}

func TestIncomingCallNoACKSendsBye(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.T1, c.T2 = 2*time.Millisecond, 8*time.Millisecond })
	c := h.ring()
	h.publish(&events.AcceptCall{SessionRef: sref(c.sid), SDPAnswer: answerSDP})
	var bye *events.SendSipMessage
	bustest.CheckFor(t, waitFor, func() error {
		evs := h.all()
		for i, ev := range evs {
			if m, ok := ev.(*events.SendSipMessage); ok && m.Method == "BYE" {
				if i+1 >= len(evs) {
					return fmt.Errorf("BYE without CallTerminated yet")
				}
				if got := describe(evs[i+1]); got != "terminated failed" {
					t.Fatalf("after the BYE: %s, want CallTerminated failed", got)
				}
				bye = m
				return nil
			}
		}
		return fmt.Errorf("no BYE yet; published %v", describeAll(evs))
	})
	wantHeader(t, bye.Headers, "From", c.to())
	wantHeader(t, bye.Headers, "To", c.from())
	if bye.Destination != "sip:alice@10.0.0.2:5060" {
		t.Fatalf("BYE to %q", bye.Destination)
	}
	h.checkGone()
	if n := h.d.timers.count(); n != 0 {
		t.Fatalf("%d timers left", n)
	}
}

func TestIncomingCallRejected(t *testing.T) {
	for _, code := range []int{486, 603, 480, 488, 503} {
		t.Run(fmt.Sprintf("status=%d", code), func(t *testing.T) {
			h := newHarness(t, nil)
			c := h.ring()
			h.publish(&events.RejectCall{SessionRef: sref(c.sid), StatusCode: code, Reason: "whatever"})
			r := h.expect(fmt.Sprintf("resp %d", code))[0].(*events.SendSipResponse)
			if r.TransactionID != c.invite.TransactionID || r.ReasonPhrase != callcore.ReasonPhrase(code) {
				t.Fatalf("reject = %+v", r)
			}
			wantHeader(t, r.Headers, "To", c.to())
			// No CallTerminated: the session knows; the dialog is gone.
			h.syncSession(c.sid)
			h.checkGone()
		})
	}
}

func TestIncomingCancel(t *testing.T) {
	t.Run("matched=yes", func(t *testing.T) {
		h := newHarness(t, nil)
		c := h.ring()
		cancel := sipReq("CANCEL", c.callID, c.from(), ourTo, 1, "")
		cancel.TransactionID = c.invite.TransactionID // the transport tied it to the INVITE
		h.publish(cancel)
		h.expect("terminated cancelled") // sipgo answered 200 and 487 itself
		h.checkGone()
		// A late AcceptCall finds no dialog and sends nothing.
		h.publish(&events.AcceptCall{SessionRef: sref(c.sid), SDPAnswer: answerSDP})
		h.syncSession(c.sid)
	})
	t.Run("matched=no", func(t *testing.T) {
		h := newHarness(t, nil)
		c := h.ring()
		cancel := sipReq("CANCEL", c.callID, c.from(), ourTo, 1, "")
		h.publish(cancel)
		evs := h.expect("resp 200", "resp 487", "terminated cancelled")
		if evs[0].(*events.SendSipResponse).TransactionID != cancel.TransactionID ||
			evs[1].(*events.SendSipResponse).TransactionID != c.invite.TransactionID {
			t.Fatalf("responses on the wrong transactions: %+v %+v", evs[0], evs[1])
		}
		h.checkGone()
	})
	t.Run("dialog=unknown", func(t *testing.T) {
		h := newHarness(t, nil)
		cancel := sipReq("CANCEL", "nobody@10.0.0.2", farFrom+";tag=x", ourTo, 1, "")
		h.publish(cancel)
		if r := h.expect("resp 481")[0].(*events.SendSipResponse); r.TransactionID != cancel.TransactionID {
			t.Fatalf("481 on %s", r.TransactionID)
		}
	})
	t.Run("answered=yes", func(t *testing.T) {
		h := newHarness(t, nil)
		c := h.ring()
		h.answer(c)
		cancel := sipReq("CANCEL", c.callID, c.from(), ourTo, 1, "")
		cancel.TransactionID = c.invite.TransactionID
		h.publish(cancel) // too late: no effect
		h.syncCall(c.callID)
		h.publish(c.req("BYE", ""))
		h.expect("resp 200", "terminated remote_hangup")
	})
}

func TestIncomingInviteWithoutSDP(t *testing.T) {
	h := newHarness(t, nil)
	m := sipReq("INVITE", "late@10.0.0.2", farFrom+";tag=a", ourTo, 1, "")
	h.publish(m)
	if r := h.expect("resp 488")[0].(*events.SendSipResponse); r.TransactionID != m.TransactionID {
		t.Fatalf("488 on %s", r.TransactionID)
	}
	h.checkGone()
}

func TestIncomingInviteBadRequests(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(m *events.SipMessageReceived)
		want   string
	}{
		{"contact=none", func(m *events.SipMessageReceived) { drop(m, "Contact") }, "resp 400"},
		{"cseq=bad", func(m *events.SipMessageReceived) { set(m, "CSeq", "x INVITE") }, "resp 400"},
		{"from=bad", func(m *events.SipMessageReceived) { set(m, "From", "<sip:") }, "resp 400"},
		{"content-type=multipart", func(m *events.SipMessageReceived) { set(m, "Content-Type", "multipart/mixed") }, "resp 415"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			m := sipReq("INVITE", "bad@10.0.0.2", farFrom+";tag=a", ourTo, 1, offerSDP,
				events.Header{Name: "Content-Type", Value: "application/sdp"})
			tc.mutate(m)
			h.publish(m)
			h.expect(tc.want)
			h.checkGone()
		})
	}
}

func TestIncomingInviteLoopGets482(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring()
	again := sipReq("INVITE", c.callID, c.from(), ourTo, 1, offerSDP)
	h.publish(again)
	if r := h.expect("resp 482")[0].(*events.SendSipResponse); r.TransactionID != again.TransactionID {
		t.Fatalf("482 on %s", r.TransactionID)
	}
	// The same INVITE again (its transaction) is a retransmission: silence.
	h.publish(c.invite)
	h.syncCall(c.callID)
}

func TestByeReceived(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring()
	h.answer(c)
	bye := c.req("BYE", "")
	h.publish(bye)
	r := h.expect("resp 200", "terminated remote_hangup")[0].(*events.SendSipResponse)
	if r.TransactionID != bye.TransactionID {
		t.Fatalf("200 on %s, want the BYE's", r.TransactionID)
	}
	h.checkGone()
	// A BYE again, now for an unknown dialog.
	h.publish(c.req("BYE", ""))
	h.expect("resp 481")
}

func TestByeWithLowerCSeqGets500(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring()
	h.answer(c)
	c.cseq = 0
	h.publish(c.req("BYE", "")) // CSeq 1, not above the INVITE's
	h.expect("resp 500")
}

func TestTerminateRingingCallDeclines(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring()
	h.publish(&events.TerminateSession{SessionRef: sref(c.sid), Reason: "local_hangup"})
	r := h.expect("resp 603", "terminated local_hangup")[0].(*events.SendSipResponse)
	wantHeader(t, r.Headers, "To", c.to())
	h.checkGone()
}

func TestTerminateBeforeACKWaitsForIt(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring()
	h.publish(&events.AcceptCall{SessionRef: sref(c.sid), SDPAnswer: answerSDP})
	h.expect("resp 200")
	h.publish(&events.TerminateSession{SessionRef: sref(c.sid)})
	h.syncSession(c.sid)
	ack := sipReq("ACK", c.callID, c.from(), c.to(), 1, "")
	ack.TransactionID = c.invite.TransactionID
	h.publish(ack)
	bye := h.expect("req BYE")[0].(*events.SendSipMessage)
	h.publish(sipResp(bye, 200, "", ""))
	h.expect("terminated local_hangup")
}

func TestByeGlare(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring()
	h.answer(c)
	h.publish(&events.TerminateSession{SessionRef: sref(c.sid), Reason: "local_hangup"})
	bye := h.expect("req BYE")[0].(*events.SendSipMessage)
	h.publish(c.req("BYE", ""))
	h.expect("resp 200", "terminated local_hangup")
	h.publish(sipResp(bye, 200, "", "")) // late: the dialog is gone
	h.syncCall(c.callID)
	h.checkGone()
}

func drop(m *events.SipMessageReceived, name string) {
	var hs events.Headers
	for _, hd := range m.Headers {
		if !strings.EqualFold(hd.Name, name) {
			hs = append(hs, hd)
		}
	}
	m.Headers = hs
}

func set(m *events.SipMessageReceived, name, value string) {
	drop(m, name)
	m.Headers = append(m.Headers, events.Header{Name: name, Value: value})
}

// Everything published, from a handler or later from a timer, names the
// event it answers as its cause.
func TestPublishedEventsNameTheirCause(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.T1, c.T2 = 2*time.Millisecond, 8*time.Millisecond })
	c := h.ring()
	invite := h.idOf(c.invite)
	for i, cause := range h.causes()[:4] {
		if cause != invite {
			t.Fatalf("event %d (%s) has cause %v, want the INVITE %v", i, describe(h.all()[i]), cause, invite)
		}
	}
	accept := &events.AcceptCall{SessionRef: sref(c.sid), SDPAnswer: answerSDP}
	h.publish(accept)
	acceptID := h.idOf(accept)
	bustest.CheckFor(t, waitFor, func() error {
		evs := h.all()
		if len(evs) == 0 || describe(evs[len(evs)-1]) != "terminated failed" {
			return fmt.Errorf("no CallTerminated yet: %v", describeAll(evs))
		}
		return nil
	})
	evs, causes := h.all(), h.causes()
	retransmissions := 0
	for i := 4; i < len(evs); i++ {
		if causes[i] != acceptID {
			t.Fatalf("%s (event %d) has cause %v, want AcceptCall's %v", describe(evs[i]), i, causes[i], acceptID)
		}
		if describe(evs[i]) == "resp 200" {
			retransmissions++
		}
	}
	if retransmissions < 3 {
		t.Fatalf("only %d 200s before giving up: %v", retransmissions, describeAll(evs))
	}
}
