package events

// ChannelMediaToSession carries what the media layer reports about a
// session's audio (stream state, quality, recordings, playback, detected
// DTMF) to the session layer.
const ChannelMediaToSession = "media_to_session"

type onMediaToSession struct{}

// Channel returns ChannelMediaToSession.
func (onMediaToSession) Channel() string { return ChannelMediaToSession }

func mediaToSessionEvents() []Event {
	return []Event{&MediaStreamStarted{}, &MediaStreamStopped{}, &MediaQualityUpdate{},
		&RecordingStarted{}, &RecordingStopped{}, &AudioPlaybackFinished{},
		&MediaError{}, &DtmfDetected{}}
}

// MediaStreamStarted reports that the stream of a session is set up:
// LocalSDP is the SDP to send (offer or answer) and Codec the codec chosen.
type MediaStreamStarted struct {
	onMediaToSession
	SessionRef
	LocalPort int    `json:"local_port"`
	Codec     string `json:"codec"`
	LocalSDP  string `json:"local_sdp"`
}

// Type returns "MediaStreamStarted".
func (*MediaStreamStarted) Type() string { return "MediaStreamStarted" }

// MediaStreamStopped reports that the stream of a session is torn down;
// Reason is the one rtp gave in RtpStreamStopped.
type MediaStreamStopped struct {
	onMediaToSession
	SessionRef
	Reason StreamStopReason `json:"reason"`
}

// Type returns "MediaStreamStopped".
func (*MediaStreamStopped) Type() string { return "MediaStreamStopped" }

// QualityMetrics is a call-quality estimate computed from RTP and RTCP.
type QualityMetrics struct {
	// MOS is the estimated mean opinion score, 1 (bad) to 5 (excellent).
	MOS float64 `json:"mos"`
	// PacketLossPct is the share of packets lost, in percent.
	PacketLossPct float64 `json:"packet_loss_pct"`
	// JitterMS is the interarrival jitter in milliseconds.
	JitterMS float64 `json:"jitter_ms"`
	// RttMS is the round-trip time from RTCP; 0 when unknown.
	RttMS float64 `json:"rtt_ms,omitempty"`
	// PacketsSent and PacketsReceived count the RTP packets of the stream
	// since it started (★, for the call resource of DESIGN.md §5).
	PacketsSent     uint64 `json:"packets_sent"`
	PacketsReceived uint64 `json:"packets_received"`
}

// MediaQualityUpdate reports the periodic quality estimate of a session.
type MediaQualityUpdate struct {
	onMediaToSession
	SessionRef
	QualityMetrics QualityMetrics `json:"quality_metrics"`
}

// Type returns "MediaQualityUpdate".
func (*MediaQualityUpdate) Type() string { return "MediaQualityUpdate" }

// RecordingStarted reports that media is recording a session to FilePath.
type RecordingStarted struct {
	onMediaToSession
	SessionRef
	FilePath string `json:"file_path"`
}

// Type returns "RecordingStarted".
func (*RecordingStarted) Type() string { return "RecordingStarted" }

// RecordingStopped reports that a recording is complete and its file closed.
type RecordingStopped struct {
	onMediaToSession
	SessionRef
	FilePath   string `json:"file_path"`
	DurationMS int64  `json:"duration_ms"`
}

// Type returns "RecordingStopped".
func (*RecordingStopped) Type() string { return "RecordingStopped" }

// AudioPlaybackFinished reports that a playback ended, played out or stopped.
type AudioPlaybackFinished struct {
	onMediaToSession
	SessionRef
}

// Type returns "AudioPlaybackFinished".
func (*AudioPlaybackFinished) Type() string { return "AudioPlaybackFinished" }

// MediaErrorCode classifies a MediaError. Media emits every one of them;
// the session layer acts on MediaErrIncompatibleSDP, MediaErrNoPort,
// MediaErrPlaybackFailed and MediaErrRecordingFailed, and logs the others.
type MediaErrorCode string

// The codes of MediaError.
const (
	// MediaErrIncompatibleSDP: an SDP is unparsable, has no usable audio
	// stream, or shares no codec with media_config or the local SDP.
	MediaErrIncompatibleSDP MediaErrorCode = "incompatible_sdp"
	// MediaErrNoPort: rtp could not bind a port pair (RtpError{no_port}).
	MediaErrNoPort MediaErrorCode = "no_port"
	// MediaErrNoSession: an event names a session media has no stream for,
	// or a bridge names one not started.
	MediaErrNoSession MediaErrorCode = "no_session"
	// MediaErrInvalidState: the event does not fit the stream's phase (a
	// second StartMediaStream, an update or DTMF before the stream started).
	MediaErrInvalidState MediaErrorCode = "invalid_state"
	// MediaErrInvalidConfig: media_config has a bad direction, ptime_ms or
	// builtin.
	MediaErrInvalidConfig MediaErrorCode = "invalid_config"
	// MediaErrInvalidRequest: a bad DTMF digit, too many digits queued, a
	// session bridged with itself.
	MediaErrInvalidRequest MediaErrorCode = "invalid_request"
	// MediaErrNotSupported: StartMediaStream carried a local_sdp.
	MediaErrNotSupported MediaErrorCode = "not_supported"
	// MediaErrPlaybackFailed: the oldest pending PlayAudio cannot play (no
	// stream, a file or URL that cannot be read or decoded); it stands for
	// that playback's AudioPlaybackFinished.
	MediaErrPlaybackFailed MediaErrorCode = "playback_failed"
	// MediaErrRecordingFailed: a recording could not start, be written or
	// be closed; it is the recording's only outcome.
	MediaErrRecordingFailed MediaErrorCode = "recording_failed"
	// MediaErrDTMFNotNegotiated: SendDtmf, but the far end did not offer
	// telephone-event (RFC 4733).
	MediaErrDTMFNotNegotiated MediaErrorCode = "dtmf_not_negotiated"
	// MediaErrRTP: rtp reported a failure of a stream (any RtpError but
	// no_port while the stream starts).
	MediaErrRTP MediaErrorCode = "rtp_error"
	// MediaErrInternal: a failure of media itself.
	MediaErrInternal MediaErrorCode = "internal"
)

// MediaErrorCodes lists every MediaErrorCode.
func MediaErrorCodes() []MediaErrorCode {
	return []MediaErrorCode{MediaErrIncompatibleSDP, MediaErrNoPort, MediaErrNoSession,
		MediaErrInvalidState, MediaErrInvalidConfig, MediaErrInvalidRequest, MediaErrNotSupported,
		MediaErrPlaybackFailed, MediaErrRecordingFailed, MediaErrDTMFNotNegotiated, MediaErrRTP,
		MediaErrInternal}
}

// MediaError reports a media failure of a session (no common codec, a file
// that cannot be played, a port exhausted), classified by ErrorCode.
type MediaError struct {
	onMediaToSession
	SessionRef
	Error     string         `json:"error"`
	ErrorCode MediaErrorCode `json:"error_code,omitempty"`
}

// Type returns "MediaError".
func (*MediaError) Type() string { return "MediaError" }

// DtmfDetected reports one DTMF digit received in the RTP stream (RFC 4733).
type DtmfDetected struct {
	onMediaToSession
	SessionRef
	Digit      string `json:"digit"`
	DurationMS int    `json:"duration_ms"`
}

// Type returns "DtmfDetected".
func (*DtmfDetected) Type() string { return "DtmfDetected" }

var (
	_ Event = (*MediaStreamStarted)(nil)
	_ Event = (*MediaStreamStopped)(nil)
	_ Event = (*MediaQualityUpdate)(nil)
	_ Event = (*RecordingStarted)(nil)
	_ Event = (*RecordingStopped)(nil)
	_ Event = (*AudioPlaybackFinished)(nil)
	_ Event = (*MediaError)(nil)
	_ Event = (*DtmfDetected)(nil)
)
