package session

import (
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/callcore/sdp"
)

// holdCall serves HoldCall: a re-INVITE with our last SDP turned sendonly,
// and HoldMedia; CallEstablished (its answer) makes the call on_hold.
func (s *Hub) holdCall(st *step) error {
	c := st.c
	switch {
	case c.state != callcore.StateActive:
		return invalidState(c, "only an active call can be held")
	case c.pending != opNone:
		return invalidState(c, "a hold or resume is already in progress")
	}
	offer, err := reoffer(c.localSDP, sdp.SendOnly)
	if err != nil {
		return &callcore.Error{Code: callcore.CodeInternal, Message: "call " + c.id + ": hold offer", Err: err}
	}
	c.prevDir, c.localSDP, c.pending = sdpDirection(c.localSDP), offer, opHold
	st.emit(&events.HoldSession{SessionRef: ref(c.id), SDPOffer: offer})
	st.emit(&events.HoldMedia{SessionRef: ref(c.id)})
	return nil
}

// resumeCall serves ResumeCall: a re-INVITE with our SDP sendrecv again,
// and ResumeMedia; CallEstablished makes the call active.
func (s *Hub) resumeCall(st *step) error {
	c := st.c
	switch {
	case c.state != callcore.StateOnHold:
		return invalidState(c, "only a held call can be resumed")
	case !c.localHold:
		return invalidState(c, "the far end holds it; only the far end can resume it")
	case c.pending != opNone:
		return invalidState(c, "a hold or resume is already in progress")
	}
	offer, err := reoffer(c.localSDP, sdp.SendRecv)
	if err != nil {
		return &callcore.Error{Code: callcore.CodeInternal, Message: "call " + c.id + ": resume offer", Err: err}
	}
	c.prevDir, c.localSDP, c.pending = sdpDirection(c.localSDP), offer, opResume
	st.emit(&events.ResumeSession{SessionRef: ref(c.id), SDPOffer: offer})
	st.emit(&events.ResumeMedia{SessionRef: ref(c.id)})
	return nil
}

// reinviteAnswered completes our hold or resume.
func (s *Hub) reinviteAnswered(st *step, answer string) {
	c := st.c
	if strings.TrimSpace(answer) != "" {
		c.remoteSDP = answer
	}
	op := c.pending
	c.pending = opNone
	switch op {
	case opHold:
		c.localHold = true
		c.state = c.settled()
		st.emit(&events.CallHeld{SessionRef: ref(c.id), By: events.ByLocal})
	case opResume:
		c.localHold = false
		c.state = c.settled()
		st.emit(&events.CallResumed{SessionRef: ref(c.id), By: events.ByLocal})
	}
}

// reinviteFailed undoes our hold or resume: the SDP in force is the old
// one (its direction restored; the o= version stays bumped, as RFC 3264
// §8 wants every new offer to increase it) and media goes back.
func (s *Hub) reinviteFailed(st *step, e *events.DialogError) {
	c := st.c
	op := c.pending
	c.pending = opNone
	if prev, err := sdp.SetDirection(c.localSDP, c.prevDir); err == nil {
		c.localSDP = prev
	}
	s.log.Info("re-INVITE refused", "session_id", c.id, "error", e.Error, "error_code", e.ErrorCode)
	if op == opHold {
		st.emit(&events.ResumeMedia{SessionRef: ref(c.id)})
	} else {
		st.emit(&events.HoldMedia{SessionRef: ref(c.id)})
	}
}

// onReinviteReceived answers the far end's re-INVITE with our SDP, its
// direction mirrored from the offer (sendonly → recvonly, inactive →
// inactive) and limited by our own hold; a sendonly or inactive offer
// holds the call, a sendrecv one resumes it.
func (s *Hub) onReinviteReceived(st *step, e *events.ReinviteReceived) {
	c := st.c
	reject := func(code int) {
		st.emit(&events.RejectCall{SessionRef: ref(c.id), StatusCode: code, Reason: callcore.ReasonPhrase(code)})
	}
	switch {
	case c.pending != opNone:
		reject(491)
		return
	case c.state != callcore.StateActive && c.state != callcore.StateOnHold && c.state != callcore.StateTransferring:
		s.log.Info("re-INVITE refused", "session_id", c.id, "state", c.state)
		reject(488)
		return
	}
	if strings.TrimSpace(e.SDP) == "" {
		// No offer: ours goes in the 200, the far end's answer in the ACK.
		st.emit(&events.AcceptCall{SessionRef: ref(c.id), SDPAnswer: c.localSDP})
		return
	}
	if !hasMedia(e.SDP) {
		reject(488)
		return
	}
	remote := sdpDirection(e.SDP)
	want := sdp.SendRecv
	if c.localHold {
		want = sdp.SendOnly
	}
	answer, err := reoffer(c.localSDP, want.Intersect(remote.Mirror()))
	if err != nil {
		s.log.Warn("re-INVITE not answerable", "session_id", c.id, "error", err)
		reject(500)
		return
	}
	c.localSDP, c.remoteSDP = answer, e.SDP
	st.emit(&events.UpdateMediaStream{SessionRef: ref(c.id), LocalSDP: answer, RemoteSDP: e.SDP})
	st.emit(&events.AcceptCall{SessionRef: ref(c.id), SDPAnswer: answer})
	held := remote == sdp.SendOnly || remote == sdp.Inactive
	if held == c.remoteHold {
		return
	}
	c.remoteHold = held
	if c.state != callcore.StateTransferring {
		c.state = c.settled()
	}
	if held {
		st.emit(&events.CallHeld{SessionRef: ref(c.id), By: events.ByRemote})
	} else {
		st.emit(&events.CallResumed{SessionRef: ref(c.id), By: events.ByRemote})
	}
}
