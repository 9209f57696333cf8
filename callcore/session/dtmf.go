package session

import (
	"fmt"
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// DTMF limits of SendDtmf.
const (
	maxDtmfDigits     = 64
	minDtmfDurationMS = 40
	maxDtmfDurationMS = 5000
)

// sendDtmf serves SendDtmf: SIP INFO through dialog, or RFC 4733 events
// (the default) through media.
func (s *Hub) sendDtmf(st *step, e *events.CmdSendDtmf) error {
	c := st.c
	digits, err := normalizeDigits(e.Digits)
	if err != nil {
		return err
	}
	method := e.Method
	if method == "" {
		// RFC 4733 by default, SIP INFO when the far end's SDP did not
		// take telephone-event: the digits still reach it.
		method = events.DtmfMethodRFC4733
		if !telephoneEvent(c) {
			method = events.DtmfMethodInfo
		}
	}
	if method != events.DtmfMethodRFC4733 && method != events.DtmfMethodInfo {
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "method",
			Message: fmt.Sprintf("method %q: want rfc4733 or info", e.Method)}
	}
	dur := e.DurationMS
	if dur == 0 {
		dur = DefaultDtmfDurationMS
	}
	if dur < minDtmfDurationMS || dur > maxDtmfDurationMS {
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "duration_ms",
			Message: fmt.Sprintf("duration_ms %d: want %d to %d", e.DurationMS, minDtmfDurationMS, maxDtmfDurationMS)}
	}
	if c.state != callcore.StateActive {
		return invalidState(c, "DTMF is sent on an active call")
	}
	if method == events.DtmfMethodRFC4733 && !telephoneEvent(c) {
		return invalidState(c, "the far end did not negotiate telephone-event (RFC 4733); send with method info")
	}
	if method == events.DtmfMethodInfo {
		st.emit(&events.SendDtmf{SessionRef: ref(c.id), Tones: digits})
	} else {
		st.emit(&events.MediaSendDtmf{SessionRef: ref(c.id), Tones: digits, DurationMS: dur})
	}
	return nil
}

// normalizeDigits checks DTMF digits (0-9 * # A-D, letters in either case)
// and returns them with the letters upper-cased.
func normalizeDigits(d string) (string, error) {
	bad := func(msg string) error {
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "digits", Message: msg}
	}
	if d == "" {
		return "", bad("digits is required")
	}
	if len(d) > maxDtmfDigits {
		return "", bad(fmt.Sprintf("digits: at most %d, got %d", maxDtmfDigits, len(d)))
	}
	up := strings.ToUpper(d)
	for i := 0; i < len(up); i++ {
		if !isDtmfDigit(up[i]) {
			return "", bad(fmt.Sprintf("digits %q: %q is not a DTMF digit (0-9 * # A-D)", d, d[i]))
		}
	}
	return up, nil
}

func isDtmfDigit(b byte) bool {
	return b >= '0' && b <= '9' || b == '*' || b == '#' || b >= 'A' && b <= 'D'
}

// onDtmfReceived reports DTMF received as SIP INFO.
func (s *Hub) onDtmfReceived(st *step, e *events.DtmfReceived) {
	s.reportDtmf(st, e.Tones, events.DtmfMethodInfo)
}

// onDtmfDetected reports a DTMF digit received as RFC 4733 events.
func (s *Hub) onDtmfDetected(st *step, e *events.DtmfDetected) {
	s.reportDtmf(st, e.Digit, events.DtmfMethodRFC4733)
}

func (s *Hub) reportDtmf(st *step, digits, method string) {
	c := st.c
	if !c.live() || digits == "" {
		s.log.Debug("DTMF ignored", "session_id", c.id, "state", c.state, "digits", digits)
		return
	}
	st.emit(&events.CallDtmfReceived{SessionRef: ref(c.id), Digits: digits, Method: method})
}

// telephoneEvent reports whether both SDPs of the call list
// telephone-event, i.e. whether RFC 4733 digits can be sent.
func telephoneEvent(c *call) bool {
	has := func(sdp string) bool { return strings.Contains(strings.ToLower(sdp), "telephone-event/8000") }
	return has(c.localSDP) && has(c.remoteSDP)
}
