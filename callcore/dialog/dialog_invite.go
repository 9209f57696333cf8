package dialog

import (
	"strings"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// This file is the UAS side of the initial INVITE: a new call from the far
// end, its answer or rejection, the 2xx retransmission until the ACK, and
// CANCEL.

// onInvite handles an INVITE without a To tag: a new incoming call.
func (h *Hub) onInvite(o *out, m *events.SipMessageReceived) {
	hs := m.Headers
	callID := hs.Get("Call-ID")
	cseq, method, err := parseCSeq(hs.Get("CSeq"))
	if err != nil || method != "INVITE" {
		o.respond(m, 400)
		return
	}
	from, err := parseAddress(hs.Get("From"))
	if err != nil {
		o.respond(m, 400)
		return
	}
	to, err := parseAddress(hs.Get("To"))
	if err != nil {
		o.respond(m, 400)
		return
	}
	if old := h.byCallID(callID); old != nil {
		old.mu.Lock()
		retransmission := old.role == roleUAS && old.serverTx == m.TransactionID
		old.mu.Unlock()
		if !retransmission {
			// A second INVITE for a Call-ID we hold, not in its dialog:
			// a loop or a merged request (§8.2.2.2).
			o.respond(m, 482)
		}
		return
	}
	target, err := contactURI(hs)
	if err != nil {
		o.respond(m, 400)
		return
	}
	if ct := mediaType(hs.Get("Content-Type")); ct != "" && ct != "application/sdp" {
		o.respond(m, 415, events.Header{Name: "Accept", Value: "application/sdp"})
		return
	}
	if strings.TrimSpace(m.Body) == "" {
		// Late offer (an INVITE without SDP) is not supported yet.
		o.respond(m, 488)
		return
	}
	localTag := newTag()
	d := &dialog{
		h:            h,
		sessionID:    callcore.NewSessionID(h.node),
		callID:       callID,
		role:         roleUAS,
		phase:        phaseEarly,
		localTag:     localTag,
		remoteTag:    from.tag(),
		localAddr:    withTag(hs.Get("To"), localTag),
		remoteAddr:   strings.TrimSpace(hs.Get("From")),
		localURI:     to.uri,
		remoteTarget: target,
		routes:       recordRoutes(hs),
		remoteSeq:    cseq,
		remoteSeqSet: true,
		serverTx:     m.TransactionID,
		serverCSeq:   cseq,
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if h.add(d) != nil {
		o.respond(m, 482)
		return
	}
	h.trackTx(m.TransactionID, d)
	o.send(h.response(m.TransactionID, callID, 100, nil, ""))
	o.send(&events.IncomingCall{
		SessionRef: d.ref(),
		CallID:     callID,
		From:       hs.Get("From"),
		To:         hs.Get("To"),
		SDPOffer:   m.Body,
		Headers:    hs,
	})
	o.send(d.response(m.TransactionID, 180, d.uasHeaders(), ""))
	o.send(&events.CallStateChanged{SessionRef: d.ref(), NewState: string(callcore.StateRinging)})
}

// uasHeaders are the headers of our responses that establish or confirm
// the dialog: To with our tag, and Contact (§12.1.1).
func (d *dialog) uasHeaders(extra ...events.Header) events.Headers {
	hs := events.Headers{
		{Name: "To", Value: d.localAddr},
		{Name: "Contact", Value: d.h.contact},
	}
	return append(hs, extra...)
}

// acceptCall answers the pending INVITE — the initial one, or the far
// end's re-INVITE — with 200 and the session's SDP.
func (h *Hub) acceptCall(o *out, e *events.AcceptCall) {
	d := h.lockSession(e.SessionID)
	if d == nil {
		h.log.Debug("AcceptCall for no dialog", "session_id", e.SessionID)
		return
	}
	defer d.mu.Unlock()
	switch {
	case d.role == roleUAS && d.phase == phaseEarly:
		if strings.TrimSpace(e.SDPAnswer) == "" {
			d.dialogError(o, 0, "AcceptCall without an SDP answer")
			return
		}
		d.phase = phaseAccepted
		d.answer(o, d.serverTx, d.serverCSeq, e.SDPAnswer, true)
	case d.reIn != nil:
		in := d.reIn
		d.reIn = nil
		sdp := e.SDPAnswer
		if strings.TrimSpace(sdp) == "" {
			sdp = d.lastLocalSDP
		}
		d.answer(o, in.tx, in.cseq, sdp, false)
	default:
		d.logf("AcceptCall with no INVITE pending", "phase", d.phase)
	}
}

// pendingOK is our 2xx to an INVITE, retransmitted until its ACK (§13.3.1.4).
type pendingOK struct {
	resp     *events.SendSipResponse
	cseq     uint32
	initial  bool // the initial INVITE's (its ACK establishes the call)
	interval time.Duration
	cause    events.ID
	retrans  *timer
	giveUp   *timer
}

// answer sends 200 with sdp to the INVITE of server transaction tx and
// retransmits it until the ACK comes or NoACKTimeout passes.
func (d *dialog) answer(o *out, tx string, cseq uint32, sdp string, initial bool) {
	d.stopOK()
	resp := d.response(tx, 200, d.uasHeaders(
		events.Header{Name: "Allow", Value: allowed},
		events.Header{Name: "Content-Type", Value: "application/sdp"},
	), sdp)
	d.lastLocalSDP = sdp
	p := &pendingOK{resp: resp, cseq: cseq, initial: initial, interval: d.h.cfg.T1, cause: o.cause}
	d.ok = p
	o.send(resp)
	p.retrans = d.h.after(p.interval, p.cause, func(o *out) { d.retransmitOK(o, p) })
	p.giveUp = d.h.after(d.h.cfg.NoACKTimeout, p.cause, func(o *out) { d.noACK(o, p) })
}

// nextInterval doubles a retransmission interval, capped at t2 (§17.2.1).
func nextInterval(cur, t2 time.Duration) time.Duration {
	if cur*2 > t2 {
		return t2
	}
	return cur * 2
}

func (d *dialog) retransmitOK(o *out, p *pendingOK) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ok != p {
		return
	}
	o.send(p.resp)
	p.interval = nextInterval(p.interval, d.h.cfg.T2)
	p.retrans = d.h.after(p.interval, p.cause, func(o *out) { d.retransmitOK(o, p) })
}

// noACK ends a dialog whose 2xx was never acknowledged: the dialog is
// confirmed all the same, so it is ended with a BYE (§13.3.1.4).
func (d *dialog) noACK(o *out, p *pendingOK) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ok != p {
		return
	}
	d.stopOK()
	reason := callcore.EndFailed
	if d.byeAfterAck != "" {
		reason = d.byeAfterAck
	}
	d.h.log.Info("no ACK for our 2xx; ending the call", "session_id", d.sessionID, "call_id", d.callID)
	d.phase = phaseConfirmed
	bye, _ := d.request("BYE", false, nil, "")
	bye.TransactionID = newTxID() // its response finds no dialog and is dropped
	o.send(bye)
	d.terminated(o, reason)
}

// stopOK stops retransmitting our 2xx.
func (d *dialog) stopOK() {
	if d.ok == nil {
		return
	}
	d.ok.retrans.stop()
	d.ok.giveUp.stop()
	d.ok = nil
}

// onAck handles the ACK of our 2xx: the initial INVITE's establishes the
// call, a re-INVITE's just stops the retransmissions.
func (h *Hub) onAck(o *out, m *events.SipMessageReceived) {
	d := h.byCallID(m.Headers.Get("Call-ID"))
	if d == nil {
		return // an ACK is never answered; a stray one is dropped
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	cseq, _, err := parseCSeq(m.Headers.Get("CSeq"))
	if d.phase == phaseEnded || err != nil || tagOf(m.Headers.Get("To")) != d.localTag {
		return
	}
	p := d.ok
	if p == nil || p.cseq != cseq {
		d.logf("ACK matches no 2xx of ours", "cseq", cseq)
		return
	}
	d.stopOK()
	if !p.initial {
		return
	}
	d.confirm(o, m.Body)
}

// confirm makes the dialog of our answered INVITE confirmed: the far end
// has our 2xx. It reports false when the call is to end at once instead
// (a hang-up came while we waited for the ACK).
func (d *dialog) confirm(o *out, ackBody string) bool {
	d.phase = phaseConfirmed
	if reason := d.byeAfterAck; reason != "" {
		d.sendBye(o, reason)
		return false
	}
	o.send(&events.CallEstablished{SessionRef: d.ref(), SDPAnswer: ackBody})
	return true
}

// confirmedByRequest handles a request of the far end, in our dialog and
// newer than our answered INVITE, that arrives before that INVITE's ACK.
// The far end has our 2xx, since it names our tag: the dialog is confirmed
// as if the ACK had come. sipgo serves each datagram on a goroutine of its
// own, so a request sent right after the ACK often overtakes it; refusing
// it (403 for a REFER, 491 for a re-INVITE) would fail the peer for our
// reordering. The late ACK then matches no 2xx and is dropped.
func (d *dialog) confirmedByRequest(o *out, cseq uint32) bool {
	p := d.ok
	if d.phase != phaseAccepted || p == nil || !p.initial || cseq <= p.cseq {
		return true
	}
	d.stopOK()
	return d.confirm(o, "")
}

// rejectCall answers the pending INVITE with the session's final status:
// the initial INVITE (the dialog is then gone; the session knows, so no
// CallTerminated) or the far end's re-INVITE (the dialog stays).
func (h *Hub) rejectCall(o *out, e *events.RejectCall) {
	d := h.lockSession(e.SessionID)
	if d == nil {
		h.log.Debug("RejectCall for no dialog", "session_id", e.SessionID)
		return
	}
	defer d.mu.Unlock()
	code := e.StatusCode
	if code < 300 || code > 699 {
		code = 603
	}
	var resp *events.SendSipResponse
	switch {
	case d.role == roleUAS && d.phase == phaseEarly:
		resp = d.response(d.serverTx, code, events.Headers{{Name: "To", Value: d.localAddr}}, "")
	case d.reIn != nil:
		resp = d.response(d.reIn.tx, code, nil, "")
		d.reIn = nil
	default:
		d.logf("RejectCall with no INVITE pending", "phase", d.phase)
		return
	}
	if !callcore.KnownStatus(code) && e.Reason != "" {
		resp.ReasonPhrase = sanitizePhrase(e.Reason)
	}
	o.send(resp)
	if d.role == roleUAS && d.phase == phaseEarly {
		h.remove(d)
	}
}

// sanitizePhrase keeps a reason phrase on one line.
func sanitizePhrase(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// onCancel handles a CANCEL. The transport (sipgo) already answered it and
// sent 487 for the INVITE when it matched the INVITE's transaction; the
// dialog reports the end of the call.
func (h *Hub) onCancel(o *out, m *events.SipMessageReceived) {
	d := h.byCallID(m.Headers.Get("Call-ID"))
	if d == nil {
		o.respond(m, 481)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	matched := m.TransactionID == d.serverTx
	switch {
	case d.phase == phaseEnded:
		if !matched {
			o.respond(m, 481)
		}
	case d.role == roleUAS && d.phase == phaseEarly:
		if !matched {
			// The transport did not tie the CANCEL to the INVITE, so nobody
			// answered either: do it here (§9.2).
			o.send(d.response(m.TransactionID, 200, nil, ""))
			o.send(d.response(d.serverTx, 487, events.Headers{{Name: "To", Value: d.localAddr}}, ""))
		}
		d.terminated(o, callcore.EndCancelled)
	case d.reIn != nil && m.TransactionID == d.reIn.tx:
		// The far end withdrew its re-INVITE; sipgo answered it with 487.
		d.reIn = nil
		d.dialogError(o, 487, "re-INVITE cancelled by the far end")
	case matched:
		// Too late: the INVITE has its final response; the CANCEL has no
		// effect (§9.2).
	default:
		o.respond(m, 481)
	}
}
