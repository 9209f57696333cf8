package session

import (
	"errors"
	"testing"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// A blind transfer: REFER sent, then the dialog ends with transferred.
func TestTransferBlind(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredInbound()
	h.ok(&events.CmdTransferCall{SessionRef: sref(id), Target: "sip:carol@example.com"}, callcore.StateTransferring)
	tr := expectEv[*events.TransferCall](h, id, "dialog:TransferCall")
	if tr.Target != "sip:carol@example.com" || tr.TransferType != "blind" || tr.ReplacesSessionID != "" {
		t.Fatalf("TransferCall = %+v", tr)
	}
	if c := h.internals(id); c.transfer == nil || c.transfer.Target != "sip:carol@example.com" {
		t.Fatalf("call: %+v", c)
	}
	h.refused(&events.CmdTransferCall{SessionRef: sref(id), Target: "sip:dave@example.com"}, callcore.CodeInvalidState, "")
	h.refused(&events.CmdHoldCall{SessionRef: sref(id)}, callcore.CodeInvalidState, "")
	h.publish(&events.CallStateChanged{SessionRef: sref(id), NewState: "transferring", Reason: "SIP/2.0 180 Ringing"})
	h.publish(&events.CallTerminated{SessionRef: sref(id), Reason: "transferred"})
	got := h.expect(id, "app:CallTransferred", "media:StopMediaStream")
	if ct := got[0].ev.(*events.CallTransferred); ct.Target != "sip:carol@example.com" || ct.TransferType != "blind" {
		t.Fatalf("CallTransferred = %+v", ct)
	}
	h.publish(&events.MediaStreamStopped{SessionRef: sref(id)})
	if ended := expectEv[*events.CallEnded](h, id, "app:CallEnded"); ended.Reason != "transferred" {
		t.Fatalf("CallEnded = %+v", ended)
	}
}

// An attended transfer names the consultation call; a failed REFER puts
// the call back in the state it was in.
func TestTransferAttendedFails(t *testing.T) {
	h := newHarness(t, Config{})
	a := h.answeredInbound()
	consult := h.answeredOutbound()
	h.ok(&events.CmdHoldCall{SessionRef: sref(a)}, callcore.StateActive)
	h.expect(a, "dialog:HoldSession", "media:HoldMedia")
	h.publish(&events.CallEstablished{SessionRef: sref(a)})
	h.expect(a, "app:CallHeld")

	h.ok(&events.CmdTransferCall{SessionRef: sref(a), Target: "sip:bob@example.com",
		TransferType: "attended", ConsultSessionID: consult}, callcore.StateTransferring)
	if tr := expectEv[*events.TransferCall](h, a, "dialog:TransferCall"); tr.TransferType != "attended" || tr.ReplacesSessionID != consult {
		t.Fatalf("TransferCall = %+v", tr)
	}
	h.publish(&events.DialogError{SessionRef: sref(a), Error: "REFER refused", ErrorCode: 403})
	h.waitState(a, callcore.StateOnHold)
	if c := h.internals(a); c.transfer != nil {
		t.Fatalf("transfer still in progress: %+v", c.transfer)
	}
}

func TestTransferValidation(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredInbound()
	ringing := h.incoming("sip:bob@callbus.test")
	h.expect(ringing, "app:CallCreated")
	for _, tc := range []struct {
		name  string
		cmd   events.CmdTransferCall
		code  callcore.Code
		field string
	}{
		{"target=not-sip", events.CmdTransferCall{Target: "carol"}, callcore.CodeValidationFailed, "target"},
		{"transfer_type=warm", events.CmdTransferCall{Target: "sip:c@x.test", TransferType: "warm"}, callcore.CodeValidationFailed, "transfer_type"},
		{"attended/consult=none", events.CmdTransferCall{Target: "sip:c@x.test", TransferType: "attended"}, callcore.CodeValidationFailed, "consult_session_id"},
		{"attended/consult=self", events.CmdTransferCall{Target: "sip:c@x.test", TransferType: "attended", ConsultSessionID: id}, callcore.CodeValidationFailed, "consult_session_id"},
		{"attended/consult=unknown", events.CmdTransferCall{Target: "sip:c@x.test", TransferType: "attended", ConsultSessionID: newID()}, callcore.CodeValidationFailed, "consult_session_id"},
		{"attended/consult=ringing", events.CmdTransferCall{Target: "sip:c@x.test", TransferType: "attended", ConsultSessionID: ringing}, callcore.CodeInvalidState, ""},
		{"blind/consult=given", events.CmdTransferCall{Target: "sip:c@x.test", ConsultSessionID: ringing}, callcore.CodeValidationFailed, "consult_session_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := tc.cmd
			cmd.SessionID = id
			h.refused(&cmd, tc.code, tc.field)
		})
	}
	h.refused(&events.CmdTransferCall{SessionRef: sref(ringing), Target: "sip:c@x.test"}, callcore.CodeInvalidState, "")
}

// A REFER from the far end: a new outgoing call to the Refer-To target,
// its progress reported to the REFER's dialog.
func TestTransferRequested(t *testing.T) {
	h := newHarness(t, Config{From: "sip:pbx@callbus.test"})
	a := h.answeredInbound()
	h.publish(&events.TransferRequested{SessionRef: sref(a), ReferTo: "sip:carol@example.com",
		Replaces: "abc@host;to-tag=1;from-tag=2"})
	if p := expectEv[*events.TransferProgress](h, a, "dialog:TransferProgress"); p.StatusCode != 100 {
		t.Fatalf("TransferProgress = %+v", p)
	}
	var b string
	bustest.CheckFor(t, waitTimeout, func() error {
		if keys := h.newKeys(a); len(keys) == 1 {
			b = keys[0]
			return nil
		}
		return errors.New("no new call yet")
	})
	if callcore.SessionNode(b) != testNode {
		t.Fatalf("new session id %q is not owned by node %s", b, testNode)
	}
	created := h.expect(b, "app:CallCreated", "media:StartMediaStream")[0].ev.(*events.CallCreated)
	if created.Direction != "outbound" || created.To != "sip:carol@example.com" || created.From != "sip:pbx@callbus.test" {
		t.Fatalf("CallCreated = %+v", created)
	}
	if c := h.internals(b); c.transferOf != a {
		t.Fatalf("transferOf = %q, want %q", c.transferOf, a)
	}
	h.publish(&events.MediaStreamStarted{SessionRef: sref(b), Codec: "PCMU", LocalSDP: mediaOffer})
	inv := expectEv[*events.InitiateCall](h, b, "dialog:InitiateCall")
	if inv.To != "sip:carol@example.com" || inv.Headers.Get("Replaces") != "abc@host;to-tag=1;from-tag=2" {
		t.Fatalf("InitiateCall = %+v", inv)
	}
	h.publish(&events.CallStateChanged{SessionRef: sref(b), NewState: "ringing"})
	h.expect(b, "app:CallRinging")
	if p := expectEv[*events.TransferProgress](h, a, "dialog:TransferProgress"); p.StatusCode != 180 {
		t.Fatalf("TransferProgress = %+v", p)
	}
	h.publish(&events.CallEstablished{SessionRef: sref(b), SDPAnswer: remoteAnswer})
	h.expect(b, "media:UpdateMediaStream", "app:CallAnswered")
	if p := expectEv[*events.TransferProgress](h, a, "dialog:TransferProgress"); p.StatusCode != 200 || p.Reason != "OK" {
		t.Fatalf("TransferProgress = %+v", p)
	}
	// The transferor hangs up on us; the new call lives on.
	h.remoteBye(a)
	if c := h.call(b); c.State != callcore.StateActive {
		t.Fatalf("transferred call is %s", c.State)
	}
}

// A transfer whose new call fails reports the failure status.
func TestTransferRequestedFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		reason callcore.EndReason
		want   int
	}{{"status=486", 486, callcore.EndBusy, 486}, {"status=none/reason=no_answer", 0, callcore.EndNoAnswer, 480}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			a := h.answeredInbound()
			h.publish(&events.TransferRequested{SessionRef: sref(a), ReferTo: "sip:carol@example.com"})
			h.expect(a, "dialog:TransferProgress")
			var b string
			bustest.CheckFor(t, waitTimeout, func() error {
				if keys := h.newKeys(a); len(keys) == 1 {
					b = keys[0]
					return nil
				}
				return errors.New("no new call yet")
			})
			h.expect(b, "app:CallCreated", "media:StartMediaStream")
			h.publish(&events.MediaStreamStarted{SessionRef: sref(b), Codec: "PCMU", LocalSDP: mediaOffer})
			h.expect(b, "dialog:InitiateCall")
			if tc.status != 0 {
				h.publish(&events.DialogError{SessionRef: sref(b), Error: "busy", ErrorCode: tc.status})
			}
			h.publish(&events.CallTerminated{SessionRef: sref(b), Reason: tc.reason})
			h.expect(b, "media:StopMediaStream")
			h.publish(&events.MediaStreamStopped{SessionRef: sref(b)})
			h.expect(b, "app:CallEnded")
			if p := expectEv[*events.TransferProgress](h, a, "dialog:TransferProgress"); p.StatusCode != tc.want {
				t.Fatalf("TransferProgress = %+v, want %d", p, tc.want)
			}
		})
	}
}

// A REFER that cannot be followed is answered with a final NOTIFY at once.
func TestTransferRequestedRefused(t *testing.T) {
	t.Run("refer_to=not-sip", func(t *testing.T) {
		h := newHarness(t, Config{})
		a := h.answeredInbound()
		h.publish(&events.TransferRequested{SessionRef: sref(a), ReferTo: "http://example.com"})
		if p := expectEv[*events.TransferProgress](h, a, "dialog:TransferProgress"); p.StatusCode != 400 {
			t.Fatalf("TransferProgress = %+v", p)
		}
	})
	t.Run("max_calls=1", func(t *testing.T) {
		h := newHarness(t, Config{MaxCalls: 1})
		a := h.answeredInbound()
		h.publish(&events.TransferRequested{SessionRef: sref(a), ReferTo: "sip:carol@example.com"})
		if p := expectEv[*events.TransferProgress](h, a, "dialog:TransferProgress"); p.StatusCode != 503 {
			t.Fatalf("TransferProgress = %+v", p)
		}
		if n := len(h.s.List()); n != 1 {
			t.Fatalf("%d calls listed", n)
		}
	})
}
