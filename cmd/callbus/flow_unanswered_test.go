package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/calltest"
	"github.com/callbus/callbus/callcore/events"
)

// Incoming calls that end before an answer: the caller cancels, the app
// rejects, nobody answers in time.

// ringing is an incoming call ringing at a node with INBOUND=ring.
func ringing() []string {
	return []string{"SipMessageReceived(INVITE)", "SendSipResponse(100)", "IncomingCall",
		"SendSipResponse(180)", "CallStateChanged(ringing)", "CallCreated", "CallRinging"}
}

func ringingFlow() []step {
	return []step{
		first("SipMessageReceived(INVITE)"),             // 0
		causedBy(0, "IncomingCall"),                     // 1
		causedBy(1, "CallCreated"),                      // 2
		causedBy(0, "SendSipResponse(180)"),             // 3
		causedBy(0, "CallStateChanged(ringing)").and(3), // 4
		causedBy(4, "CallRinging").and(2),               // 5
	}
}

// phoneEnded waits for the phone's call to end and returns why. A failed
// INVITE settles Call and WaitAnswer a moment before the call is marked
// terminated, so a test reads EndedBy through this.
func phoneEnded(t *testing.T, c *calltest.Call) callcore.EndReason {
	t.Helper()
	reason, err := c.WaitEnded(flowCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.State() != callcore.StateTerminated {
		t.Errorf("ended call %s is %s", c.ID(), c.State())
	}
	return reason
}

// dialNode sends an INVITE from phone to user at the node and returns the
// phone's call and the session id once the node reported it ringing.
func dialNode(t *testing.T, n *node, phone *calltest.Phone, user string) (string, *calltest.Call) {
	t.Helper()
	c, err := phone.Dial(flowCtx(t), nodeURI(n, user))
	if err != nil {
		t.Fatal(err)
	}
	var id string
	n.rec.wait(t, "CallRinging of "+c.ID(), func(recs []bus.Record) bool {
		id = sessionByCallID(recs, c.ID())
		return id != "" && count(appEvents(recs, id), "CallRinging") == 1
	})
	return id, c
}

// The caller cancels a ringing call: sipgo answers the CANCEL (200) and
// the INVITE (487); the node ends the call as cancelled.
func TestFlowCancelBeforeAnswer(t *testing.T) {
	ctx := flowCtx(t)
	n := openFlowNode(t, env{"CALLBUS_INBOUND": "ring"})
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	c, err := alice.Call(ctx, nodeURI(n, "bob"), calltest.CancelOnRinging())
	if got := calltest.StatusOf(err); got != 487 {
		t.Fatalf("cancelled call: %v, want 487", err)
	}
	recs := n.rec.wait(t, "CallEnded", func(recs []bus.Record) bool {
		id := sessionByCallID(recs, c.ID())
		return id != "" && count(appEvents(recs, id), "CallEnded") == 1
	})
	id := sessionByCallID(recs, c.ID())

	recs = settled(t, n, id, c.ID(), concat(ringing(), []string{"SipMessageReceived(CANCEL)", "CallTerminated", "CallEnded"})...)
	wantFlow(t, callRecords(recs, id, c.ID()), append(ringingFlow(),
		after("SipMessageReceived(CANCEL)", 3), // 6: alice cancels on the 180
		causedBy(6, "CallTerminated"),          // 7
		causedBy(7, "CallEnded"),               // 8
	)...)

	wantWire(t, "alice sent", c.Sent(), "INVITE", "CANCEL")
	wantWire(t, "alice received", c.Received(), "100 INVITE", "180 INVITE", "200 CANCEL", "487 INVITE")
	cancel := find(t, c.Sent(), calltest.Req("CANCEL"), "CANCEL")
	if cancel.CSeq() != c.Invite().CSeq() || cancel.Get("Call-ID") != c.ID() {
		t.Errorf("CANCEL does not match the INVITE:\n%s", cancel.Raw)
	}

	if got := phoneEnded(t, c); got != callcore.EndCancelled || c.Status() != 487 {
		t.Errorf("alice's call: %s, %d; want cancelled, 487", got, c.Status())
	}
	wantEnded(t, n, recs, id, callcore.EndCancelled, 487)
}

// The app rejects a ringing call (RejectCall): the caller gets that
// status; the session ends the call as rejected whatever the status.
func TestFlowReject(t *testing.T) {
	for _, tc := range []struct {
		status int
		phone  callcore.EndReason // how the caller names the failure
	}{
		{486, callcore.EndBusy},
		{603, callcore.EndRejected},
	} {
		t.Run(fmt.Sprintf("status=%d", tc.status), func(t *testing.T) {
			ctx := flowCtx(t)
			n := openFlowNode(t, env{"CALLBUS_INBOUND": "ring"})
			alice := calltest.StartPhone(t, calltest.WithUser("alice"))
			id, c := dialNode(t, n, alice, "bob")
			command(t, n, &events.CmdRejectCall{SessionRef: sessionRef(id), StatusCode: tc.status})
			if err := c.WaitAnswer(ctx); calltest.StatusOf(err) != tc.status {
				t.Fatalf("rejected call: %v, want %d", err, tc.status)
			}
			ended(t, n, id)

			final := fmt.Sprintf("SendSipResponse(%d)", tc.status)
			recs := settled(t, n, id, c.ID(), concat(ringing(), []string{"RejectCall", "RejectCall", final, "CallEnded"})...)
			wantFlow(t, callRecords(recs, id, c.ID()), append(ringingFlow(),
				after("RejectCall", 5),    // 6: the command, once ringing
				causedBy(6, "RejectCall"), // 7: to the dialog
				causedBy(7, final),        // 8
				causedBy(6, "CallEnded"),  // 9: no media to stop, no CallTerminated
			)...)

			wantWire(t, "alice sent", c.Sent(), "INVITE")
			wantWire(t, "alice received", c.Received(), "100 INVITE", "180 INVITE", fmt.Sprintf("%d INVITE", tc.status))
			if got := phoneEnded(t, c); got != tc.phone || c.Status() != tc.status {
				t.Errorf("alice's call: %s, %d; want %s, %d", got, c.Status(), tc.phone, tc.status)
			}
			wantEnded(t, n, recs, id, callcore.EndRejected, tc.status)
		})
	}
}

// Nobody answers a ringing call within CALLBUS_RING_TIMEOUT: 480,
// no_answer.
func TestFlowRingTimeout(t *testing.T) {
	ctx := flowCtx(t)
	const ring = 300 * time.Millisecond
	n := openFlowNode(t, env{"CALLBUS_INBOUND": "ring", "CALLBUS_RING_TIMEOUT": ring.String()})
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	start := time.Now()
	c, err := alice.Call(ctx, nodeURI(n, "bob"))
	if calltest.StatusOf(err) != 480 {
		t.Fatalf("unanswered call: %v, want 480", err)
	}
	if took := time.Since(start); took < ring {
		t.Errorf("480 after %v, before the ring timeout of %v", took, ring)
	}
	recs := n.rec.wait(t, "CallEnded", func(recs []bus.Record) bool {
		id := sessionByCallID(recs, c.ID())
		return id != "" && count(appEvents(recs, id), "CallEnded") == 1
	})
	id := sessionByCallID(recs, c.ID())

	recs = settled(t, n, id, c.ID(), concat(ringing(), []string{"RejectCall", "SendSipResponse(480)", "CallEnded"})...)
	wantFlow(t, callRecords(recs, id, c.ID()), append(ringingFlow(),
		causedBy(1, "RejectCall").and(5),    // 6: the ring timer runs in the call's step
		causedBy(6, "SendSipResponse(480)"), // 7
		causedBy(1, "CallEnded").and(6),     // 8
	)...)

	wantWire(t, "alice sent", c.Sent(), "INVITE")
	wantWire(t, "alice received", c.Received(), "100 INVITE", "180 INVITE", "480 INVITE")
	if got := phoneEnded(t, c); got != callcore.EndNoAnswer || c.Status() != 480 {
		t.Errorf("alice's call: %s, %d; want no_answer, 480", got, c.Status())
	}
	wantEnded(t, n, recs, id, callcore.EndNoAnswer, 480)
}
