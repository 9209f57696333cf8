package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/calltest"
	"github.com/callbus/callbus/callcore/events"
)

// REFER both ways: the node transfers a call (blind, attended with
// Replaces), and a phone asks the node to transfer (REFER received).

// transferChain is the node's side of a transfer it asked for, from the
// TransferCall command to CallEnded: the REFER and its 202, the NOTIFYs
// (each answered 200), the BYE on the final 200 sipfrag. The 202 may reach
// the dialog after the NOTIFYs (a response and a request, each in a
// goroutine of the transport's own): then the transfer is already over and
// the 202 changes nothing, so its CallStateChanged(transferring) is not a
// step.
func transferChain() []step {
	return []step{
		first("TransferCall"),                         // 0: the command
		causedBy(0, "TransferCall"),                   // 1: to the dialog
		causedBy(1, "SendSipMessage(REFER)"),          // 2
		causedBy(2, "SipResponseReceived(202)"),       // 3
		after("SipMessageReceived(NOTIFY)", 2),        // 4: 100 Trying
		causedBy(4, "SendSipResponse(200)"),           // 5
		causedBy(4, "CallStateChanged(transferring)"), // 6
		after("SipMessageReceived(NOTIFY)", 4),        // 7: 200 OK
		causedBy(7, "SendSipResponse(200)"),           // 8
		causedBy(7, "CallStateChanged(transferring)"), // 9
		causedBy(7, "SendSipMessage(BYE)").and(9),     // 10
		causedBy(10, "SipResponseReceived(200)"),      // 11
		causedBy(11, "CallTerminated"),                // 12
		causedBy(12, "CallTransferred"),               // 13
		causedBy(12, "StopMediaStream").and(13),       // 14
		causedBy(12, "CallEnded").and(13),             // 15
	}
}

// wantNotifies checks the NOTIFYs a transferee sent: Event refer,
// sipfrag bodies with statuses want, the last one terminating the
// subscription; and that the node answered each 200.
func wantNotifies(t *testing.T, c *calltest.Call, want ...int) {
	t.Helper()
	var got []int
	for _, m := range c.Sent() {
		if !m.IsRequest() || m.Method != "NOTIFY" {
			continue
		}
		if m.Get("Event") != "refer" || !strings.HasPrefix(m.Get("Content-Type"), "message/sipfrag") {
			t.Errorf("NOTIFY is not a refer sipfrag:\n%s", m.Raw)
		}
		var code int
		if _, err := fmt.Sscanf(m.Body, "SIP/2.0 %d", &code); err != nil {
			t.Errorf("NOTIFY body %q: %v", m.Body, err)
		}
		got = append(got, code)
		final := strings.HasPrefix(m.Get("Subscription-State"), "terminated")
		if final != (code >= 200) {
			t.Errorf("NOTIFY %d with Subscription-State %q", code, m.Get("Subscription-State"))
		}
		wantDialog(t, c, m, false)
	}
	if !slices.Equal(got, want) {
		t.Errorf("NOTIFYs sent with statuses %v, want %v\n%s", got, want, wire(c.Sent()))
	}
	if n := c.CountReceived(calltest.Resp(200, "NOTIFY")); n != len(want) {
		t.Errorf("%d NOTIFYs answered 200, want %d\n%s", n, len(want), wire(c.Received()))
	}
}

// transferStates returns the reasons of the CallStateChanged(transferring)
// events of session id, in seq order.
func transferStates(recs []bus.Record, id string) []string {
	var out []string
	for _, r := range recs {
		if e, ok := r.Event.(*events.CallStateChanged); ok && e.SessionID == id && e.NewState == "transferring" {
			out = append(out, e.Reason)
		}
	}
	return out
}

// The node transfers alice's call to carol (blind): alice gets a REFER
// naming carol, follows it and NOTIFYs the outcome; the node hangs up on
// the final 200 and reports the call transferred.
func TestFlowTransferBlind(t *testing.T) {
	ctx := flowCtx(t)
	n := openFlowNode(t, env{"CALLBUS_INBOUND": "answer"})
	alice := calltest.StartPhone(t, calltest.WithUser("alice"), calltest.WithReferPolicy(calltest.ReferFollow))
	carol := calltest.StartPhone(t, calltest.WithUser("carol"))
	id, c := callNode(t, n, alice, "bob")
	target := carol.URI("carol")
	received := len(c.Received())

	command(t, n, &events.CmdTransferCall{SessionRef: sessionRef(id), Target: target, TransferType: events.TransferBlind})
	ref, err := c.WaitRefer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	ended(t, n, id)

	// (a)
	recs := waitFlow(t, n, id, c.ID(), transferChain()...)
	if got := transferStates(recs, id); !slices.Contains(got, "SIP/2.0 100 Trying") ||
		slices.Index(got, "SIP/2.0 200 OK") != len(got)-1 || len(got) > 3 {
		t.Errorf("transferring states %q, want (the 202's,) the 100's, then SIP/2.0 200 OK", got)
	}

	// (b) REFER in the dialog naming carol, no Replaces; 202; NOTIFY 100
	// then 200, both answered; the node's BYE.
	if ref.ReferTo != "<"+target+">" || ref.Target != target || ref.Replaces != "" {
		t.Errorf("REFER %+v, want Refer-To <%s>", ref, target)
	}
	wantDialog(t, c, ref.Message, true)
	wantWire(t, "alice received", c.Received()[received:], "REFER", "200 NOTIFY", "200 NOTIFY", "BYE")
	if c.CountSent(calltest.Resp(202, "REFER")) != 1 {
		t.Errorf("alice did not accept the REFER:\n%s", wire(c.Sent()))
	}
	wantNotifies(t, c, 100, 200)
	leg, err := carol.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if leg.Invite().Get("Referred-By") == "" || !strings.Contains(leg.Invite().Get("From"), "alice") {
		t.Errorf("carol's INVITE is not alice's transferred call:\n%s", leg.Invite().Raw)
	}

	// (c)
	if c.EndedBy() != callcore.EndRemoteHangup {
		t.Errorf("alice's call to the node ended %s, want remote_hangup (the node's BYE)", c.EndedBy())
	}
	if e := lastOf[*events.CallTransferred](appEvents(recs, id)); e == nil || e.Target != target || e.TransferType != events.TransferBlind {
		t.Errorf("CallTransferred %+v, want blind to %s", e, target)
	}
	wantEnded(t, n, recs, id, callcore.EndTransferred, 0)

	followed, err := c.ReferredCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := followed.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := leg.WaitEnded(ctx); err != nil || got != callcore.EndRemoteHangup {
		t.Fatalf("carol's leg ended %s, %v", got, err)
	}
}

// The node joins its calls to alice and carol (attended): the REFER to
// alice names carol and carries Replaces with the ids of the node's
// dialog with carol, so that carol's phone — strict about the tags —
// swaps that dialog for alice's new call.
func TestFlowTransferAttended(t *testing.T) {
	ctx := flowCtx(t)
	n := openFlowNode(t, nil)
	alice := calltest.StartPhone(t, calltest.WithUser("alice"), calltest.WithPolicy(calltest.RingOnly()),
		calltest.WithReferPolicy(calltest.ReferFollow))
	carol := calltest.StartPhone(t, calltest.WithUser("carol"), calltest.WithPolicy(calltest.RingOnly()))
	a, toAlice := callPhone(t, n, alice)
	b, toCarol := callPhone(t, n, carol) // the consultation call
	target := carol.URI("carol")

	command(t, n, &events.CmdTransferCall{SessionRef: sessionRef(a), Target: target,
		TransferType: events.TransferAttended, ConsultSessionID: b})
	ref, err := toAlice.WaitRefer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Replaces names the dialog at carol's side: its Call-ID, carol's tag
	// as to-tag, the node's as from-tag (RFC 3891 §3).
	replaces := toCarol.ID() + ";to-tag=" + toCarol.LocalTag() + ";from-tag=" + toCarol.RemoteTag()
	if ref.Target != target || ref.Replaces != replaces || !strings.Contains(ref.ReferTo, "?Replaces=") {
		t.Errorf("REFER %+v, want target %s with Replaces %q", ref, target, replaces)
	}
	wantDialog(t, toAlice, ref.Message, true)

	newLeg, err := carol.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newLeg.Replaces() != replaces {
		t.Errorf("carol's new call replaces %q, want %q", newLeg.Replaces(), replaces)
	}
	for _, w := range []struct {
		c    *calltest.Call
		want callcore.EndReason
	}{{toCarol, callcore.EndTransferred}, {toAlice, callcore.EndRemoteHangup}} {
		if got, err := w.c.WaitEnded(ctx); err != nil || got != w.want {
			t.Errorf("call %s ended %s (%v), want %s", w.c.ID(), got, err, w.want)
		}
	}
	ended(t, n, a)
	ended(t, n, b)

	// (a) the transferred call's chain; the REFER asked for B's dialog.
	waitFlow(t, n, b, toCarol.ID(), hungUpRemotelyFlow()...)
	recs := waitFlow(t, n, a, toAlice.ID(), transferChain()...)
	var asked *events.TransferCall
	for _, r := range recs {
		if e, ok := r.Event.(*events.TransferCall); ok && r.Event.Channel() == events.ChannelSessionToDialog {
			asked = e
		}
	}
	if asked == nil || asked.SessionID != a || asked.ReplacesSessionID != b || asked.TransferType != events.TransferAttended {
		t.Errorf("session_to_dialog TransferCall %+v, want %s replacing %s", asked, a, b)
	}

	// (b)
	wantNotifies(t, toAlice, 100, 200)
	if bye := find(t, toCarol.Sent(), calltest.Req("BYE"), "carol's BYE"); bye.Get("Call-ID") != toCarol.ID() {
		t.Errorf("carol's BYE:\n%s", bye.Raw)
	}

	// (c) A transferred, B hung up by carol's phone.
	if e := lastOf[*events.CallTransferred](appEvents(recs, a)); e == nil || e.TransferType != events.TransferAttended || e.Target != target {
		t.Errorf("CallTransferred %+v, want attended to %s", e, target)
	}
	wantEnded(t, n, recs, a, callcore.EndTransferred, 0)
	wantEnded(t, n, recs, b, callcore.EndRemoteHangup, 0)
	if err := newLeg.WaitState(ctx, callcore.StateActive); err != nil {
		t.Errorf("carol's call from alice: %v", err)
	}

	followed, err := toAlice.ReferredCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := followed.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := newLeg.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
}

// alice asks the node, with REFER, to call carol: the node accepts (202),
// places the call and NOTIFYs alice of its progress up to carol's 200.
func TestFlowReferReceived(t *testing.T) {
	ctx := flowCtx(t)
	n := openFlowNode(t, env{"CALLBUS_INBOUND": "answer"})
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	carol := calltest.StartPhone(t, calltest.WithUser("carol"), calltest.WithPolicy(calltest.RingOnly()))
	id, c := callNode(t, n, alice, "bob")
	target := carol.URI("carol")

	if err := c.Transfer(ctx, target); err != nil {
		t.Fatalf("REFER: %v", err)
	}
	leg, err := carol.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var nid string // the session of the call to carol
	n.rec.wait(t, "the new call ringing", func(recs []bus.Record) bool {
		nid = transferLeg(recs, id)
		return nid != "" && count(appEvents(recs, nid), "CallRinging") == 1
	})
	if err := leg.Answer(ctx); err != nil {
		t.Fatal(err)
	}
	result, err := c.WaitTransferResult(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// (a) REFER → 202, NOTIFY 100, TransferRequested → a new outgoing
	// call whose progress goes back as TransferProgress → NOTIFY.
	recs := waitFlow(t, n, id, c.ID(),
		first("SipMessageReceived(REFER)"),             // 0
		causedBy(0, "SendSipResponse(202)"),            // 1
		causedBy(0, "SendSipMessage(NOTIFY)").and(1),   // 2: 100 Trying
		causedBy(0, "TransferRequested").and(2),        // 3
		causedBy(3, "TransferProgress"),                // 4: 100
		causedBy(4, "SendSipMessage(NOTIFY)"),          // 5
		causedBy(3, "CallCreated"),                     // 6: the new call
		causedBy(3, "InitiateCall"),                    // 7
		causedBy(7, "SendSipMessage(INVITE)"),          // 8
		causedBy(8, "SipResponseReceived(180)"),        // 9
		causedBy(9, "CallStateChanged(ringing)"),       // 10
		causedBy(10, "CallRinging"),                    // 11
		causedBy(10, "TransferProgress").and(11),       // 12: 180
		causedBy(12, "SendSipMessage(NOTIFY)"),         // 13
		causedBy(8, "SipResponseReceived(200)").and(9), // 14
		causedBy(14, "CallEstablished"),                // 15
		causedBy(15, "CallAnswered"),                   // 16
		causedBy(15, "TransferProgress").and(16),       // 17: 200
		causedBy(17, "SendSipMessage(NOTIFY)"),         // 18
	)
	var progress []int
	for _, r := range recs {
		if e, ok := r.Event.(*events.TransferProgress); ok && e.SessionID == id {
			progress = append(progress, e.StatusCode)
		}
	}
	if !slices.Equal(progress, []int{100, 180, 200}) {
		t.Errorf("TransferProgress %v, want [100 180 200]", progress)
	}

	// (b) alice's REFER accepted; NOTIFYs in her dialog: progress, then
	// the final 200 ending the subscription. The dialog's own 100 Trying
	// and the session's TransferProgress 100 both reach her.
	if ok := find(t, c.Received(), calltest.Resp(202, "REFER"), "202"); ok.Get("Call-ID") != c.ID() {
		t.Errorf("202:\n%s", ok.Raw)
	}
	// From the wire log: Notifies is filled by handlers, which may still
	// run for an earlier NOTIFY when the final one is in.
	var statuses []int
	for _, m := range c.Received() {
		if !m.IsRequest() || m.Method != "NOTIFY" {
			continue
		}
		var code int
		if _, err := fmt.Sscanf(m.Body, "SIP/2.0 %d", &code); err != nil || m.Get("Event") != "refer" {
			t.Errorf("NOTIFY is not a refer sipfrag (%v):\n%s", err, m.Raw)
		}
		wantDialog(t, c, m, true)
		statuses = append(statuses, code)
	}
	if got := slices.Compact(slices.Clone(statuses)); !slices.Equal(got, []int{100, 180, 200}) {
		t.Errorf("NOTIFY statuses %v, want 100…, 180, 200", statuses)
	}
	if result.Status != 200 || !strings.HasPrefix(result.SubscriptionState, "terminated") {
		t.Errorf("final NOTIFY %+v, want 200 terminating the subscription", result)
	}
	inv := leg.Invite()
	if inv.RequestURI != target || tagOf(inv.Get("To")) != "" {
		t.Errorf("the node's INVITE to carol:\n%s", inv.Raw)
	}

	// (c) alice's call is still up (the transferor hangs up); the new call
	// is active and knows what it is a transfer of.
	if c.State() != callcore.StateActive {
		t.Errorf("alice's call is %s, want active", c.State())
	}
	wantSnapshot(t, n, id, callcore.StateActive, false)
	snap := wantSnapshot(t, n, nid, callcore.StateActive, false)
	if snap.Direction != callcore.Outbound || snap.To != target || transferLeg(n.rec.all(), id) != nid {
		t.Errorf("the new call %+v, want outbound to %s, a transfer of %s", snap, target, id)
	}

	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	recs = ended(t, n, id)
	wantEnded(t, n, recs, id, callcore.EndRemoteHangup, 0)
	command(t, n, &events.CmdHangupCall{SessionRef: sessionRef(nid)})
	if got, err := leg.WaitEnded(ctx); err != nil || got != callcore.EndRemoteHangup {
		t.Fatalf("carol's call ended %s, %v", got, err)
	}
	recs = ended(t, n, nid)
	wantEnded(t, n, recs, nid, callcore.EndLocalHangup, 0)
}

// transferLeg returns the session of the call that a REFER received by
// session id placed: the call whose CallCreated the session published
// while handling one of id's events (its cause), or "".
func transferLeg(recs []bus.Record, id string) string {
	of := map[events.ID]string{}
	for _, r := range recs {
		if r.Event == nil {
			continue
		}
		of[r.Envelope.ID] = events.SessionOf(r.Event)
		if c, ok := r.Event.(*events.CallCreated); ok && c.SessionID != id && of[r.Envelope.Cause] == id {
			return c.SessionID
		}
	}
	return ""
}
