package session

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// The whole outgoing flow, then a local hang-up.
func TestOutgoingCall(t *testing.T) {
	h := newHarness(t, Config{From: "sip:agent@callbus.test"})
	id := newID()
	h.ok(&events.CmdMakeCall{SessionRef: sref(id), To: "sip:bob@example.com", ClientState: "cs-1",
		WebhookURL: "https://app.test/hook", Headers: events.Headers{{Name: "X-Campaign", Value: "7"}}},
		callcore.StateInitiating)
	got := h.expect(id, "app:CallCreated", "media:StartMediaStream")
	created := got[0].ev.(*events.CallCreated)
	if created.Direction != "outbound" || created.From != "sip:agent@callbus.test" || created.To != "sip:bob@example.com" ||
		created.ClientState != "cs-1" {
		t.Fatalf("CallCreated = %+v", created)
	}
	if start := got[1].ev.(*events.StartMediaStream); start.RemoteSDP != "" || len(start.MediaConfig.Codecs) != 2 {
		t.Fatalf("StartMediaStream = %+v", start)
	}
	if c := h.call(id); c.State != callcore.StateInitiating || c.ClientState != "cs-1" || h.internals(id).webhookURL != "https://app.test/hook" {
		t.Fatalf("call = %+v", c)
	}

	h.publish(&events.MediaStreamStarted{SessionRef: sref(id), LocalPort: 20002, Codec: "PCMU", LocalSDP: mediaOffer})
	inv := expectEv[*events.InitiateCall](h, id, "dialog:InitiateCall")
	if inv.From != "sip:agent@callbus.test" || inv.To != "sip:bob@example.com" || inv.SDPOffer != mediaOffer ||
		inv.Headers.Get("X-Campaign") != "7" {
		t.Fatalf("InitiateCall = %+v", inv)
	}
	h.publish(&events.CallStateChanged{SessionRef: sref(id), NewState: "ringing"})
	h.expect(id, "app:CallRinging")
	if c := h.call(id); c.State != callcore.StateRinging {
		t.Fatalf("state %s, want ringing", c.State)
	}
	// A 183 after the 180 rings no more.
	h.publish(&events.CallStateChanged{SessionRef: sref(id), NewState: "ringing"})
	h.publish(&events.CallEstablished{SessionRef: sref(id), SDPAnswer: remoteAnswer})
	got = h.expect(id, "media:UpdateMediaStream", "app:CallAnswered")
	if upd := got[0].ev.(*events.UpdateMediaStream); upd.LocalSDP != mediaOffer || upd.RemoteSDP != remoteAnswer {
		t.Fatalf("UpdateMediaStream = %+v", upd)
	}
	if ans := got[1].ev.(*events.CallAnswered); ans.Codec != "PCMA" {
		t.Fatalf("CallAnswered = %+v, want the answer's codec PCMA", ans)
	}
	c := h.call(id)
	if c.State != callcore.StateActive || c.Media.Codec != "PCMA" || c.Media.LocalRTP != "127.0.0.1:20002" ||
		c.Media.RemoteRTP != "192.0.2.20:30000" || c.AnsweredAt.IsZero() {
		t.Fatalf("call = %+v", c)
	}

	h.ok(&events.CmdHangupCall{SessionRef: sref(id)}, callcore.StateTerminating)
	h.expect(id, "dialog:TerminateSession", "media:StopMediaStream")
	h.publish(&events.MediaStreamStopped{SessionRef: sref(id)})
	h.publish(&events.CallTerminated{SessionRef: sref(id), Reason: "local_hangup"})
	if ended := expectEv[*events.CallEnded](h, id, "app:CallEnded"); ended.Reason != "local_hangup" {
		t.Fatalf("CallEnded = %+v", ended)
	}
}

// The far end refuses: the status from DialogError is the call's
// sip_status, the reason from CallTerminated its end reason.
func TestOutgoingRefused(t *testing.T) {
	for _, tc := range []struct {
		status int
		reason callcore.EndReason
	}{{486, callcore.EndBusy}, {600, callcore.EndBusy}, {603, callcore.EndRejected}, {480, callcore.EndNoAnswer}, {404, callcore.EndFailed}} {
		t.Run("status="+strconv.Itoa(tc.status), func(t *testing.T) {
			h := newHarness(t, Config{})
			id := newID()
			h.ok(&events.CmdMakeCall{SessionRef: sref(id), To: "sip:bob@example.com"}, callcore.StateInitiating)
			h.expect(id, "app:CallCreated", "media:StartMediaStream")
			h.publish(&events.MediaStreamStarted{SessionRef: sref(id), Codec: "PCMU", LocalSDP: mediaOffer})
			h.expect(id, "dialog:InitiateCall")
			h.publish(&events.DialogError{SessionRef: sref(id), Error: "refused", ErrorCode: tc.status})
			h.publish(&events.CallTerminated{SessionRef: sref(id), Reason: tc.reason})
			h.expect(id, "media:StopMediaStream")
			h.publish(&events.MediaStreamStopped{SessionRef: sref(id)})
			ended := expectEv[*events.CallEnded](h, id, "app:CallEnded")
			if ended.Reason != string(tc.reason) || ended.SipStatus != tc.status || ended.Message != "refused" {
				t.Fatalf("CallEnded = %+v", ended)
			}
			if c := h.call(id); c.SipStatus != tc.status || c.EndReason != tc.reason {
				t.Fatalf("call = %+v", c)
			}
		})
	}
}

// An outgoing call unanswered at its ring timeout is cancelled, end reason
// no_answer, whatever reason the dialog gives for the cancel.
func TestOutgoingRingTimeout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   time.Duration
		ringS int
	}{{"timeout=config", 50 * time.Millisecond, 0}, {"timeout=ring_timeout_s", time.Hour, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{RingTimeout: tc.cfg})
			id := newID()
			h.ok(&events.CmdMakeCall{SessionRef: sref(id), To: "sip:bob@example.com", RingTimeoutS: tc.ringS},
				callcore.StateInitiating)
			h.expect(id, "app:CallCreated", "media:StartMediaStream")
			h.publish(&events.MediaStreamStarted{SessionRef: sref(id), Codec: "PCMU", LocalSDP: mediaOffer})
			h.expect(id, "dialog:InitiateCall")
			h.publish(&events.CallStateChanged{SessionRef: sref(id), NewState: "ringing"})
			h.expect(id, "app:CallRinging")
			got := h.expect(id, "dialog:TerminateSession", "media:StopMediaStream")
			if term := got[0].ev.(*events.TerminateSession); term.Reason != "no_answer" {
				t.Fatalf("TerminateSession = %+v", term)
			}
			if cause, want := got[0].env.Cause, h.input(id, "MediaStreamStarted").ID; cause != want {
				t.Fatalf("TerminateSession cause = %v, want the MediaStreamStarted %v that armed the timer", cause, want)
			}
			h.publish(&events.CallTerminated{SessionRef: sref(id), Reason: "cancelled"})
			h.publish(&events.MediaStreamStopped{SessionRef: sref(id)})
			if ended := expectEv[*events.CallEnded](h, id, "app:CallEnded"); ended.Reason != "no_answer" {
				t.Fatalf("CallEnded = %+v", ended)
			}
		})
	}
}

// Hanging up before the INVITE is sent tells dialog nothing; before the
// answer it cancels.
func TestOutgoingEarlyHangup(t *testing.T) {
	t.Run("stage=media", func(t *testing.T) {
		h := newHarness(t, Config{})
		id := newID()
		h.ok(&events.CmdMakeCall{SessionRef: sref(id), To: "sip:bob@example.com"}, callcore.StateInitiating)
		h.expect(id, "app:CallCreated", "media:StartMediaStream")
		h.ok(&events.CmdHangupCall{SessionRef: sref(id)}, callcore.StateTerminating)
		h.expect(id, "media:StopMediaStream")
		// Media finishes starting, then stops: no INVITE goes out.
		h.publish(&events.MediaStreamStarted{SessionRef: sref(id), Codec: "PCMU", LocalSDP: mediaOffer})
		h.publish(&events.MediaStreamStopped{SessionRef: sref(id)})
		if ended := expectEv[*events.CallEnded](h, id, "app:CallEnded"); ended.Reason != "local_hangup" {
			t.Fatalf("CallEnded = %+v", ended)
		}
	})
	t.Run("stage=ringing", func(t *testing.T) {
		h := newHarness(t, Config{})
		id := newID()
		h.ok(&events.CmdMakeCall{SessionRef: sref(id), To: "sip:bob@example.com"}, callcore.StateInitiating)
		h.expect(id, "app:CallCreated", "media:StartMediaStream")
		h.publish(&events.MediaStreamStarted{SessionRef: sref(id), Codec: "PCMU", LocalSDP: mediaOffer})
		h.expect(id, "dialog:InitiateCall")
		h.ok(&events.CmdHangupCall{SessionRef: sref(id)}, callcore.StateTerminating)
		h.expect(id, "dialog:TerminateSession", "media:StopMediaStream")
		// A 200 that crossed the CANCEL answers nothing.
		h.publish(&events.CallEstablished{SessionRef: sref(id), SDPAnswer: remoteAnswer})
		h.publish(&events.CallTerminated{SessionRef: sref(id), Reason: "cancelled"})
		h.publish(&events.MediaStreamStopped{SessionRef: sref(id)})
		if ended := expectEv[*events.CallEnded](h, id, "app:CallEnded"); ended.Reason != "local_hangup" {
			t.Fatalf("CallEnded = %+v", ended)
		}
	})
}

// Media failing to make the offer fails the call before any INVITE.
func TestOutgoingMediaError(t *testing.T) {
	h := newHarness(t, Config{})
	id := newID()
	h.ok(&events.CmdMakeCall{SessionRef: sref(id), To: "sip:bob@example.com"}, callcore.StateInitiating)
	h.expect(id, "app:CallCreated", "media:StartMediaStream")
	h.publish(&events.MediaError{SessionRef: sref(id), Error: "no RTP port left", ErrorCode: "no_port"})
	ended := expectEv[*events.CallEnded](h, id, "app:CallEnded")
	if ended.Reason != "failed" || ended.SipStatus != 0 || ended.Message != "no RTP port left" {
		t.Fatalf("CallEnded = %+v", ended)
	}
}

// A far end answering with an SDP media cannot use hangs the call up.
func TestOutgoingAnswerUnusable(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredOutbound()
	h.publish(&events.MediaError{SessionRef: sref(id), Error: "no common codec", ErrorCode: "incompatible_sdp"})
	if term := expectEv[*events.TerminateSession](h, id, "dialog:TerminateSession"); term.Reason != "failed" {
		t.Fatalf("TerminateSession = %+v", term)
	}
	h.expect(id, "media:StopMediaStream")
	h.publish(&events.CallTerminated{SessionRef: sref(id), Reason: "failed"})
	h.publish(&events.MediaStreamStopped{SessionRef: sref(id)})
	if ended := expectEv[*events.CallEnded](h, id, "app:CallEnded"); ended.Reason != "failed" {
		t.Fatalf("CallEnded = %+v", ended)
	}
}

// Media stopping on its own ends the call: timeout for an RTP timeout,
// failed for any other reason.
func TestMediaStoppedUnasked(t *testing.T) {
	for _, tc := range []struct {
		reason events.StreamStopReason
		want   callcore.EndReason
	}{
		{events.StopReasonRTPTimeout, callcore.EndTimeout},
		{events.StopReasonStopped, callcore.EndFailed},
		{events.StopReasonNoStream, callcore.EndFailed},
	} {
		t.Run("reason="+string(tc.reason), func(t *testing.T) {
			h := newHarness(t, Config{})
			id := h.answeredInbound()
			h.publish(&events.MediaStreamStopped{SessionRef: sref(id), Reason: tc.reason})
			if term := expectEv[*events.TerminateSession](h, id, "dialog:TerminateSession"); term.Reason != tc.want {
				t.Fatalf("TerminateSession = %+v", term)
			}
			h.publish(&events.CallTerminated{SessionRef: sref(id), Reason: tc.want})
			ended := expectEv[*events.CallEnded](h, id, "app:CallEnded")
			if ended.Reason != string(tc.want) || ended.Message != "media stopped: "+string(tc.reason) {
				t.Fatalf("CallEnded = %+v", ended)
			}
		})
	}
}

func TestMakeCallValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cmd   events.CmdMakeCall
		field string
	}{
		{"to=empty", events.CmdMakeCall{}, "to"},
		{"to=bare-user", events.CmdMakeCall{To: "bob"}, "to"},
		{"to=http", events.CmdMakeCall{To: "http://example.com"}, "to"},
		{"to=tel", events.CmdMakeCall{To: "tel:+15551234"}, "to"},
		{"to=no-host", events.CmdMakeCall{To: "sip:bob@"}, "to"},
		{"to=scheme-only", events.CmdMakeCall{To: "sip:"}, "to"},
		{"to=name-addr", events.CmdMakeCall{To: "Bob <sip:bob@example.com>"}, "to"},
		{"to=bad-port", events.CmdMakeCall{To: "sip:bob@example.com:99999"}, "to"},
		{"from=not-sip", events.CmdMakeCall{To: "sip:bob@example.com", From: "alice"}, "from"},
		{"ring_timeout_s=-1", events.CmdMakeCall{To: "sip:bob@example.com", RingTimeoutS: -1}, "ring_timeout_s"},
		{"headers=injection", events.CmdMakeCall{To: "sip:bob@example.com",
			Headers: events.Headers{{Name: "X-A", Value: "1\r\nVia: evil"}}}, "headers"},
		{"headers=bad-name", events.CmdMakeCall{To: "sip:bob@example.com",
			Headers: events.Headers{{Name: "X A", Value: "1"}}}, "headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			cmd := tc.cmd
			cmd.SessionID = newID()
			h.refused(&cmd, callcore.CodeValidationFailed, tc.field)
			if _, ok := h.s.Get(cmd.SessionID); ok {
				t.Fatal("a refused call is listed")
			}
		})
	}
	t.Run("to=valid-forms", func(t *testing.T) {
		h := newHarness(t, Config{})
		for _, to := range []string{"sip:bob@example.com", "SIPS:bob@example.com:5061;transport=tcp",
			"sip:[2001:db8::1]:5060", "sip:10.0.0.1", "sip:+15551234@gw.example.com;user=phone?X-A=1"} {
			id := newID()
			h.ok(&events.CmdMakeCall{SessionRef: sref(id), To: to}, callcore.StateInitiating)
			h.expect(id, "app:CallCreated", "media:StartMediaStream")
		}
	})
	t.Run("session_id=taken", func(t *testing.T) {
		h := newHarness(t, Config{})
		id := newID()
		h.ok(&events.CmdMakeCall{SessionRef: sref(id), To: "sip:bob@example.com"}, callcore.StateInitiating)
		h.expect(id, "app:CallCreated", "media:StartMediaStream")
		h.refused(&events.CmdMakeCall{SessionRef: sref(id), To: "sip:carol@example.com"}, callcore.CodeValidationFailed, "session_id")
	})
}

// Past MaxCalls MakeCall is unavailable; a call that ends frees its place.
func TestMakeCallOverMaxCalls(t *testing.T) {
	h := newHarness(t, Config{MaxCalls: 2})
	a := h.incoming("sip:bob@callbus.test")
	h.expect(a, "app:CallCreated")
	b := newID()
	h.ok(&events.CmdMakeCall{SessionRef: sref(b), To: "sip:bob@example.com"}, callcore.StateInitiating)
	h.expect(b, "app:CallCreated", "media:StartMediaStream")
	ce := h.refused(&events.CmdMakeCall{SessionRef: sref(newID()), To: "sip:bob@example.com"}, callcore.CodeUnavailable, "")
	if !strings.Contains(ce.Message, "max_calls") {
		t.Fatalf("message %q does not name max_calls", ce.Message)
	}
	h.ok(&events.CmdHangupCall{SessionRef: sref(a)}, callcore.StateTerminated)
	h.expect(a, "dialog:RejectCall", "app:CallEnded")
	c := newID()
	h.ok(&events.CmdMakeCall{SessionRef: sref(c), To: "sip:bob@example.com"}, callcore.StateInitiating)
	h.expect(c, "app:CallCreated", "media:StartMediaStream")
}
