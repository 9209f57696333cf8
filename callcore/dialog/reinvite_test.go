package dialog

import (
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore/events"
)

const holdOffer = "v=0\r\no=alice 1 2 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n" +
	"m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"

func TestHoldAndResumeSent(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial()
	h.connect(c)

	h.publish(&events.HoldSession{SessionRef: sref(c.sid), SDPOffer: holdOffer})
	re := h.expect("req INVITE")[0].(*events.SendSipMessage)
	if re.Destination != "sip:carol@10.0.0.3:5070" || re.Body != holdOffer || re.TransactionID == c.invite.TransactionID {
		t.Fatalf("re-INVITE = %+v", re)
	}
	wantHeader(t, re.Headers, "CSeq", "2 INVITE")
	wantHeader(t, re.Headers, "Call-ID", c.callID)
	wantHeader(t, re.Headers, "From", c.invite.Headers.Get("From"))
	wantHeader(t, re.Headers, "To", "<sip:carol@10.0.0.3:5070>;tag="+c.farTag)
	wantHeader(t, re.Headers, "Contact", "<sip:callbus@127.0.0.1:5060>")
	wantHeader(t, re.Headers, "Content-Type", "application/sdp")

	h.publish(sipResp(re, 100, "", ""))
	h.publish(sipResp(re, 200, "", "answer-recvonly", events.Header{Name: "Contact", Value: "<sip:carol@10.0.0.30:5070>"}))
	evs := h.expect("req ACK", "CallEstablished")
	ack := evs[0].(*events.SendSipMessage)
	wantHeader(t, ack.Headers, "CSeq", "2 ACK")
	if ack.Destination != "sip:carol@10.0.0.30:5070" {
		t.Fatalf("ACK to %q: the 2xx's Contact refreshes the target", ack.Destination)
	}
	if got := evs[1].(*events.CallEstablished).SDPAnswer; got != "answer-recvonly" {
		t.Fatalf("CallEstablished sdp %q", got)
	}
	// A retransmission of that 2xx is ACKed again.
	again := sipResp(re, 200, "", "answer-recvonly")
	again.TransactionID = ""
	h.publish(again)
	h.expect("req ACK")

	h.publish(&events.ResumeSession{SessionRef: sref(c.sid), SDPOffer: offerSDP})
	re = h.expect("req INVITE")[0].(*events.SendSipMessage)
	wantHeader(t, re.Headers, "CSeq", "3 INVITE")
	h.publish(sipResp(re, 488, "", ""))
	if de := h.expect("DialogError")[0].(*events.DialogError); de.ErrorCode != 488 {
		t.Fatalf("DialogError = %+v", de)
	}
	// The call stays up.
	h.publish(&events.ResumeSession{SessionRef: sref(c.sid), SDPOffer: offerSDP})
	re = h.expect("req INVITE")[0].(*events.SendSipMessage)
	wantHeader(t, re.Headers, "CSeq", "4 INVITE")
	h.publish(sipResp(re, 200, "", answerSDP))
	h.expect("req ACK", "CallEstablished")
}

func TestHoldWithoutOfferReusesOurSDP(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring()
	h.answer(c)
	h.publish(&events.HoldSession{SessionRef: sref(c.sid)})
	re := h.expect("req INVITE")[0].(*events.SendSipMessage)
	if !hasLine(re.Body, "a=sendonly") || hasLine(re.Body, "a=sendrecv") || !hasLine(re.Body, "o=callbus 7 8 IN IP4 127.0.0.1") {
		t.Fatalf("hold offer %q", re.Body)
	}
	if re.Destination != "sip:alice@10.0.0.2:5060" {
		t.Fatalf("re-INVITE to %q", re.Destination)
	}
	wantHeader(t, re.Headers, "CSeq", "1 INVITE")
}

// holdSDP's own contract; callcore/sdp tests the rewrite itself.
func TestHoldSDP(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"dir=sendrecv", "v=0\r\no=- 1 5 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv\r\n",
			"v=0\r\no=- 1 6 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n"},
		{"dir=recvonly", "v=0\r\no=- 1 5 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=recvonly\r\n",
			"v=0\r\no=- 1 6 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=inactive\r\n"},
		{"origin=missing", "v=0\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv\r\n", ""},
		{"sdp=empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := holdSDP(tc.in); got != tc.want {
				t.Fatalf("holdSDP = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReinviteReceived(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring()
	h.answer(c)

	re := c.req("INVITE", holdOffer, events.Header{Name: "Content-Type", Value: "application/sdp"})
	set(re, "Contact", "<sip:alice@10.0.0.20:5060>") // a target refresh
	h.publish(re)
	evs := h.expect("resp 100", "ReinviteReceived")
	if got := evs[1].(*events.ReinviteReceived); got.SDP != holdOffer || got.SessionID != c.sid {
		t.Fatalf("ReinviteReceived = %+v", got)
	}
	h.publish(&events.AcceptCall{SessionRef: sref(c.sid), SDPAnswer: "answer-inactive"})
	ok := h.expect("resp 200")[0].(*events.SendSipResponse)
	if ok.TransactionID != re.TransactionID || ok.Body != "answer-inactive" {
		t.Fatalf("200 = %+v", ok)
	}
	wantHeader(t, ok.Headers, "Contact", "<sip:callbus@127.0.0.1:5060>")
	ack := sipReq("ACK", c.callID, c.from(), c.to(), c.cseq, "")
	ack.TransactionID = re.TransactionID
	h.publish(ack) // the ACK of a re-INVITE's 2xx establishes nothing new
	h.syncCall(c.callID)

	// A second re-INVITE, rejected by the session: only it fails.
	re = c.req("INVITE", "v=0 garbage")
	set(re, "Contact", "<sip:alice@10.0.0.21:5060>")
	h.publish(re)
	h.expect("resp 100", "ReinviteReceived")
	h.publish(&events.RejectCall{SessionRef: sref(c.sid), StatusCode: 488})
	if r := h.expect("resp 488")[0].(*events.SendSipResponse); r.TransactionID != re.TransactionID {
		t.Fatalf("488 on %s", r.TransactionID)
	}
	// The call is still up; BYE goes to the refreshed target.
	h.publish(&events.TerminateSession{SessionRef: sref(c.sid)})
	bye := h.expect("req BYE")[0].(*events.SendSipMessage)
	if bye.Destination != "sip:alice@10.0.0.21:5060" {
		t.Fatalf("BYE to %q", bye.Destination)
	}
}

func TestReinviteWithoutOfferIsAnsweredWithOurSDP(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring()
	h.answer(c)
	re := c.req("INVITE", "")
	h.publish(re)
	evs := h.expect("resp 100", "resp 200")
	if ok := evs[1].(*events.SendSipResponse); ok.Body != answerSDP || ok.TransactionID != re.TransactionID {
		t.Fatalf("200 = %+v", ok)
	}
}

func TestReinviteGlare(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring()
	h.answer(c)
	h.publish(&events.HoldSession{SessionRef: sref(c.sid), SDPOffer: holdOffer})
	ours := h.expect("req INVITE")[0].(*events.SendSipMessage)

	theirs := c.req("INVITE", holdOffer)
	h.publish(theirs)
	if r := h.expect("resp 491")[0].(*events.SendSipResponse); r.TransactionID != theirs.TransactionID {
		t.Fatalf("491 on %s", r.TransactionID)
	}
	// And a second hold of ours while the first is pending.
	h.publish(&events.HoldSession{SessionRef: sref(c.sid), SDPOffer: holdOffer})
	if de := h.expect("DialogError")[0].(*events.DialogError); de.ErrorCode != 491 {
		t.Fatalf("DialogError = %+v", de)
	}
	h.publish(sipResp(ours, 491, "", ""))
	if de := h.expect("DialogError")[0].(*events.DialogError); de.ErrorCode != 491 || !strings.Contains(de.Error, "hold") {
		t.Fatalf("DialogError = %+v", de)
	}
	// Their re-INVITE pending: our hold waits its turn too.
	h.publish(c.req("INVITE", holdOffer))
	h.expect("resp 100", "ReinviteReceived")
	h.publish(&events.HoldSession{SessionRef: sref(c.sid), SDPOffer: holdOffer})
	if de := h.expect("DialogError")[0].(*events.DialogError); de.ErrorCode != 491 {
		t.Fatalf("DialogError = %+v", de)
	}
	// A third INVITE of theirs before we answered the second: 500 Retry-After.
	h.publish(c.req("INVITE", holdOffer))
	r := h.expect("resp 500")[0].(*events.SendSipResponse)
	header(t, r.Headers, "Retry-After")
}

func TestReinvite481EndsTheCall(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial()
	h.connect(c)
	h.publish(&events.HoldSession{SessionRef: sref(c.sid), SDPOffer: holdOffer})
	re := h.expect("req INVITE")[0].(*events.SendSipMessage)
	h.publish(sipResp(re, 481, "", ""))
	h.expect("DialogError", "terminated failed")
	h.checkGone()
}

func TestHoldBeforeAnswerIsRefused(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring()
	h.publish(&events.HoldSession{SessionRef: sref(c.sid), SDPOffer: holdOffer})
	h.expect("DialogError")
	h.publish(&events.HoldSession{SessionRef: sref("n1.nobody"), SDPOffer: holdOffer})
	if de := h.expect("DialogError")[0].(*events.DialogError); de.ErrorCode != 481 {
		t.Fatalf("DialogError = %+v", de)
	}
}
