package session

import (
	"context"
	"fmt"
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// onIncomingCall creates the session of a new incoming INVITE, or rejects
// it with 503 past MaxCalls (no session is kept then).
func (s *Hub) onIncomingCall(ctx context.Context, env events.Envelope, e *events.IncomingCall) error {
	c := &call{
		id: e.SessionID, dir: callcore.Inbound, from: e.From, to: e.To,
		state: callcore.StateRinging, createdAt: s.now(), sipCallID: e.CallID,
		offer: e.SDPOffer, remoteSDP: e.SDPOffer, headers: e.Headers,
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	taken, full := s.admit(c)
	switch {
	case taken:
		s.log.Warn("IncomingCall for an existing session ignored", "session_id", e.SessionID, "event_id", env.ID)
		return nil
	case full:
		s.log.Info("incoming call refused: max calls", "session_id", e.SessionID, "max_calls", s.cfg.MaxCalls)
		return s.bus.Publish(ctx, &events.RejectCall{SessionRef: ref(e.SessionID),
			StatusCode: 503, Reason: callcore.ReasonPhrase(503)})
	}
	st := s.begin(c, env.ID)
	st.emit(&events.CallCreated{SessionRef: ref(c.id), Direction: string(c.dir),
		From: c.from, To: c.to, SipCallID: c.sipCallID})
	if n := uriUser(e.To); s.cfg.Inbound == PolicyAnswer || n == NumberEcho || n == NumberTone {
		s.startAnswer(st)
	} else {
		st.arm(&c.ringTimer, s.cfg.RingTimeout, s.ringTimedOut)
	}
	return st.flush(ctx)
}

// startAnswer asks media for the answer to the INVITE's offer; AcceptCall
// follows on MediaStreamStarted.
func (s *Hub) startAnswer(st *step) {
	c := st.c
	st.disarm(&c.ringTimer)
	c.answering, c.mediaRequested = true, true
	mc := s.mediaConfig()
	switch uriUser(c.to) {
	case NumberEcho:
		mc.Builtin = events.BuiltinEcho
	case NumberTone:
		mc.Builtin = events.BuiltinTone
	}
	st.emit(&events.StartMediaStream{SessionRef: ref(c.id), RemoteSDP: c.offer, MediaConfig: mc})
}

// ringTimedOut rejects an inbound call nobody answered with 480.
func (s *Hub) ringTimedOut(st *step) {
	c := st.c
	if c.state != callcore.StateRinging || c.answering {
		return
	}
	s.log.Info("inbound call not answered in time", "session_id", c.id, "ring_timeout", s.cfg.RingTimeout)
	s.rejectInvite(st, 480, "")
	s.teardown(st, callcore.EndNoAnswer)
}

// rejectInvite answers the INVITE of a ringing inbound call with status.
func (s *Hub) rejectInvite(st *step, status int, reason string) {
	c := st.c
	if reason == "" {
		reason = callcore.ReasonPhrase(status)
	}
	st.emit(&events.RejectCall{SessionRef: ref(c.id), StatusCode: status, Reason: reason})
	c.dialogDone = true
	c.sipStatus = status
}

// answerCall serves AnswerCall.
func (s *Hub) answerCall(st *step) error {
	c := st.c
	switch {
	case c.dir != callcore.Inbound:
		return invalidState(c, "only an inbound call can be answered")
	case c.state != callcore.StateRinging:
		return invalidState(c, "only a ringing call can be answered")
	case c.answering:
		return invalidState(c, "it is already being answered")
	}
	s.startAnswer(st)
	return nil
}

// rejectCall serves RejectCall: a final status (default 603) to a ringing
// inbound call.
func (s *Hub) rejectCall(st *step, e *events.CmdRejectCall) error {
	c := st.c
	status := e.StatusCode
	if status == 0 {
		status = 603
	}
	if status < 400 || status > 699 {
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "status_code",
			Message: fmt.Sprintf("status_code %d: want a final error status, 400 to 699", e.StatusCode)}
	}
	if strings.ContainsAny(e.Reason, "\r\n") {
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "reason",
			Message: "reason must be one line"}
	}
	switch {
	case c.dir != callcore.Inbound:
		return invalidState(c, "only an inbound call can be rejected; hang it up instead")
	case c.state != callcore.StateRinging || c.accepted:
		return invalidState(c, "only a ringing call can be rejected")
	}
	s.rejectInvite(st, status, e.Reason)
	s.teardown(st, callcore.EndRejected)
	return nil
}

// mediaConfig returns a fresh copy, so that no two events share a slice.
func (s *Hub) mediaConfig() events.MediaConfig {
	return events.MediaConfig{Codecs: append([]string(nil), s.media.Codecs...)}
}

// invalidState returns the invalid_state error of a command refused in the
// call's current state.
func invalidState(c *call, why string) error {
	return &callcore.Error{Code: callcore.CodeInvalidState,
		Message: fmt.Sprintf("call %s is %s: %s", c.id, c.state, why)}
}
