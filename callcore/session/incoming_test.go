package session

import (
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// The whole inbound flow under the ring policy, then a far-end BYE.
func TestIncomingRingAnswerAndRemoteHangup(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.incoming("<sip:bob@callbus.test>")
	created := expectEv[*events.CallCreated](h, id, "app:CallCreated")
	if created.Direction != "inbound" || created.SipCallID != "cid-"+id || created.To != "<sip:bob@callbus.test>" {
		t.Fatalf("CallCreated = %+v", created)
	}
	if c := h.call(id); c.State != callcore.StateRinging || c.Direction != callcore.Inbound || c.CreatedAt.IsZero() {
		t.Fatalf("after IncomingCall: %+v", c)
	}
	h.publish(&events.CallStateChanged{SessionRef: sref(id), NewState: "ringing"})
	h.expect(id, "app:CallRinging")

	h.ok(&events.CmdAnswerCall{SessionRef: sref(id)}, callcore.StateRinging)
	start := expectEv[*events.StartMediaStream](h, id, "media:StartMediaStream")
	if start.RemoteSDP != remoteOffer || start.LocalSDP != "" ||
		len(start.MediaConfig.Codecs) != 2 || start.MediaConfig.Codecs[0] != "PCMU" || start.MediaConfig.Codecs[1] != "PCMA" {
		t.Fatalf("StartMediaStream = %+v", start)
	}
	h.publish(&events.MediaStreamStarted{SessionRef: sref(id), LocalPort: 20000, Codec: "PCMU", LocalSDP: mediaAnswer})
	if acc := expectEv[*events.AcceptCall](h, id, "dialog:AcceptCall"); acc.SDPAnswer != mediaAnswer {
		t.Fatalf("AcceptCall = %+v", acc)
	}
	if c := h.call(id); c.State != callcore.StateRinging || !c.AnsweredAt.IsZero() {
		t.Fatalf("answered before the ACK: %+v", c)
	}
	h.publish(&events.CallEstablished{SessionRef: sref(id)})
	if ans := expectEv[*events.CallAnswered](h, id, "app:CallAnswered"); ans.Codec != "PCMU" {
		t.Fatalf("CallAnswered = %+v", ans)
	}
	c := h.call(id)
	if c.State != callcore.StateActive || c.AnsweredAt.IsZero() || c.Media.Codec != "PCMU" ||
		c.Media.LocalRTP != "127.0.0.1:20000" || c.SipCallID != "cid-"+id {
		t.Fatalf("active call: %+v", c)
	}

	ended := h.remoteBye(id)
	if ended.Reason != "remote_hangup" || ended.SipStatus != 0 {
		t.Fatalf("CallEnded = %+v", ended)
	}
	c = h.call(id)
	if c.State != callcore.StateTerminated || c.EndReason != callcore.EndRemoteHangup || c.EndedAt.IsZero() {
		t.Fatalf("ended call: %+v", c)
	}
	if n := h.s.Live(); n != 0 {
		t.Fatalf("Live() = %d after the call ended", n)
	}
}

// Calls that answer at once: the answer policy, and the built-in numbers
// whatever the policy. A webhook call rings until the IVR (a later issue)
// answers it, like the ring policy.
func TestIncomingAnsweredAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy Policy
		to     string
		atOnce bool
	}{
		{"policy=answer", PolicyAnswer, "<sip:bob@callbus.test>", true},
		{"policy=ring/to=echo", PolicyRing, "<sip:echo@callbus.test>", true},
		{"policy=ring/to=tone", PolicyRing, "\"Tone\" <sips:TONE@callbus.test:5061>;tag=x", true},
		{"policy=ring/to=bob", PolicyRing, "sip:bob@callbus.test", false},
		{"policy=webhook/to=bob", PolicyWebhook, "sip:bob@callbus.test", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{Inbound: tc.policy})
			id := h.incoming(tc.to)
			if !tc.atOnce {
				h.expect(id, "app:CallCreated")
				if c := h.call(id); c.State != callcore.StateRinging {
					t.Fatalf("state %s", c.State)
				}
				h.ok(&events.CmdHangupCall{SessionRef: sref(id)}, callcore.StateTerminated)
				h.expect(id, "dialog:RejectCall", "app:CallEnded")
				return
			}
			h.expect(id, "app:CallCreated", "media:StartMediaStream")
			h.publish(&events.CallStateChanged{SessionRef: sref(id), NewState: "ringing"})
			h.expect(id, "app:CallRinging")
			h.publish(&events.MediaStreamStarted{SessionRef: sref(id), Codec: "PCMU", LocalSDP: mediaAnswer})
			h.expect(id, "dialog:AcceptCall")
			h.publish(&events.CallEstablished{SessionRef: sref(id)})
			h.expect(id, "app:CallAnswered")
		})
	}
}

// An unanswered call is rejected with 480 at the ring timeout; the
// RejectCall names the IncomingCall that armed the timer as its cause.
func TestIncomingRingTimeout(t *testing.T) {
	h := newHarness(t, Config{RingTimeout: 50 * time.Millisecond})
	id := h.incoming("sip:bob@callbus.test")
	h.expect(id, "app:CallCreated")
	got := h.expect(id, "dialog:RejectCall", "app:CallEnded")
	rej := got[0].ev.(*events.RejectCall)
	if rej.StatusCode != 480 || rej.Reason != "Temporarily Unavailable" {
		t.Fatalf("RejectCall = %+v", rej)
	}
	if ended := got[1].ev.(*events.CallEnded); ended.Reason != "no_answer" || ended.SipStatus != 480 {
		t.Fatalf("CallEnded = %+v", ended)
	}
	if cause, want := got[0].env.Cause, h.input(id, "IncomingCall").ID; cause != want {
		t.Fatalf("RejectCall cause = %v, want the IncomingCall %v", cause, want)
	}
	c := h.call(id)
	if c.State != callcore.StateTerminated || c.EndReason != callcore.EndNoAnswer || c.SipStatus != 480 {
		t.Fatalf("call = %+v", c)
	}
}

// Answering stops the ring timer.
func TestIncomingAnswerStopsRingTimer(t *testing.T) {
	h := newHarness(t, Config{RingTimeout: time.Hour})
	id := h.incoming("sip:bob@callbus.test")
	h.expect(id, "app:CallCreated")
	c := h.s.lookup(id)
	armed := func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.ringTimer != nil }
	if !armed() {
		t.Fatal("a ringing call has no ring timer")
	}
	h.ok(&events.CmdAnswerCall{SessionRef: sref(id)}, callcore.StateRinging)
	h.expect(id, "media:StartMediaStream")
	if armed() {
		t.Fatal("the ring timer runs on after AnswerCall")
	}
}

// Past MaxCalls an incoming call is refused with 503 and no session is kept.
func TestIncomingOverMaxCalls(t *testing.T) {
	h := newHarness(t, Config{MaxCalls: 1})
	first := h.incoming("sip:bob@callbus.test")
	h.expect(first, "app:CallCreated")
	second := h.incoming("sip:bob@callbus.test")
	if rej := expectEv[*events.RejectCall](h, second, "dialog:RejectCall"); rej.StatusCode != 503 {
		t.Fatalf("RejectCall = %+v", rej)
	}
	if _, ok := h.s.Get(second); ok {
		t.Fatal("a refused call is listed")
	}
	if n := len(h.s.List()); n != 1 {
		t.Fatalf("List() has %d calls, want 1", n)
	}
	h.ok(&events.CmdRejectCall{SessionRef: sref(first), StatusCode: 486}, callcore.StateTerminated)
	h.expect(first, "dialog:RejectCall", "app:CallEnded")
	third := h.incoming("sip:bob@callbus.test")
	h.expect(third, "app:CallCreated")
}

func TestRejectCall(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		reason     string
		wantStatus int
		wantReason string
	}{
		{"status=default", 0, "", 603, "Decline"},
		{"status=486", 486, "", 486, "Busy Here"},
		{"status=480/reason=custom", 480, "Gone fishing", 480, "Gone fishing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			id := h.incoming("sip:bob@callbus.test")
			h.expect(id, "app:CallCreated")
			h.ok(&events.CmdRejectCall{SessionRef: sref(id), StatusCode: tc.status, Reason: tc.reason}, callcore.StateTerminated)
			got := h.expect(id, "dialog:RejectCall", "app:CallEnded")
			if rej := got[0].ev.(*events.RejectCall); rej.StatusCode != tc.wantStatus || rej.Reason != tc.wantReason {
				t.Fatalf("RejectCall = %+v", rej)
			}
			if ended := got[1].ev.(*events.CallEnded); ended.Reason != "rejected" || ended.SipStatus != tc.wantStatus {
				t.Fatalf("CallEnded = %+v", ended)
			}
		})
	}
}

// Rejecting while media prepares the answer stops the media first.
func TestRejectWhileAnswering(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.incoming("sip:bob@callbus.test")
	h.expect(id, "app:CallCreated")
	h.ok(&events.CmdAnswerCall{SessionRef: sref(id)}, callcore.StateRinging)
	h.expect(id, "media:StartMediaStream")
	h.ok(&events.CmdRejectCall{SessionRef: sref(id)}, callcore.StateTerminating)
	h.expect(id, "dialog:RejectCall", "media:StopMediaStream")
	h.publish(&events.MediaStreamStarted{SessionRef: sref(id), Codec: "PCMU", LocalSDP: mediaAnswer})
	h.publish(&events.MediaStreamStopped{SessionRef: sref(id), Reason: "stopped"})
	if ended := expectEv[*events.CallEnded](h, id, "app:CallEnded"); ended.Reason != "rejected" || ended.SipStatus != 603 {
		t.Fatalf("CallEnded = %+v", ended)
	}
}

// A CANCEL from the caller ends a ringing call; media, when it was started
// for the answer, is stopped first.
func TestIncomingCancelled(t *testing.T) {
	for _, tc := range []struct {
		name      string
		answering bool
	}{{"media=none", false}, {"media=starting", true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			id := h.incoming("sip:bob@callbus.test")
			h.expect(id, "app:CallCreated")
			if tc.answering {
				h.ok(&events.CmdAnswerCall{SessionRef: sref(id)}, callcore.StateRinging)
				h.expect(id, "media:StartMediaStream")
				h.publish(&events.MediaStreamStarted{SessionRef: sref(id), Codec: "PCMU", LocalSDP: mediaAnswer})
				h.expect(id, "dialog:AcceptCall")
			}
			h.publish(&events.CallTerminated{SessionRef: sref(id), Reason: "cancelled"})
			if tc.answering {
				h.expect(id, "media:StopMediaStream")
				if c := h.call(id); c.State != callcore.StateTerminating {
					t.Fatalf("state %s, want terminating until media stopped", c.State)
				}
				h.publish(&events.MediaStreamStopped{SessionRef: sref(id)})
			}
			if ended := expectEv[*events.CallEnded](h, id, "app:CallEnded"); ended.Reason != "cancelled" {
				t.Fatalf("CallEnded = %+v", ended)
			}
		})
	}
}

// A media failure before the answer rejects the INVITE: 488 for SDP
// trouble, 503 when no port is left; the call fails.
func TestIncomingMediaError(t *testing.T) {
	for _, tc := range []struct {
		code   events.MediaErrorCode
		status int
	}{{events.MediaErrIncompatibleSDP, 488}, {events.MediaErrNoPort, 503}, {events.MediaErrRTP, 488}} {
		t.Run("code="+string(tc.code), func(t *testing.T) {
			h := newHarness(t, Config{Inbound: PolicyAnswer})
			id := h.incoming("sip:bob@callbus.test")
			h.expect(id, "app:CallCreated", "media:StartMediaStream")
			h.publish(&events.MediaError{SessionRef: sref(id), Error: "boom", ErrorCode: tc.code})
			got := h.expect(id, "dialog:RejectCall", "app:CallEnded")
			if rej := got[0].ev.(*events.RejectCall); rej.StatusCode != tc.status {
				t.Fatalf("RejectCall = %+v", rej)
			}
			ended := got[1].ev.(*events.CallEnded)
			if ended.Reason != "failed" || ended.SipStatus != tc.status || ended.Message != "boom" {
				t.Fatalf("CallEnded = %+v", ended)
			}
		})
	}
}

// Hanging up a ringing inbound call declines it; an answered one gets a
// BYE, and ends once both the dialog and the media confirm, in either order.
func TestIncomingLocalHangup(t *testing.T) {
	t.Run("state=ringing", func(t *testing.T) {
		h := newHarness(t, Config{})
		id := h.incoming("sip:bob@callbus.test")
		h.expect(id, "app:CallCreated")
		h.ok(&events.CmdHangupCall{SessionRef: sref(id)}, callcore.StateTerminated)
		got := h.expect(id, "dialog:RejectCall", "app:CallEnded")
		if rej := got[0].ev.(*events.RejectCall); rej.StatusCode != 603 {
			t.Fatalf("RejectCall = %+v", rej)
		}
		if ended := got[1].ev.(*events.CallEnded); ended.Reason != "local_hangup" || ended.SipStatus != 603 {
			t.Fatalf("CallEnded = %+v", ended)
		}
	})
	for _, order := range []string{"dialog-first", "media-first"} {
		t.Run("state=active/order="+order, func(t *testing.T) {
			h := newHarness(t, Config{})
			id := h.answeredInbound()
			h.ok(&events.CmdHangupCall{SessionRef: sref(id), Reason: "done"}, callcore.StateTerminating)
			term := expectEv[*events.TerminateSession](h, id, "dialog:TerminateSession")
			if term.Reason != "local_hangup" {
				t.Fatalf("TerminateSession = %+v", term)
			}
			h.expect(id, "media:StopMediaStream")
			h.refused(&events.CmdHangupCall{SessionRef: sref(id)}, callcore.CodeInvalidState, "")
			first, second := events.Event(&events.CallTerminated{SessionRef: sref(id), Reason: "local_hangup"}),
				events.Event(&events.MediaStreamStopped{SessionRef: sref(id)})
			if order == "media-first" {
				first, second = second, first
			}
			h.publish(first)
			// Nothing yet: the call waits for the other confirmation.
			h.waitState(id, callcore.StateTerminating)
			h.publish(second)
			ended := expectEv[*events.CallEnded](h, id, "app:CallEnded")
			if ended.Reason != "local_hangup" || ended.Message != "done" {
				t.Fatalf("CallEnded = %+v", ended)
			}
			h.refused(&events.CmdHangupCall{SessionRef: sref(id)}, callcore.CodeInvalidState, "")
		})
	}
}

// A call whose media or dialog never confirms the teardown ends anyway.
func TestTeardownTimeout(t *testing.T) {
	h := newHarness(t, Config{TeardownTimeout: 50 * time.Millisecond})
	id := h.answeredInbound()
	h.ok(&events.CmdHangupCall{SessionRef: sref(id)}, callcore.StateTerminating)
	h.expect(id, "dialog:TerminateSession", "media:StopMediaStream")
	h.publish(&events.CallTerminated{SessionRef: sref(id), Reason: "local_hangup"})
	ended := expectEv[*events.CallEnded](h, id, "app:CallEnded")
	if ended.Reason != "local_hangup" || ended.Message != "teardown timed out waiting for MediaStreamStopped" {
		t.Fatalf("CallEnded = %+v", ended)
	}
	// The late confirmation changes nothing.
	h.publish(&events.MediaStreamStopped{SessionRef: sref(id)})
	h.publish(&events.MediaQualityUpdate{SessionRef: sref(id)})
	h.input(id, "MediaQualityUpdate")
}
