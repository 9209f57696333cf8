package session

import (
	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// Error codes of MediaError that the session acts on (docs/signalling.md,
// media). Other codes are logged.
const (
	MediaErrIncompatibleSDP = "incompatible_sdp" // no common codec, unparsable SDP
	MediaErrNoPort          = "no_port"          // the RTP port pool is exhausted
	MediaErrPlaybackFailed  = "playback_failed"  // the oldest pending PlayAudio failed
	MediaErrRecordingFailed = "recording_failed" // the recording in progress failed
)

// onMediaQualityUpdate keeps the latest quality estimate on the call.
func (s *Sessions) onMediaQualityUpdate(st *step, e *events.MediaQualityUpdate) {
	q := e.QualityMetrics
	st.c.quality = &callcore.CallQuality{MOS: q.MOS, PacketLossPct: q.PacketLossPct, JitterMS: q.JitterMS,
		RttMS: q.RttMS, PacketsSent: q.PacketsSent, PacketsReceived: q.PacketsReceived}
}

// onMediaError: a stream that failed to start fails the call (an inbound
// INVITE is rejected with 488, or 503 for no_port); a stream that can no
// longer carry an answered call hangs it up; a failed playback or
// recording is reported or dropped.
func (s *Sessions) onMediaError(st *step, e *events.MediaError) {
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
	case e.ErrorCode == MediaErrPlaybackFailed:
		s.finishPlay(st, PlaybackFailed)
	case e.ErrorCode == MediaErrRecordingFailed:
		s.log.Warn("recording failed", "session_id", c.id, "error", e.Error)
		c.rec = nil
		st.disarm(&c.recTimer)
	case c.live() && (e.ErrorCode == MediaErrIncompatibleSDP || e.ErrorCode == MediaErrNoPort):
		s.log.Info("media cannot carry the call", "session_id", c.id, "error", e.Error, "error_code", e.ErrorCode)
		s.failCall(st, e)
	default:
		s.log.Warn("media error", "session_id", c.id, "state", c.state, "error", e.Error, "error_code", e.ErrorCode)
	}
}

// failCall ends a live call for a media failure, end reason failed.
func (s *Sessions) failCall(st *step, e *events.MediaError) {
	status := 488
	if e.ErrorCode == MediaErrNoPort {
		status = 503
	}
	st.c.endMessage = e.Error
	s.hangUpDialog(st, callcore.EndFailed, status)
	s.teardown(st, callcore.EndFailed)
}
