package dialog

import (
	"strings"

	"github.com/callbus/callbus/callcore/events"
)

// onRequest routes a received SIP request: ACK and CANCEL to their
// transactions' dialogs, requests without a To tag out of dialog, the rest
// to the dialog they name — or 481 when there is none (§12.2.2).
func (h *Hub) onRequest(o *out, m *events.SipMessageReceived) {
	method := strings.ToUpper(strings.TrimSpace(m.Method))
	switch method {
	case "ACK":
		h.onAck(o, m)
		return
	case "CANCEL":
		h.onCancel(o, m)
		return
	}
	if !allowedMethod(method) {
		o.respond(m, 405, events.Header{Name: "Allow", Value: allowed})
		return
	}
	to, err := parseAddress(m.Headers.Get("To"))
	if err != nil || m.Headers.Get("Call-ID") == "" {
		o.respond(m, 400)
		return
	}
	if to.tag() == "" {
		switch method {
		case "INVITE":
			h.onInvite(o, m)
		case "OPTIONS":
			o.respond(m, 200, events.Header{Name: "Allow", Value: allowed},
				events.Header{Name: "Accept", Value: "application/sdp"})
		default:
			// BYE, INFO, REFER and NOTIFY only exist within a dialog.
			o.respond(m, 481)
		}
		return
	}
	d := h.lockDialogOf(m, to.tag())
	if d == nil {
		o.respond(m, 481)
		return
	}
	defer d.mu.Unlock()
	cseq, cmethod, err := parseCSeq(m.Headers.Get("CSeq"))
	if err != nil || cmethod != method {
		o.send(d.response(m.TransactionID, 400, nil, ""))
		return
	}
	if !d.checkRemoteCSeq(cseq) {
		d.logf("out-of-order request", "method", method, "cseq", cseq, "last", d.remoteSeq)
		o.send(d.response(m.TransactionID, 500, nil, ""))
		return
	}
	if method != "BYE" && !d.confirmedByRequest(o, cseq) {
		o.send(d.response(m.TransactionID, 481, nil, "")) // hung up meanwhile: BYE sent
		return
	}
	switch method {
	case "INVITE":
		d.onReinvite(o, m, cseq)
	case "BYE":
		d.onBye(o, m)
	case "INFO":
		d.onInfo(o, m)
	case "REFER":
		d.onRefer(o, m)
	case "NOTIFY":
		d.onNotify(o, m)
	case "OPTIONS":
		o.send(d.response(m.TransactionID, 200, events.Headers{{Name: "Allow", Value: allowed},
			{Name: "Accept", Value: "application/sdp"}}, ""))
	}
}

// lockDialogOf returns, locked, the live dialog that an in-dialog request
// belongs to: same Call-ID, its To tag ours and its From tag theirs.
func (h *Hub) lockDialogOf(m *events.SipMessageReceived, toTag string) *dialog {
	d := h.byCallID(m.Headers.Get("Call-ID"))
	if d == nil {
		return nil
	}
	d.mu.Lock()
	fromTag := tagOf(m.Headers.Get("From"))
	if d.phase == phaseEnded || d.localTag != toTag || (d.remoteTag != "" && d.remoteTag != fromTag) {
		d.mu.Unlock()
		return nil
	}
	return d
}
