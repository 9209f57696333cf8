package dialog

import (
	"fmt"
	"strings"

	"github.com/callbus/callbus/callcore/events"
)

// This file is DTMF over SIP INFO (application/dtmf-relay) both ways.

// onInfo handles an INFO: DTMF bodies are reported, any other INFO is
// accepted and ignored.
func (d *dialog) onInfo(o *out, m *events.SipMessageReceived) {
	var tone byte
	var err error
	switch mediaType(m.Headers.Get("Content-Type")) {
	case "application/dtmf-relay":
		tone, err = parseDtmfRelay(m.Body)
	case "application/dtmf":
		tone, err = parseDtmfSignal(strings.TrimSpace(m.Body))
	default:
		o.send(d.response(m.TransactionID, 200, nil, ""))
		return
	}
	if err != nil {
		d.logf("INFO with a bad DTMF body", "error", err)
		o.send(d.response(m.TransactionID, 400, nil, ""))
		return
	}
	o.send(d.response(m.TransactionID, 200, nil, ""))
	o.send(&events.DtmfReceived{SessionRef: d.ref(), Tones: string(tone)})
}

// sendDtmf queues the session's tones, sent one INFO per tone, each after
// the previous one's final response so that they arrive in order.
func (h *Hub) sendDtmf(o *out, e *events.SendDtmf) {
	d := h.lockSession(e.SessionID)
	if d == nil {
		o.send(&events.DialogError{SessionRef: events.SessionRef{SessionID: e.SessionID},
			Error: "SendDtmf: no dialog for the session", ErrorCode: 481})
		return
	}
	defer d.mu.Unlock()
	if d.phase != phaseConfirmed {
		d.dialogError(o, 0, "SendDtmf: the call is not established")
		return
	}
	tones, err := normalizeTones(e.Tones)
	if err != nil {
		d.dialogError(o, 0, "SendDtmf: %v", err)
		return
	}
	d.dtmfQueue = append(d.dtmfQueue, tones...)
	if d.dtmfTx == "" {
		d.nextDtmf(o)
	}
}

// nextDtmf sends the next queued tone, if any.
func (d *dialog) nextDtmf(o *out) {
	if len(d.dtmfQueue) == 0 || d.phase != phaseConfirmed {
		d.dtmfTx, d.dtmfQueue = "", nil
		return
	}
	t := d.dtmfQueue[0]
	d.dtmfQueue = d.dtmfQueue[1:]
	body := fmt.Sprintf("Signal=%c\r\nDuration=%d\r\n", t, d.h.cfg.DtmfDuration)
	req, cseq := d.request("INFO", false, events.Headers{{Name: "Content-Type", Value: "application/dtmf-relay"}}, body)
	d.dtmfTx = d.startTx(o, req, txInfo, cseq)
}

// onInfoResponse goes on with the next tone, or reports the failure and
// drops the rest.
func (d *dialog) onInfoResponse(o *out, r *events.SipResponseReceived) {
	if r.TransactionID != d.dtmfTx || r.StatusCode < 200 {
		return
	}
	d.dtmfTx = ""
	if r.StatusCode >= 300 {
		d.dtmfQueue = nil
		d.dialogError(o, r.StatusCode, "INFO DTMF: %d %s", r.StatusCode, r.ReasonPhrase)
		return
	}
	d.nextDtmf(o)
}

// normalizeTones checks a tone string: 0-9, *, #, A-D (a-d taken as
// upper case). Spaces are skipped.
func normalizeTones(s string) ([]byte, error) {
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
		case '0' <= c && c <= '9', c == '*', c == '#', 'A' <= c && c <= 'D':
			out = append(out, c)
		case 'a' <= c && c <= 'd':
			out = append(out, c-'a'+'A')
		default:
			return nil, fmt.Errorf("%w: %q in %q", errBadDtmf, c, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no tones", errBadDtmf)
	}
	return out, nil
}
