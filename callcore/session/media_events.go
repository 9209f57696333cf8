package session

import (
	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// onMediaQualityUpdate keeps the latest quality estimate on the call.
func (s *Hub) onMediaQualityUpdate(st *step, e *events.MediaQualityUpdate) {
	q := e.QualityMetrics
	st.c.quality = &callcore.CallQuality{MOS: q.MOS, PacketLossPct: q.PacketLossPct, JitterMS: q.JitterMS,
		RttMS: q.RttMS, PacketsSent: q.PacketsSent, PacketsReceived: q.PacketsReceived}
}

// onMediaError: a stream that failed to start fails the call (an inbound
// INVITE is rejected with 488, or 503 for no_port); a stream that can no
// longer carry an answered call hangs it up; a failed playback or
// recording is reported or dropped.
func (s *Hub) onMediaError(st *step, e *events.MediaError) {
	c := st.c
	switch {
	case c.state == callcore.StateTerminated:
		s.log.Debug("media error after the call ended", "session_id", c.id, "error", e.Error)
	case c.mediaRequested && !c.mediaUp:
		c.mediaRequested = false // never started: nothing to stop or wait for
		if c.state == callcore.StateTerminating {
			s.maybeEnd(st)
			return
		}
		s.log.Info("media did not start", "session_id", c.id, "error", e.Error, "error_code", e.ErrorCode)
		s.failCall(st, e)
	case e.ErrorCode == events.MediaErrPlaybackFailed:
		s.finishPlay(st, events.PlaybackReasonFailed)
	case e.ErrorCode == events.MediaErrRecordingFailed:
		s.log.Warn("recording failed", "session_id", c.id, "error", e.Error)
		c.rec = nil
		st.disarm(&c.recTimer)
	case c.live() && unusableMedia(e.ErrorCode):
		s.log.Info("media cannot carry the call", "session_id", c.id, "error", e.Error, "error_code", e.ErrorCode)
		s.failCall(st, e)
	default:
		s.log.Warn("media error", "session_id", c.id, "state", c.state, "error", e.Error, "error_code", e.ErrorCode)
	}
}

// mediaFailureStatus is the one table from a MediaError code to the SIP
// status that refuses the call for it (an inbound INVITE not yet answered
// is rejected with it): 503 when the port pool is exhausted, else 488.
func mediaFailureStatus(code events.MediaErrorCode) int {
	switch code {
	case events.MediaErrNoPort:
		return 503
	default: // MediaErrIncompatibleSDP, and any failure to start
		return 488
	}
}

// unusableMedia reports whether a MediaError about a started stream means
// it can no longer carry the call (e.g. a re-negotiation without a common
// codec), which hangs the call up.
func unusableMedia(code events.MediaErrorCode) bool {
	switch code {
	case events.MediaErrIncompatibleSDP, events.MediaErrNoPort:
		return true
	}
	return false
}

// failCall ends a live call for a media failure, end reason failed.
func (s *Hub) failCall(st *step, e *events.MediaError) {
	status := mediaFailureStatus(e.ErrorCode)
	st.c.endMessage = e.Error
	s.hangUpDialog(st, callcore.EndFailed, status)
	s.teardown(st, callcore.EndFailed)
}
