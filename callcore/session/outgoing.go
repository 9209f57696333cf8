package session

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// makeCall serves MakeCall: validate, create the session under the id the
// caller chose, and ask media for an offer.
func (s *Hub) makeCall(ctx context.Context, env events.Envelope, e *events.CmdMakeCall) (*events.CommandResult, error) {
	to := strings.TrimSpace(e.To)
	if !validSIPURI(to) {
		return nil, &callcore.Error{Code: callcore.CodeValidationFailed, Field: "to",
			Message: fmt.Sprintf("to %q is not a sip: or sips: URI", e.To)}
	}
	from := strings.TrimSpace(e.From)
	if from == "" {
		from = s.cfg.From
	} else if !validSIPURI(from) {
		return nil, &callcore.Error{Code: callcore.CodeValidationFailed, Field: "from",
			Message: fmt.Sprintf("from %q is not a sip: or sips: URI", e.From)}
	}
	if e.RingTimeoutS < 0 {
		return nil, &callcore.Error{Code: callcore.CodeValidationFailed, Field: "ring_timeout_s",
			Message: fmt.Sprintf("ring_timeout_s %d: want 0 (the default) or more", e.RingTimeoutS)}
	}
	if err := validHeaders(e.Headers); err != nil {
		return nil, err
	}
	ring := s.cfg.RingTimeout
	if e.RingTimeoutS > 0 {
		ring = time.Duration(e.RingTimeoutS) * time.Second
	}
	c := &call{
		id: e.SessionID, dir: callcore.Outbound, from: from, to: to,
		state: callcore.StateInitiating, createdAt: s.now(), clientState: e.ClientState,
		webhookURL: e.WebhookURL, headers: e.Headers, ringTimeout: ring,
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch taken, full := s.admit(c); {
	case taken:
		return nil, &callcore.Error{Code: callcore.CodeValidationFailed, Field: "session_id",
			Message: fmt.Sprintf("session id %q is already in use", e.SessionID)}
	case full:
		return nil, &callcore.Error{Code: callcore.CodeUnavailable,
			Message: fmt.Sprintf("too many calls: %d are live (max_calls)", s.cfg.MaxCalls)}
	}
	st := s.begin(c, env.ID)
	s.originate(st)
	if err := st.flush(ctx); err != nil {
		return nil, &callcore.Error{Code: callcore.CodeUnavailable,
			Message: fmt.Sprintf("call %s: created but not published", c.id), Err: err}
	}
	return &events.CommandResult{ID: c.id, State: string(c.state)}, nil
}

// originate starts an outgoing call that is admitted: CallCreated, then
// StartMediaStream without a remote SDP (media makes the offer).
//
// The session picks the Call-ID of an outgoing call and hands it to the
// dialog in InitiateCall's headers, so that the call resource names its
// SIP dialog from the start.
func (s *Hub) originate(st *step) {
	c := st.c
	c.sipCallID = callcore.NewID("") + "@" + s.cfg.Node
	st.emit(&events.CallCreated{SessionRef: ref(c.id), Direction: string(c.dir),
		From: c.from, To: c.to, ClientState: c.clientState, SipCallID: c.sipCallID})
	c.mediaRequested = true
	st.emit(&events.StartMediaStream{SessionRef: ref(c.id), MediaConfig: s.mediaConfig()})
}

// onMediaStreamStarted sends the SDP media made: the answer of an inbound
// call (AcceptCall) or the offer of an outgoing one (InitiateCall).
func (s *Hub) onMediaStreamStarted(st *step, e *events.MediaStreamStarted) {
	c := st.c
	c.mediaUp = true
	c.codec, c.localSDP = e.Codec, e.LocalSDP
	switch {
	case !c.live():
		// Hung up while media was starting: StopMediaStream is on its way.
	case c.dir == callcore.Inbound && c.answering && !c.accepted:
		c.accepted = true
		st.emit(&events.AcceptCall{SessionRef: ref(c.id), SDPAnswer: c.localSDP})
	case c.dir == callcore.Outbound && !c.inviteSent:
		c.inviteSent = true
		hs := append(events.Headers{{Name: "Call-ID", Value: c.sipCallID}}, c.headers...)
		st.emit(&events.InitiateCall{SessionRef: ref(c.id), From: c.from, To: c.to,
			SDPOffer: c.localSDP, Headers: hs})
		st.arm(&c.ringTimer, c.ringTimeout, s.outgoingTimedOut)
	default:
		s.log.Warn("MediaStreamStarted ignored", "session_id", c.id, "state", c.state)
	}
}

// outgoingTimedOut gives up an outgoing call nobody answered.
func (s *Hub) outgoingTimedOut(st *step) {
	c := st.c
	if !c.live() || !c.answeredAt.IsZero() {
		return
	}
	s.log.Info("outgoing call not answered in time", "session_id", c.id, "ring_timeout", c.ringTimeout)
	st.emit(&events.TerminateSession{SessionRef: ref(c.id), Reason: callcore.EndNoAnswer})
	s.teardown(st, callcore.EndNoAnswer)
}

// onCallStateChanged reports ringing (once) and logs the REFER progress.
func (s *Hub) onCallStateChanged(st *step, e *events.CallStateChanged) {
	c := st.c
	switch callcore.CallState(e.NewState) {
	case callcore.StateRinging:
		if !c.live() || !c.answeredAt.IsZero() {
			return
		}
		if c.state == callcore.StateInitiating {
			c.state = callcore.StateRinging
		}
		if !c.ringingSeen {
			c.ringingSeen = true
			st.emit(&events.CallRinging{SessionRef: ref(c.id)})
			if c.transferOf != "" {
				st.emit(&events.TransferProgress{SessionRef: ref(c.transferOf), StatusCode: 180, Reason: callcore.ReasonPhrase(180)})
			}
		}
	case callcore.StateTransferring:
		s.log.Debug("transfer progress", "session_id", c.id, "sipfrag", e.Reason)
	default:
		s.log.Debug("dialog state change ignored", "session_id", c.id, "new_state", e.NewState, "reason", e.Reason)
	}
}

// onCallEstablished completes what a 2xx and its ACK complete: the answer
// of the call, or of our hold/resume re-INVITE.
func (s *Hub) onCallEstablished(st *step, e *events.CallEstablished) {
	c := st.c
	switch {
	case !c.live():
		// A 2xx that crossed our hang-up: the dialog ends it.
	case c.answeredAt.IsZero() && c.dir == callcore.Inbound && c.accepted:
		s.answered(st)
	case c.answeredAt.IsZero() && c.dir == callcore.Outbound && c.inviteSent:
		if strings.TrimSpace(e.SDPAnswer) == "" {
			c.endMessage = "the 2xx carried no SDP answer"
			st.emit(&events.TerminateSession{SessionRef: ref(c.id), Reason: callcore.EndFailed})
			s.teardown(st, callcore.EndFailed)
			return
		}
		c.remoteSDP = e.SDPAnswer
		if codec := codecOf(e.SDPAnswer); codec != "" {
			c.codec = codec
		}
		st.emit(&events.UpdateMediaStream{SessionRef: ref(c.id), LocalSDP: c.localSDP, RemoteSDP: c.remoteSDP})
		s.answered(st)
	case c.pending != opNone:
		s.reinviteAnswered(st, e.SDPAnswer)
	default:
		s.log.Debug("CallEstablished ignored", "session_id", c.id, "state", c.state)
	}
}

// answered makes the call active.
func (s *Hub) answered(st *step) {
	c := st.c
	st.disarm(&c.ringTimer)
	c.answeredAt = s.now()
	c.state = c.settled()
	st.emit(&events.CallAnswered{SessionRef: ref(c.id), Codec: c.codec})
	if c.transferOf != "" && !c.progressed {
		c.progressed = true
		st.emit(&events.TransferProgress{SessionRef: ref(c.transferOf), StatusCode: 200, Reason: callcore.ReasonPhrase(200)})
	}
}

func (s *Hub) now() time.Time { return time.Now().UTC() }
