package main

import (
	"testing"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/calltest"
	"github.com/callbus/callbus/callcore/events"
)

// TestCallResourceOnTheBus runs the flows of DESIGN.md §4 on a whole node
// with real phones and checks, for every call each flow made, that the
// three views of the call agree once it is over (wantCall): the call the
// session reports, the call of the latest CallUpdated as a feed client
// decodes it from the frame, and the store's row, which the store folded
// from the events alone. It also checks the CallUpdated stream itself:
// none repeats the one before it, and the call's states appear in it in
// the order the call passed through them.
func TestCallResourceOnTheBus(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  env
		// run plays the flow and returns the sessions of the calls it made.
		run       func(t *testing.T, n *node) []string
		wantState []callcore.CallState // the states of the first call, in order
		wantEnd   callcore.EndReason   // how the first call ended
	}{
		{"flow=incoming/end=remote", env{"CALLBUS_INBOUND": "answer"}, func(t *testing.T, n *node) []string {
			alice := calltest.StartPhone(t, calltest.WithUser("alice"))
			id, c := callNode(t, n, alice, "bob")
			hangup(t, n, id, c)
			return []string{id}
		}, []callcore.CallState{callcore.StateRinging, callcore.StateActive, callcore.StateTerminated}, callcore.EndRemoteHangup},
		{"flow=outgoing/end=local", nil, func(t *testing.T, n *node) []string {
			bob := calltest.StartPhone(t, calltest.WithUser("bob"), calltest.WithPolicy(calltest.RingOnly()))
			id, c := callPhone(t, n, bob)
			command(t, n, &events.CmdHangupCall{SessionRef: sessionRef(id)})
			phoneEnded(t, c)
			ended(t, n, id)
			return []string{id}
		}, []callcore.CallState{callcore.StateInitiating, callcore.StateRinging, callcore.StateActive, callcore.StateTerminating,
			callcore.StateTerminated}, callcore.EndLocalHangup},
		{"flow=hold-resume", env{"CALLBUS_INBOUND": "answer"}, func(t *testing.T, n *node) []string {
			alice := calltest.StartPhone(t, calltest.WithUser("alice"))
			id, c := callNode(t, n, alice, "bob")
			command(t, n, &events.CmdHoldCall{SessionRef: sessionRef(id)})
			appEvent(t, n, id, func(*events.CallHeld) bool { return true })
			command(t, n, &events.CmdResumeCall{SessionRef: sessionRef(id)})
			appEvent(t, n, id, func(*events.CallResumed) bool { return true })
			if err := c.Hold(flowCtx(t)); err != nil { // the far end holds
				t.Fatal(err)
			}
			appEvent(t, n, id, func(e *events.CallHeld) bool { return e.By == events.ByRemote })
			hangup(t, n, id, c)
			return []string{id}
		}, []callcore.CallState{callcore.StateRinging, callcore.StateActive, callcore.StateOnHold, callcore.StateActive,
			callcore.StateOnHold, callcore.StateTerminated}, callcore.EndRemoteHangup},
		{"flow=cancel", env{"CALLBUS_INBOUND": "ring"}, func(t *testing.T, n *node) []string {
			alice := calltest.StartPhone(t, calltest.WithUser("alice"))
			c, _ := alice.Call(flowCtx(t), nodeURI(n, "bob"), calltest.CancelOnRinging())
			return []string{endedByCallID(t, n, c.ID())}
		}, []callcore.CallState{callcore.StateRinging, callcore.StateTerminated}, callcore.EndCancelled},
		{"flow=reject", env{"CALLBUS_INBOUND": "ring"}, func(t *testing.T, n *node) []string {
			alice := calltest.StartPhone(t, calltest.WithUser("alice"))
			id, c := dialNode(t, n, alice, "bob")
			command(t, n, &events.CmdRejectCall{SessionRef: sessionRef(id), StatusCode: 486})
			_ = c.WaitAnswer(flowCtx(t))
			ended(t, n, id)
			return []string{id}
		}, []callcore.CallState{callcore.StateRinging, callcore.StateTerminated}, callcore.EndRejected},
		{"flow=ring-timeout", env{"CALLBUS_INBOUND": "ring", "CALLBUS_RING_TIMEOUT": "300ms"}, func(t *testing.T, n *node) []string {
			alice := calltest.StartPhone(t, calltest.WithUser("alice"))
			c, _ := alice.Call(flowCtx(t), nodeURI(n, "bob"))
			return []string{endedByCallID(t, n, c.ID())}
		}, []callcore.CallState{callcore.StateRinging, callcore.StateTerminated}, callcore.EndNoAnswer},
		{"flow=dtmf-info", env{"CALLBUS_INBOUND": "answer"}, func(t *testing.T, n *node) []string {
			alice := calltest.StartPhone(t, calltest.WithUser("alice"))
			id, c := callNode(t, n, alice, "bob")
			if err := c.SendDTMF(flowCtx(t), "5"); err != nil {
				t.Fatal(err)
			}
			appEvent(t, n, id, func(*events.CallDtmfReceived) bool { return true })
			hangup(t, n, id, c)
			return []string{id}
		}, []callcore.CallState{callcore.StateRinging, callcore.StateActive, callcore.StateTerminated}, callcore.EndRemoteHangup},
		{"flow=bridge", env{"CALLBUS_INBOUND": "answer"}, func(t *testing.T, n *node) []string {
			alice := calltest.StartPhone(t, calltest.WithUser("alice"))
			bob := calltest.StartPhone(t, calltest.WithUser("bob"))
			ida, a := callNode(t, n, alice, "carol")
			idb, b := callNode(t, n, bob, "dave")
			command(t, n, &events.CmdBridgeCalls{SessionRef: sessionRef(ida), PeerSessionID: idb})
			appEvent(t, n, idb, func(*events.CallBridged) bool { return true })
			if c := wantCall(t, n, idb); c.BridgedWith != ida {
				t.Errorf("the peer's call %+v, want bridged_with %s", c, ida)
			}
			hangup(t, n, ida, a)
			// The bridge ended with a's call: b's resource says so, though
			// nothing happened on b's own dialog.
			if c := wantCall(t, n, idb); c.BridgedWith != "" || c.State != callcore.StateActive {
				t.Errorf("the peer's call after the other leg ended: %+v", c)
			}
			hangup(t, n, idb, b)
			return []string{ida, idb}
		}, []callcore.CallState{callcore.StateRinging, callcore.StateActive, callcore.StateTerminated}, callcore.EndRemoteHangup},
		{"flow=refer-received", env{"CALLBUS_INBOUND": "answer"}, func(t *testing.T, n *node) []string {
			alice := calltest.StartPhone(t, calltest.WithUser("alice"))
			carol := calltest.StartPhone(t, calltest.WithUser("carol"), calltest.WithPolicy(calltest.RingOnly()))
			id, c := callNode(t, n, alice, "bob")
			if err := c.Transfer(flowCtx(t), carol.URI("carol")); err != nil {
				t.Fatal(err)
			}
			leg, err := carol.Incoming(flowCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			var nid string
			n.rec.wait(t, "the transfer's call ringing", func(recs []bus.Record) bool {
				nid = transferLeg(recs, id)
				return nid != "" && count(appEvents(recs, nid), "CallRinging") == 1
			})
			if err := leg.Answer(flowCtx(t)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.WaitTransferResult(flowCtx(t)); err != nil {
				t.Fatal(err)
			}
			hangup(t, n, id, c)
			if err := leg.Hangup(flowCtx(t)); err != nil {
				t.Fatal(err)
			}
			ended(t, n, nid)
			return []string{id, nid}
		}, []callcore.CallState{callcore.StateRinging, callcore.StateActive, callcore.StateTerminated}, callcore.EndRemoteHangup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := openFlowNode(t, tc.env)
			ids := tc.run(t, n)
			for i, id := range ids {
				c := wantCall(t, n, id)
				if c.State != callcore.StateTerminated || c.EndedAt.IsZero() {
					t.Errorf("call %s at the end: %+v", id, c)
				}
				ups := callUpdates(n.rec.all(), id)
				for j := 1; j < len(ups); j++ {
					if sameCall(ups[j], ups[j-1]) {
						t.Errorf("call %s: CallUpdated %d repeats the one before it", id, j)
					}
				}
				if i > 0 {
					continue
				}
				if c.EndReason != tc.wantEnd {
					t.Errorf("call %s ended %s, want %s", id, c.EndReason, tc.wantEnd)
				}
				var states []callcore.CallState
				for _, u := range ups {
					if len(states) == 0 || states[len(states)-1] != u.State {
						states = append(states, u.State)
					}
				}
				if !subsequence(tc.wantState, states) {
					t.Errorf("call %s went through %v in its CallUpdated, want %v in that order", id, states, tc.wantState)
				}
			}
		})
	}
}

// endedByCallID waits for the CallEnded of the session of SIP Call-ID
// callID and returns the session.
func endedByCallID(t *testing.T, n *node, callID string) string {
	t.Helper()
	var id string
	n.rec.wait(t, "CallEnded of "+callID, func(recs []bus.Record) bool {
		id = sessionByCallID(recs, callID)
		return id != "" && count(appEvents(recs, id), "CallEnded") == 1
	})
	return id
}

// callUpdates returns the calls of the CallUpdated events of session id.
func callUpdates(recs []bus.Record, id string) []callcore.Call {
	var out []callcore.Call
	for _, r := range recs {
		if u, ok := r.Event.(*events.CallUpdated); ok && u.SessionID == id {
			out = append(out, u.Call)
		}
	}
	return out
}

// subsequence reports whether want appears in got in order (got may hold
// more states in between, a transient terminating for one).
func subsequence(want, got []callcore.CallState) bool {
	i := 0
	for _, s := range got {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	return i == len(want) && len(got) > 0 && got[0] == want[0] && got[len(got)-1] == want[len(want)-1]
}
