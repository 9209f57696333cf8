package dialog

import (
	"testing"

	"github.com/callbus/callbus/callcore/events"
)

// notify builds a NOTIFY of the refer subscription from the far end.
func notifyReq(next func(string, string, ...events.Header) *events.SipMessageReceived, frag, state string) *events.SipMessageReceived {
	return next("NOTIFY", frag,
		events.Header{Name: "Event", Value: "refer"},
		events.Header{Name: "Subscription-State", Value: state},
		events.Header{Name: "Content-Type", Value: "message/sipfrag;version=2.0"})
}

func TestTransferBlind(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring()
	h.answer(c)

	h.publish(&events.TransferCall{SessionRef: sref(c.sid), Target: "sip:dave@10.0.0.4", TransferType: events.TransferBlind})
	refer := h.expect("req REFER")[0].(*events.SendSipMessage)
	wantHeader(t, refer.Headers, "Refer-To", "<sip:dave@10.0.0.4>")
	wantHeader(t, refer.Headers, "Referred-By", "<sip:bob@127.0.0.1:5060>")
	wantHeader(t, refer.Headers, "CSeq", "1 REFER")
	wantHeader(t, refer.Headers, "From", c.to())
	wantHeader(t, refer.Headers, "To", c.from())
	wantHeader(t, refer.Headers, "Contact", "<sip:callbus@127.0.0.1:5060>")
	if refer.Destination != "sip:alice@10.0.0.2:5060" {
		t.Fatalf("REFER to %q", refer.Destination)
	}
	h.publish(sipResp(refer, 202, "", ""))
	h.expect("state transferring")

	n := notifyReq(c.req, "SIP/2.0 100 Trying\r\n", "active;expires=60")
	h.publish(n)
	evs := h.expect("resp 200", "state transferring")
	if evs[0].(*events.SendSipResponse).TransactionID != n.TransactionID {
		t.Fatalf("200 on the wrong transaction")
	}
	if got := evs[1].(*events.CallStateChanged).Reason; got != "SIP/2.0 100 Trying" {
		t.Fatalf("reason %q", got)
	}
	h.publish(notifyReq(c.req, "SIP/2.0 200 OK\r\nContent-Type: application/sdp\r\n", "terminated;reason=noresource"))
	evs = h.expect("resp 200", "state transferring", "req BYE")
	if got := evs[1].(*events.CallStateChanged).Reason; got != "SIP/2.0 200 OK" {
		t.Fatalf("reason %q", got)
	}
	h.publish(sipResp(evs[2].(*events.SendSipMessage), 200, "", ""))
	h.expect("terminated transferred")
	h.checkGone()
}

func TestTransferAttended(t *testing.T) {
	h := newHarness(t, nil)
	a := h.ring() // the caller, to be transferred
	h.answer(a)
	b := h.dial() // the consultation call to the target
	h.connect(b)
	bLocalTag := tagOf(b.invite.Headers.Get("From"))

	h.publish(&events.TransferCall{SessionRef: sref(a.sid), TransferType: events.TransferAttended, ReplacesSessionID: b.sid})
	refer := h.expect("req REFER")[0].(*events.SendSipMessage)
	want := "<sip:carol@10.0.0.3:5070?Replaces=" + escapeHeaderValue(b.callID) +
		"%3Bto-tag%3D" + b.farTag + "%3Bfrom-tag%3D" + bLocalTag + ">"
	wantHeader(t, refer.Headers, "Refer-To", want)
	target, replaces, err := parseReferTo(refer.Headers.Get("Refer-To"))
	if err != nil || target != "sip:carol@10.0.0.3:5070" ||
		replaces != b.callID+";to-tag="+b.farTag+";from-tag="+bLocalTag {
		t.Fatalf("Refer-To reads back as %q %q %v", target, replaces, err)
	}
	h.publish(sipResp(refer, 202, "", ""))
	h.expect("state transferring")
	// The target refuses: the transfer fails and the call stays up.
	h.publish(notifyReq(a.req, "SIP/2.0 486 Busy Here\r\n", "terminated;reason=noresource"))
	evs := h.expect("resp 200", "state transferring", "DialogError")
	if de := evs[2].(*events.DialogError); de.ErrorCode != 486 {
		t.Fatalf("DialogError = %+v", de)
	}
	// A new transfer may be tried.
	h.publish(&events.TransferCall{SessionRef: sref(a.sid), Target: "dave@10.0.0.4", TransferType: events.TransferBlind})
	refer = h.expect("req REFER")[0].(*events.SendSipMessage)
	wantHeader(t, refer.Headers, "Refer-To", "<sip:dave@10.0.0.4>")
}

func TestTransferRefused(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial()
	h.connect(c)
	h.publish(&events.TransferCall{SessionRef: sref(c.sid), Target: "sip:dave@10.0.0.4"})
	refer := h.expect("req REFER")[0].(*events.SendSipMessage)
	h.publish(&events.TransferCall{SessionRef: sref(c.sid), Target: "sip:erin@10.0.0.5"})
	if de := h.expect("DialogError")[0].(*events.DialogError); de.ErrorCode != 491 {
		t.Fatalf("second transfer: %+v", de)
	}
	h.publish(sipResp(refer, 403, "", ""))
	if de := h.expect("DialogError")[0].(*events.DialogError); de.ErrorCode != 403 {
		t.Fatalf("DialogError = %+v", de)
	}
	// No subscription now: a NOTIFY gets 481.
	h.publish(notifyReq(c.req, "SIP/2.0 100 Trying\r\n", "active"))
	h.expect("resp 481")
}

func TestTransferAttendedWithoutOtherDialog(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial()
	h.connect(c)
	h.publish(&events.TransferCall{SessionRef: sref(c.sid), Target: "sip:x@y", TransferType: events.TransferAttended, ReplacesSessionID: "n1.gone"})
	h.expect("DialogError")
	h.publish(&events.TransferCall{SessionRef: sref(c.sid), Target: "sip:x@y", TransferType: "warm"})
	h.expect("DialogError")
}

func TestNotifyBadEventAndBody(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial()
	h.connect(c)
	h.publish(&events.TransferCall{SessionRef: sref(c.sid), Target: "sip:dave@10.0.0.4"})
	h.expect("req REFER")
	h.publish(c.req("NOTIFY", "x", events.Header{Name: "Event", Value: "presence"}))
	h.expect("resp 489")
	h.publish(notifyReq(c.req, "HTTP/1.1 200 OK", "active"))
	h.expect("resp 400")
}

func TestReferReceived(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring()
	h.answer(c)

	refer := c.req("REFER", "", events.Header{Name: "Refer-To",
		Value: "<sip:dave@10.0.0.4?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>"})
	h.publish(refer)
	evs := h.expect("resp 202", "req NOTIFY", "TransferRequested")
	if evs[0].(*events.SendSipResponse).TransactionID != refer.TransactionID {
		t.Fatalf("202 on the wrong transaction")
	}
	n := evs[1].(*events.SendSipMessage)
	wantHeader(t, n.Headers, "Event", "refer")
	wantHeader(t, n.Headers, "Subscription-State", "active;expires=60")
	wantHeader(t, n.Headers, "Content-Type", "message/sipfrag;version=2.0")
	wantHeader(t, n.Headers, "CSeq", "1 NOTIFY")
	wantHeader(t, n.Headers, "From", c.to())
	header(t, n.Headers, "Contact")
	if n.Body != "SIP/2.0 100 Trying\r\n" || n.Destination != "sip:alice@10.0.0.2:5060" {
		t.Fatalf("NOTIFY = %+v", n)
	}
	tr := evs[2].(*events.TransferRequested)
	if tr.ReferTo != "sip:dave@10.0.0.4" || tr.Replaces != "abc@host;to-tag=1;from-tag=2" {
		t.Fatalf("TransferRequested = %+v", tr)
	}
	h.publish(sipResp(n, 200, "", ""))

	h.publish(&events.TransferProgress{SessionRef: sref(c.sid), StatusCode: 180})
	n = h.expect("req NOTIFY")[0].(*events.SendSipMessage)
	wantHeader(t, n.Headers, "CSeq", "2 NOTIFY")
	wantHeader(t, n.Headers, "Subscription-State", "active;expires=60")
	if n.Body != "SIP/2.0 180 Ringing\r\n" {
		t.Fatalf("NOTIFY body %q", n.Body)
	}
	h.publish(&events.TransferProgress{SessionRef: sref(c.sid), StatusCode: 200, Reason: "OK"})
	n = h.expect("req NOTIFY")[0].(*events.SendSipMessage)
	wantHeader(t, n.Headers, "Subscription-State", "terminated;reason=noresource")
	if n.Body != "SIP/2.0 200 OK\r\n" {
		t.Fatalf("NOTIFY body %q", n.Body)
	}
	// The subscription is over: more progress is not reported.
	h.publish(&events.TransferProgress{SessionRef: sref(c.sid), StatusCode: 200})
	h.syncSession(c.sid)
	// The transferor hangs up.
	h.publish(c.req("BYE", ""))
	h.expect("resp 200", "terminated remote_hangup")
}

func TestReferReceivedBadTarget(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"uri=garbage", "<not a uri>"},
		{"scheme=http", "<http://example.com/>"},
		{"brackets=unclosed", "<sip:dave@10.0.0.4"},
		{"host=none", "<sip:>"},
		{"replaces=no-tags", "<sip:dave@10.0.0.4?Replaces=abc>"},
		{"replaces=bad-escape", "<sip:dave@10.0.0.4?Replaces=abc%ZZ>"},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			c := h.ring()
			h.answer(c)
			var extra []events.Header
			if tc.value != "" {
				extra = append(extra, events.Header{Name: "Refer-To", Value: tc.value})
			}
			refer := c.req("REFER", "", extra...)
			h.publish(refer)
			if r := h.expect("resp 400")[0].(*events.SendSipResponse); r.TransactionID != refer.TransactionID {
				t.Fatalf("400 on the wrong transaction")
			}
			h.syncCall(c.callID)
		})
	}
}
