package dialog

import (
	"strings"

	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/callcore/sdp"
)

// This file is re-INVITE both ways (§14): hold and resume from the session,
// and the far end's re-INVITEs, with 491 for glare.

// reinviteOut is our pending re-INVITE.
type reinviteOut struct {
	tx   string
	cseq uint32
	sdp  string
	hold bool
}

// reinviteIn is the far end's re-INVITE, waiting for the session's
// AcceptCall or RejectCall.
type reinviteIn struct {
	tx   string
	cseq uint32
}

// sendReinvite sends a hold (sendonly) or resume (sendrecv) re-INVITE with
// the session's SDP offer. A hold without an offer reuses our last SDP
// with its direction turned to hold.
func (h *Hub) sendReinvite(o *out, sessionID, offer string, hold bool) {
	what := "resume"
	if hold {
		what = "hold"
	}
	d := h.lockSession(sessionID)
	if d == nil {
		o.send(&events.DialogError{SessionRef: events.SessionRef{SessionID: sessionID},
			Error: what + ": no dialog for the session", ErrorCode: 481})
		return
	}
	defer d.mu.Unlock()
	if d.phase != phaseConfirmed {
		d.dialogError(o, 0, "%s: the call is not established", what)
		return
	}
	if d.reOut != nil || d.reIn != nil || d.ok != nil {
		// §14.1: no re-INVITE while another INVITE transaction is in
		// progress in either direction.
		d.dialogError(o, 491, "%s: another INVITE transaction is in progress", what)
		return
	}
	if strings.TrimSpace(offer) == "" && hold {
		offer = holdSDP(d.lastLocalSDP)
	}
	if strings.TrimSpace(offer) == "" {
		d.dialogError(o, 0, "%s: no SDP offer", what)
		return
	}
	req, cseq := d.request("INVITE", true, events.Headers{
		{Name: "Allow", Value: allowed},
		{Name: "Content-Type", Value: "application/sdp"},
	}, offer)
	tx := d.startTx(o, req, txReinvite, cseq)
	d.reOut = &reinviteOut{tx: tx, cseq: cseq, sdp: offer, hold: hold}
}

// onReinviteResponse handles the response to our re-INVITE: a 2xx is
// ACKed and its SDP answer reported as CallEstablished; a failure is a
// DialogError and the call stays as it was.
func (d *dialog) onReinviteResponse(o *out, r *events.SipResponseReceived, ct *clientTx) {
	re := d.reOut
	if re == nil || re.cseq != ct.cseq || r.StatusCode < 200 {
		return
	}
	d.reOut = nil
	if r.StatusCode < 300 {
		d.refreshTarget(r.Headers)
		d.sendAck(o, re.cseq)
		d.lastLocalSDP = re.sdp
		o.send(&events.CallEstablished{SessionRef: d.ref(), SDPAnswer: r.Body})
		return
	}
	what := "resume"
	if re.hold {
		what = "hold"
	}
	d.dialogError(o, r.StatusCode, "%s re-INVITE: %d %s", what, r.StatusCode, r.ReasonPhrase)
}

// onReinvite handles a re-INVITE from the far end.
func (d *dialog) onReinvite(o *out, m *events.SipMessageReceived, cseq uint32) {
	switch {
	case d.phase == phaseTerminating:
		o.send(d.response(m.TransactionID, 481, nil, ""))
		return
	case d.phase != phaseConfirmed, d.reOut != nil, d.ok != nil:
		// Glare: an INVITE of ours is in progress on this dialog (§14.2).
		o.send(d.response(m.TransactionID, 491, nil, ""))
		return
	case d.reIn != nil:
		// Their previous re-INVITE is still unanswered (§14.2).
		o.send(d.response(m.TransactionID, 500, events.Headers{{Name: "Retry-After", Value: "1"}}, ""))
		return
	}
	if ct := mediaType(m.Headers.Get("Content-Type")); ct != "" && ct != "application/sdp" {
		o.send(d.response(m.TransactionID, 415, events.Headers{{Name: "Accept", Value: "application/sdp"}}, ""))
		return
	}
	d.refreshTarget(m.Headers)
	o.send(d.response(m.TransactionID, 100, nil, ""))
	if strings.TrimSpace(m.Body) == "" {
		// A re-INVITE without an offer (a session refresh): our current
		// SDP is the offer, and its answer comes in the ACK.
		if d.lastLocalSDP == "" {
			o.send(d.response(m.TransactionID, 488, nil, ""))
			return
		}
		d.answer(o, m.TransactionID, cseq, d.lastLocalSDP, false)
		return
	}
	d.reIn = &reinviteIn{tx: m.TransactionID, cseq: cseq}
	o.send(&events.ReinviteReceived{SessionRef: d.ref(), SDP: m.Body})
}

// holdSDP turns our last SDP into its hold offer (RFC 6337 §5.3): every
// media direction limited to sendonly (inactive where we were not sending
// anyway), and the o= version one higher (RFC 3264 §8). It returns "" for
// "" and for an SDP without a valid o= line, which cannot be re-offered.
func holdSDP(last string) string {
	if strings.TrimSpace(last) == "" {
		return ""
	}
	held, err := sdp.LimitDirection(last, sdp.SendOnly)
	if err == nil {
		held, err = sdp.BumpVersion(held)
	}
	if err != nil {
		return ""
	}
	return held
}
