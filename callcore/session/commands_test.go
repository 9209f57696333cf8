package session

import (
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// callCommands returns one valid instance of every per-call command, for id.
func callCommands(id, peer string) []events.Event {
	r := sref(id)
	return []events.Event{
		&events.CmdAnswerCall{SessionRef: r},
		&events.CmdRejectCall{SessionRef: r},
		&events.CmdHangupCall{SessionRef: r},
		&events.CmdHoldCall{SessionRef: r},
		&events.CmdResumeCall{SessionRef: r},
		&events.CmdTransferCall{SessionRef: r, Target: "sip:c@example.com"},
		&events.CmdSendDtmf{SessionRef: r, Digits: "1"},
		&events.CmdPlayAudio{SessionRef: r, File: "a.wav"},
		&events.CmdStopAudio{SessionRef: r},
		&events.CmdStartRecording{SessionRef: r},
		&events.CmdStopRecording{SessionRef: r},
		&events.CmdBridgeCalls{SessionRef: r, PeerSessionID: peer},
	}
}

// Every per-call command names the unknown call it cannot find.
func TestCommandsNotFound(t *testing.T) {
	h := newHarness(t, Config{})
	id := newID()
	for _, cmd := range callCommands(id, newID()) {
		t.Run("cmd="+cmd.Type(), func(t *testing.T) {
			ce := h.refused(cmd, callcore.CodeNotFound, "")
			if !strings.Contains(ce.Message, id) {
				t.Fatalf("message %q does not name the call", ce.Message)
			}
		})
	}
}

// Each command refused in a state names that state.
func TestCommandsInvalidState(t *testing.T) {
	type setup func(h *harness) string
	ringing := func(h *harness) string {
		id := h.incoming("sip:bob@callbus.test")
		h.expect(id, "app:CallCreated")
		return id
	}
	active := func(h *harness) string { return h.answeredInbound() }
	outboundInitiating := func(h *harness) string {
		id := newID()
		h.ok(&events.CmdMakeCall{SessionRef: sref(id), To: "sip:bob@example.com"}, callcore.StateInitiating)
		h.expect(id, "app:CallCreated", "media:StartMediaStream")
		return id
	}
	terminated := func(h *harness) string {
		id := ringing(h)
		h.ok(&events.CmdRejectCall{SessionRef: sref(id)}, callcore.StateTerminated)
		h.expect(id, "dialog:RejectCall", "app:CallEnded")
		return id
	}
	terminating := func(h *harness) string {
		id := active(h)
		h.ok(&events.CmdHangupCall{SessionRef: sref(id)}, callcore.StateTerminating)
		h.expect(id, "dialog:TerminateSession", "media:StopMediaStream")
		return id
	}
	for _, tc := range []struct {
		name  string
		setup setup
		cmd   func(id string) events.Event
		state callcore.CallState
	}{
		{"cmd=AnswerCall/state=active", active, func(id string) events.Event { return &events.CmdAnswerCall{SessionRef: sref(id)} }, callcore.StateActive},
		{"cmd=AnswerCall/direction=outbound", outboundInitiating, func(id string) events.Event { return &events.CmdAnswerCall{SessionRef: sref(id)} }, callcore.StateInitiating},
		{"cmd=RejectCall/state=active", active, func(id string) events.Event { return &events.CmdRejectCall{SessionRef: sref(id)} }, callcore.StateActive},
		{"cmd=RejectCall/direction=outbound", outboundInitiating, func(id string) events.Event { return &events.CmdRejectCall{SessionRef: sref(id)} }, callcore.StateInitiating},
		{"cmd=HangupCall/state=terminated", terminated, func(id string) events.Event { return &events.CmdHangupCall{SessionRef: sref(id)} }, callcore.StateTerminated},
		{"cmd=HangupCall/state=terminating", terminating, func(id string) events.Event { return &events.CmdHangupCall{SessionRef: sref(id)} }, callcore.StateTerminating},
		{"cmd=HoldCall/state=ringing", ringing, func(id string) events.Event { return &events.CmdHoldCall{SessionRef: sref(id)} }, callcore.StateRinging},
		{"cmd=ResumeCall/state=active", active, func(id string) events.Event { return &events.CmdResumeCall{SessionRef: sref(id)} }, callcore.StateActive},
		{"cmd=TransferCall/state=initiating", outboundInitiating, func(id string) events.Event {
			return &events.CmdTransferCall{SessionRef: sref(id), Target: "sip:c@example.com"}
		}, callcore.StateInitiating},
		{"cmd=SendDtmf/state=terminated", terminated, func(id string) events.Event { return &events.CmdSendDtmf{SessionRef: sref(id), Digits: "1"} }, callcore.StateTerminated},
		{"cmd=PlayAudio/state=ringing", ringing, func(id string) events.Event { return &events.CmdPlayAudio{SessionRef: sref(id), File: "a.wav"} }, callcore.StateRinging},
		{"cmd=StopAudio/state=active", active, func(id string) events.Event { return &events.CmdStopAudio{SessionRef: sref(id)} }, callcore.StateActive},
		{"cmd=StartRecording/state=terminating", terminating, func(id string) events.Event { return &events.CmdStartRecording{SessionRef: sref(id)} }, callcore.StateTerminating},
		{"cmd=StopRecording/state=active", active, func(id string) events.Event { return &events.CmdStopRecording{SessionRef: sref(id)} }, callcore.StateActive},
		{"cmd=BridgeCalls/state=ringing", ringing, func(id string) events.Event {
			return &events.CmdBridgeCalls{SessionRef: sref(id), PeerSessionID: newID()}
		}, callcore.StateRinging},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			id := tc.setup(h)
			ce := h.refused(tc.cmd(id), callcore.CodeInvalidState, "")
			if !strings.Contains(ce.Message, string(tc.state)) || !strings.Contains(ce.Message, id) {
				t.Fatalf("message %q does not name the call and its state %s", ce.Message, tc.state)
			}
		})
	}
}

func TestRejectCallValidation(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.incoming("sip:bob@callbus.test")
	h.expect(id, "app:CallCreated")
	for _, status := range []int{200, 399, 700, -1} {
		h.refused(&events.CmdRejectCall{SessionRef: sref(id), StatusCode: status}, callcore.CodeValidationFailed, "status_code")
	}
	h.refused(&events.CmdRejectCall{SessionRef: sref(id), Reason: "a\r\nb"}, callcore.CodeValidationFailed, "reason")
	h.refused(&events.CmdHangupCall{SessionRef: sref(id), Reason: "a\nb"}, callcore.CodeValidationFailed, "reason")
}

// A command published instead of requested is still carried out.
func TestCommandPublished(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.incoming("sip:bob@callbus.test")
	h.expect(id, "app:CallCreated")
	h.publish(&events.CmdAnswerCall{SessionRef: sref(id)})
	h.expect(id, "media:StartMediaStream")
	h.publish(&events.CmdAnswerCall{SessionRef: sref(id)}) // refused: logged, nothing published
	h.publish(&events.CmdHangupCall{SessionRef: sref(id)})
	h.expect(id, "dialog:RejectCall", "media:StopMediaStream")
	h.publish(&events.MediaStreamStopped{SessionRef: sref(id)})
	h.expect(id, "app:CallEnded")
}
