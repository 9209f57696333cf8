package dialog

import (
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// This file ends dialogs: TerminateSession (CANCEL, BYE or a decline by
// phase), BYE received, and the routing of responses and transport errors
// to the transactions that wait for them.

// terminateSession ends a call the way its phase allows.
func (h *Hub) terminateSession(o *out, e *events.TerminateSession) {
	d := h.lockSession(e.SessionID)
	if d == nil {
		h.log.Debug("TerminateSession for no dialog", "session_id", e.SessionID)
		return
	}
	defer d.mu.Unlock()
	reason := callcore.EndReason(strings.TrimSpace(string(e.Reason)))
	if reason == "" {
		reason = callcore.EndLocalHangup
	}
	switch d.phase {
	case phaseEarly:
		if d.role == roleUAC {
			inv := d.invite
			if inv.cancelPending {
				return
			}
			inv.cancelPending = true
			// No CANCEL before a provisional response (§9.1): it is sent
			// when the first 1xx arrives.
			if inv.provisional {
				d.sendCancel(o)
			}
			return
		}
		// An unanswered incoming call: decline it.
		o.send(d.response(d.serverTx, 603, events.Headers{{Name: "To", Value: d.localAddr}}, ""))
		d.terminated(o, reason)
	case phaseAccepted:
		// BYE must wait for the ACK of our 2xx, or its timeout (§15).
		d.byeAfterAck = reason
	case phaseConfirmed:
		d.sendBye(o, reason)
	}
}

// sendBye ends a confirmed dialog; CallTerminated{reason} follows the BYE's
// final response (or its failure).
func (d *dialog) sendBye(o *out, reason callcore.EndReason) {
	if d.reIn != nil {
		o.send(d.response(d.reIn.tx, 487, nil, ""))
		d.reIn = nil
	}
	d.stopOK()
	d.dtmfQueue = nil
	d.phase = phaseTerminating
	d.byeReason = reason
	req, cseq := d.request("BYE", false, nil, "")
	d.startTx(o, req, txBye, cseq)
}

// onBye handles a BYE from the far end: 200, and the call is over.
func (d *dialog) onBye(o *out, m *events.SipMessageReceived) {
	o.send(d.response(m.TransactionID, 200, nil, ""))
	if d.reIn != nil {
		o.send(d.response(d.reIn.tx, 487, nil, ""))
		d.reIn = nil
	}
	reason := callcore.EndRemoteHangup
	switch {
	case d.phase == phaseTerminating:
		// Our BYE crossed theirs: the call ends for our reason.
		reason = d.byeReason
	case d.role == roleUAS && d.phase == phaseEarly:
		// The caller may end an early dialog with BYE (§15); the INVITE
		// still needs its final response.
		o.send(d.response(d.serverTx, 487, events.Headers{{Name: "To", Value: d.localAddr}}, ""))
		reason = callcore.EndCancelled
	}
	d.terminated(o, reason)
}

// onResponse routes a response to the client transaction it answers.
func (h *Hub) onResponse(o *out, r *events.SipResponseReceived) {
	d := h.byTxID(r.TransactionID)
	if d == nil {
		d = h.byCallID(r.Headers.Get("Call-ID"))
	}
	if d == nil {
		h.log.Debug("response for no dialog", "transaction_id", r.TransactionID, "status", r.StatusCode)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.phase == phaseEnded {
		return
	}
	cseq, method, cerr := parseCSeq(r.Headers.Get("CSeq"))
	if method == "CANCEL" {
		return // the 200 to our CANCEL; the INVITE's 487 is what counts
	}
	ct := d.txs[r.TransactionID]
	if ct == nil {
		if method == "INVITE" && r.StatusCode >= 200 && r.StatusCode < 300 {
			d.reack(o, r, cseq)
		}
		return
	}
	if cerr == nil && cseq != ct.cseq {
		d.logf("response CSeq does not match its transaction", "transaction_id", r.TransactionID, "cseq", cseq)
		return
	}
	if r.StatusCode >= 200 {
		d.endTx(r.TransactionID)
	}
	switch ct.kind {
	case txInvite:
		d.onInviteResponse(o, r)
	case txReinvite:
		d.onReinviteResponse(o, r, ct)
	case txBye:
		if r.StatusCode >= 200 {
			d.terminated(o, d.byeReason)
		}
	case txRefer:
		d.onReferResponse(o, r, ct)
	case txNotify:
		if r.StatusCode == 481 || r.StatusCode == 408 {
			d.referIn = nil // the subscription is gone (RFC 6665 §4.1.2.2)
		}
	case txInfo:
		d.onInfoResponse(o, r)
	}
	if r.StatusCode == 481 && d.phase != phaseEnded && (ct.kind == txReinvite || ct.kind == txRefer || ct.kind == txInfo) {
		// The far end no longer knows the dialog (§12.2.1.2).
		d.terminated(o, callcore.EndFailed)
	}
}

// onTransportError treats the failure of a pending client transaction as
// its timeout, whatever its error_code: for the dialog, a request that got
// no final response has failed the same way.
func (h *Hub) onTransportError(o *out, e *events.TransportError) {
	d := h.byTxID(e.TransactionID)
	if d == nil {
		h.log.Debug("transport error for no dialog", "transaction_id", e.TransactionID,
			"error_code", e.ErrorCode, "error", e.Error)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.phase == phaseEnded {
		return
	}
	if e.TransactionID == d.serverTx {
		// Our response could not be sent: the INVITE's transaction is gone.
		// Retransmitting is useless; the ACK timeout still ends the call.
		h.log.Warn("response to INVITE failed", "session_id", d.sessionID, "error_code", e.ErrorCode, "error", e.Error)
		if d.ok != nil {
			d.ok.retrans.stop()
		}
		return
	}
	ct := d.txs[e.TransactionID]
	if ct == nil {
		return
	}
	d.endTx(e.TransactionID)
	switch ct.kind {
	case txInvite:
		d.invite.final = true
		if d.invite.cancelPending {
			d.terminated(o, callcore.EndCancelled)
			return
		}
		d.dialogError(o, 408, "INVITE: %s", e.Error)
		d.terminated(o, callcore.EndFailed)
	case txReinvite:
		d.reOut = nil
		d.dialogError(o, 408, "re-INVITE: %s", e.Error)
	case txBye:
		d.terminated(o, d.byeReason)
	case txRefer:
		d.referOut = nil
		d.dialogError(o, 408, "REFER: %s", e.Error)
	case txNotify:
		d.referIn = nil
	case txInfo:
		d.dtmfTx, d.dtmfQueue = "", nil
		d.dialogError(o, 408, "INFO DTMF: %s", e.Error)
	}
}
