package session

import (
	"fmt"
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// hangupCall serves HangupCall, in any live state: reject a ringing inbound
// INVITE with 603, say nothing to dialog when no INVITE was sent yet, else
// TerminateSession; and stop the media.
func (s *Hub) hangupCall(st *step, e *events.CmdHangupCall) error {
	c := st.c
	if strings.ContainsAny(e.Reason, "\r\n") {
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "reason", Message: "reason must be one line"}
	}
	if !c.live() {
		return invalidState(c, "it is already ending")
	}
	c.endMessage = e.Reason
	s.hangUpDialog(st, callcore.EndLocalHangup, 603)
	s.teardown(st, callcore.EndLocalHangup)
	return nil
}

// hangUpDialog ends the dialog side of a live call: a final status to an
// inbound INVITE not yet accepted, nothing when no INVITE was sent, else
// TerminateSession (BYE, or CANCEL while our INVITE is pending).
func (s *Hub) hangUpDialog(st *step, reason callcore.EndReason, rejectStatus int) {
	c := st.c
	switch {
	case c.dialogDone:
	case c.dir == callcore.Inbound && !c.accepted:
		s.rejectInvite(st, rejectStatus, "")
	case c.dir == callcore.Outbound && !c.inviteSent:
		c.dialogDone = true // no dialog exists yet
	default:
		st.emit(&events.TerminateSession{SessionRef: ref(c.id), Reason: reason})
	}
}

// teardown moves a live call to terminating with reason (unless a reason
// was decided before), stops what runs on it and ends it when nothing is
// left to wait for. The dialog side is the caller's business.
func (s *Hub) teardown(st *step, reason callcore.EndReason) {
	c := st.c
	if c.endReason == "" {
		c.endReason = reason
	}
	c.state = callcore.StateTerminating
	c.pending = opNone
	c.transfer = nil
	st.disarmCallTimers()
	s.unbridge(st)
	if c.rec != nil && !c.rec.stopping && c.mediaUp && !c.mediaDone {
		c.rec.stopping = true
		st.emit(&events.StopRecording{SessionRef: ref(c.id)})
	}
	if c.mediaRequested && !c.mediaDone && !c.stopSent {
		c.stopSent = true
		st.emit(&events.StopMediaStream{SessionRef: ref(c.id)})
	}
	if c.teardownTimer == nil {
		st.arm(&c.teardownTimer, s.cfg.TeardownTimeout, s.teardownTimedOut)
	}
	s.maybeEnd(st)
}

// maybeEnd ends a terminating call once the dialog is done and the media
// stopped (or never started).
func (s *Hub) maybeEnd(st *step) {
	c := st.c
	if c.state != callcore.StateTerminating || !c.dialogDone || (c.mediaRequested && !c.mediaDone) {
		return
	}
	s.end(st)
}

// end makes the call terminated and reports it.
func (s *Hub) end(st *step) {
	c := st.c
	st.disarm(&c.teardownTimer)
	st.disarmCallTimers()
	c.state = callcore.StateTerminated
	c.endedAt = s.now()
	st.emit(&events.CallEnded{SessionRef: ref(c.id), Reason: string(c.endReason),
		SipStatus: c.sipStatus, Message: c.endMessage})
	if c.transferOf != "" && !c.progressed {
		c.progressed = true
		code := transferFailure(c)
		st.emit(&events.TransferProgress{SessionRef: ref(c.transferOf), StatusCode: code, Reason: callcore.ReasonPhrase(code)})
	}
	s.retire(c)
	s.log.Info("call ended", "session_id", c.id, "reason", c.endReason, "sip_status", c.sipStatus)
}

// teardownTimedOut ends a call whose dialog or media never confirmed.
func (s *Hub) teardownTimedOut(st *step) {
	c := st.c
	if c.state != callcore.StateTerminating {
		return
	}
	var missing []string
	if !c.dialogDone {
		missing = append(missing, "CallTerminated")
	}
	if c.mediaRequested && !c.mediaDone {
		missing = append(missing, "MediaStreamStopped")
	}
	s.log.Warn("call ended without confirmation", "session_id", c.id, "missing", missing,
		"teardown_timeout", s.cfg.TeardownTimeout)
	if c.endMessage == "" {
		c.endMessage = fmt.Sprintf("teardown timed out waiting for %s", strings.Join(missing, " and "))
	}
	c.dialogDone, c.mediaDone = true, true
	s.end(st)
}

// onCallTerminated: the dialog is over. A far-end hang-up (or a failure,
// a cancel, a completed REFER) tears the call down; a teardown of ours
// ends once media has stopped too.
func (s *Hub) onCallTerminated(st *step, e *events.CallTerminated) {
	c := st.c
	c.dialogDone = true
	reason := endReasonOf(e.Reason)
	if reason == callcore.EndCancelled && c.sipStatus == 0 {
		c.sipStatus = 487 // what ended the INVITE, whichever side cancelled
	}
	switch {
	case c.state == callcore.StateTerminated:
	case c.state == callcore.StateTerminating:
		s.maybeEnd(st)
	default:
		if c.state == callcore.StateTransferring && reason == callcore.EndTransferred && c.transfer != nil {
			st.emit(&events.CallTransferred{SessionRef: ref(c.id), Target: c.transfer.Target,
				TransferType: c.transfer.TransferType})
		}
		s.teardown(st, reason)
	}
}

// onMediaStreamStopped: the media is gone. Unasked (an RTP timeout, a
// media failure), it ends the call.
func (s *Hub) onMediaStreamStopped(st *step, e *events.MediaStreamStopped) {
	c := st.c
	c.mediaDone = true
	switch {
	case c.state == callcore.StateTerminating:
		s.maybeEnd(st)
	case c.live() && c.mediaRequested:
		reason := endReasonOfStop(e.Reason)
		c.endMessage = "media stopped: " + string(e.Reason)
		s.log.Info("media stopped unasked", "session_id", c.id, "reason", e.Reason)
		s.hangUpDialog(st, reason, 500)
		s.teardown(st, reason)
	}
}

// onDialogError: a failed re-INVITE or REFER of ours is undone; an outgoing
// call's final status is kept for CallEnded (CallTerminated follows).
func (s *Hub) onDialogError(st *step, e *events.DialogError) {
	c := st.c
	switch {
	case c.pending != opNone && c.live():
		s.reinviteFailed(st, e)
	case c.state == callcore.StateTransferring:
		s.log.Info("transfer failed", "session_id", c.id, "error", e.Error, "error_code", e.ErrorCode)
		c.transfer = nil
		c.state = c.settled()
	case c.answeredAt.IsZero() || !c.live():
		if e.ErrorCode >= 300 && c.sipStatus == 0 {
			c.sipStatus = e.ErrorCode
		}
		if c.endMessage == "" {
			c.endMessage = e.Error
		}
	default:
		s.log.Warn("dialog error", "session_id", c.id, "state", c.state, "error", e.Error, "error_code", e.ErrorCode)
	}
}

// endReasonOf checks the end reason of a CallTerminated; an unknown one is
// a failure.
func endReasonOf(r callcore.EndReason) callcore.EndReason {
	switch r {
	case callcore.EndLocalHangup, callcore.EndRemoteHangup, callcore.EndRejected, callcore.EndCancelled,
		callcore.EndBusy, callcore.EndNoAnswer, callcore.EndTimeout, callcore.EndFailed, callcore.EndTransferred:
		return r
	}
	return callcore.EndFailed
}

// endReasonOfStop is the one table from the reason of a MediaStreamStopped
// nobody asked for to the end reason of the call: timeout when RTP timed
// out, else failed.
func endReasonOfStop(r events.StreamStopReason) callcore.EndReason {
	switch r {
	case events.StopReasonRTPTimeout:
		return callcore.EndTimeout
	default: // StopReasonStopped, StopReasonNoStream: media is gone, no one knows why
		return callcore.EndFailed
	}
}
