package dialog

import (
	"fmt"
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// This file is call transfer (RFC 3515, RFC 5589): REFER we send, blind or
// attended with Replaces (RFC 3891), and the NOTIFYs that report on it;
// REFER we receive, and the NOTIFYs with which we report on it.

// referOut is our REFER and its implicit subscription.
type referOut struct {
	tx   string
	cseq uint32
}

// referIn is the far end's REFER that we report on with NOTIFY.
type referIn struct {
	cseq uint32
}

// referExpires is the subscription lifetime we announce in our NOTIFYs.
const referExpires = 60

// transferCall sends a REFER. For an attended transfer, Refer-To carries
// ?Replaces= naming the dialog of our other session, from its far end's
// point of view (RFC 3891 §3: to-tag is that party's tag, from-tag ours).
func (h *Hub) transferCall(o *out, e *events.TransferCall) {
	// Read the other dialog before locking this one: holding two dialog
	// locks could deadlock against a transfer the other way round.
	var replaces, otherTarget string
	if e.TransferType == events.TransferAttended && e.ReplacesSessionID != "" {
		if other := h.lockSession(e.ReplacesSessionID); other != nil {
			if other.phase == phaseConfirmed && other.remoteTag != "" {
				replaces = replacesValue{callID: other.callID, toTag: other.remoteTag, fromTag: other.localTag}.String()
				otherTarget = other.remoteTarget
			}
			other.mu.Unlock()
		}
	}
	d := h.lockSession(e.SessionID)
	if d == nil {
		o.send(&events.DialogError{SessionRef: events.SessionRef{SessionID: e.SessionID},
			Error: "transfer: no dialog for the session", ErrorCode: 481})
		return
	}
	defer d.mu.Unlock()
	if d.phase != phaseConfirmed {
		d.dialogError(o, 0, "transfer: the call is not established")
		return
	}
	if d.referOut != nil {
		d.dialogError(o, 491, "transfer: another transfer is in progress")
		return
	}
	var referTo string
	switch e.TransferType {
	case events.TransferBlind, "":
		a, err := targetAddress(e.Target)
		if err != nil {
			d.dialogError(o, 400, "transfer: bad target: %v", err)
			return
		}
		referTo = a.uri
	case events.TransferAttended:
		if replaces == "" {
			d.dialogError(o, 481, "transfer: session %q has no established dialog to replace", e.ReplacesSessionID)
			return
		}
		target := e.Target
		if strings.TrimSpace(target) == "" {
			target = otherTarget
		}
		a, err := targetAddress(target)
		if err != nil {
			d.dialogError(o, 400, "transfer: bad target: %v", err)
			return
		}
		base, _ := splitURIHeaders(a.uri)
		referTo = base + "?Replaces=" + escapeHeaderValue(replaces)
	default:
		d.dialogError(o, 400, "transfer: unknown transfer type %q", e.TransferType)
		return
	}
	req, cseq := d.request("REFER", true, events.Headers{
		{Name: "Refer-To", Value: "<" + referTo + ">"},
		{Name: "Referred-By", Value: "<" + d.localURI + ">"},
	}, "")
	tx := d.startTx(o, req, txRefer, cseq)
	d.referOut = &referOut{tx: tx, cseq: cseq}
}

// onReferResponse: 202 means the far end is trying; a refusal is a
// DialogError and the call stays up.
func (d *dialog) onReferResponse(o *out, r *events.SipResponseReceived, ct *clientTx) {
	ro := d.referOut
	if ro == nil || ro.cseq != ct.cseq || r.StatusCode < 200 {
		return
	}
	if r.StatusCode < 300 {
		o.send(&events.CallStateChanged{SessionRef: d.ref(), NewState: string(callcore.StateTransferring)})
		return
	}
	d.referOut = nil
	d.dialogError(o, r.StatusCode, "transfer refused: %d %s", r.StatusCode, r.ReasonPhrase)
}

// onNotify handles a NOTIFY of the subscription our REFER created: each
// sipfrag is reported; a final 2xx ends our call with BYE (the far end is
// now talking to the target), a final failure leaves it up.
func (d *dialog) onNotify(o *out, m *events.SipMessageReceived) {
	pkg, _, _ := strings.Cut(m.Headers.Get("Event"), ";")
	if !strings.EqualFold(strings.TrimSpace(pkg), "refer") {
		o.send(d.response(m.TransactionID, 489, events.Headers{{Name: "Allow-Events", Value: "refer"}}, ""))
		return
	}
	if d.referOut == nil {
		o.send(d.response(m.TransactionID, 481, nil, ""))
		return
	}
	frag, err := parseSipfrag(m.Body)
	if err != nil {
		o.send(d.response(m.TransactionID, 400, nil, ""))
		return
	}
	o.send(d.response(m.TransactionID, 200, nil, ""))
	state, _, _ := strings.Cut(m.Headers.Get("Subscription-State"), ";")
	o.send(&events.CallStateChanged{SessionRef: d.ref(), NewState: string(callcore.StateTransferring), Reason: frag.line})
	switch {
	case frag.code >= 300:
		d.referOut = nil
		d.dialogError(o, frag.code, "transfer failed: %s", frag.line)
	case frag.code >= 200:
		d.referOut = nil
		if d.phase == phaseConfirmed {
			d.sendBye(o, callcore.EndTransferred)
		}
	case strings.EqualFold(strings.TrimSpace(state), "terminated"):
		d.referOut = nil
		d.dialogError(o, 0, "transfer: subscription ended before a final status (%s)", frag.line)
	}
}

// onRefer handles a REFER from the far end: 202, a first NOTIFY (100
// Trying), and TransferRequested for the session, which reports the new
// call's progress with TransferProgress.
func (d *dialog) onRefer(o *out, m *events.SipMessageReceived) {
	if d.phase != phaseConfirmed {
		o.send(d.response(m.TransactionID, 403, nil, ""))
		return
	}
	refs := m.Headers.Values("Refer-To")
	if len(refs) != 1 {
		o.send(d.response(m.TransactionID, 400, nil, ""))
		return
	}
	target, replaces, err := parseReferTo(refs[0])
	if err != nil {
		d.logf("REFER with a bad Refer-To", "refer_to", refs[0], "error", err)
		o.send(d.response(m.TransactionID, 400, nil, ""))
		return
	}
	if d.referIn != nil {
		o.send(d.response(m.TransactionID, 491, nil, ""))
		return
	}
	d.refreshTarget(m.Headers)
	o.send(d.response(m.TransactionID, 202, events.Headers{{Name: "Contact", Value: d.h.contact}}, ""))
	cseq, _, _ := parseCSeq(m.Headers.Get("CSeq"))
	d.referIn = &referIn{cseq: cseq}
	d.sendNotify(o, 100, callcore.ReasonPhrase(100))
	o.send(&events.TransferRequested{SessionRef: d.ref(), ReferTo: target, Replaces: replaces})
}

// transferProgress reports the session's progress on a REFER we accepted.
func (h *Hub) transferProgress(o *out, e *events.TransferProgress) {
	d := h.lockSession(e.SessionID)
	if d == nil {
		h.log.Debug("TransferProgress for no dialog", "session_id", e.SessionID)
		return
	}
	defer d.mu.Unlock()
	if d.referIn == nil || d.phase != phaseConfirmed {
		d.logf("TransferProgress with no REFER to report on", "status", e.StatusCode)
		return
	}
	if e.StatusCode < 100 || e.StatusCode > 699 {
		d.dialogError(o, 0, "TransferProgress: status %d is not a SIP status", e.StatusCode)
		return
	}
	reason := sanitizePhrase(strings.TrimSpace(e.Reason))
	if reason == "" {
		reason = callcore.ReasonPhrase(e.StatusCode)
	}
	d.sendNotify(o, e.StatusCode, reason)
}

// sendNotify sends a NOTIFY of the refer subscription with a sipfrag of
// code and reason; a final status terminates the subscription.
func (d *dialog) sendNotify(o *out, code int, reason string) {
	state := fmt.Sprintf("active;expires=%d", referExpires)
	if code >= 200 {
		state = "terminated;reason=noresource"
		d.referIn = nil
	}
	req, cseq := d.request("NOTIFY", true, events.Headers{
		{Name: "Event", Value: "refer"},
		{Name: "Subscription-State", Value: state},
		{Name: "Content-Type", Value: "message/sipfrag;version=2.0"},
	}, fmt.Sprintf("SIP/2.0 %d %s\r\n", code, reason))
	d.startTx(o, req, txNotify, cseq)
}
