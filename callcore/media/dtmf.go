package media

import (
	"context"

	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/events"
)

// DTMF durations of SendDtmf, in milliseconds: the default for 0, and
// the range others are clamped to.
const (
	defaultDTMFMS = 100
	minDTMFMS     = 40
	maxDTMFMS     = 5000
)

// maxQueuedDigits bounds the digits waiting to be sent on one session.
const maxQueuedDigits = 256

// sendDTMF queues RFC 4733 digits for the clock to send.
func (h *Hub) sendDTMF(ctx context.Context, ev *events.MediaSendDtmf) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		h.fail(ctx, ev.SessionID, events.MediaErrNoSession, "SendDtmf: no media stream for the session")
		return
	}
	if err := audio.ValidDigits(ev.Tones); err != nil {
		h.failFor(ctx, s, events.MediaErrInvalidRequest, "SendDtmf %q: %v", ev.Tones, err)
		return
	}
	if err := h.queueDTMF(s, ev.Tones, ev.DurationMS); err != nil {
		h.failWithFor(ctx, s, err)
	}
}

// queueDTMF queues digits (already valid) on s, each lasting durationMS
// (0 the default, others clamped to 40-5000 ms). Its errors are
// *mediaError: dtmf_not_negotiated, invalid_state (the stream is not
// started) and invalid_request (too many digits queued).
func (h *Hub) queueDTMF(s *session, digits string, durationMS int) error {
	switch {
	case durationMS == 0:
		durationMS = defaultDTMFMS
	case durationMS < minDTMFMS:
		durationMS = minDTMFMS
	case durationMS > maxDTMFMS:
		durationMS = maxDTMFMS
	}
	senders := make([]*audio.DTMFSender, 0, len(digits))
	for i := 0; i < len(digits); i++ {
		snd, err := audio.NewDTMFSender(digits[i], durationMS, dtmfPtimeMS)
		if err != nil {
			return errorf(events.MediaErrInvalidRequest, "SendDtmf %q: %v", digits, err)
		}
		senders = append(senders, snd)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.phase != phaseStarted:
		return errorf(events.MediaErrInvalidState, "SendDtmf: the media stream is %s", s.phase)
	case s.dtmfPT < 0:
		return errorf(events.MediaErrDTMFNotNegotiated, "SendDtmf: the far end did not offer telephone-event (RFC 4733); use SIP INFO")
	case len(s.dtmfOut)+len(senders) > maxQueuedDigits:
		return errorf(events.MediaErrInvalidRequest, "SendDtmf: %d digits already wait to be sent (at most %d)",
			len(s.dtmfOut), maxQueuedDigits)
	}
	s.dtmfOut = append(s.dtmfOut, senders...)
	return nil
}
