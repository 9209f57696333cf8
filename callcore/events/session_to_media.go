package events

// ChannelSessionToMedia carries the session layer's media commands (streams,
// hold, recording, playback, DTMF, bridging) to the media layer.
const ChannelSessionToMedia = "session_to_media"

type onSessionToMedia struct{}

// Channel returns ChannelSessionToMedia.
func (onSessionToMedia) Channel() string { return ChannelSessionToMedia }

func sessionToMediaEvents() []Event {
	return []Event{&StartMediaStream{}, &StopMediaStream{}, &UpdateMediaStream{},
		&HoldMedia{}, &ResumeMedia{}, &StartRecording{}, &StopRecording{},
		&PlayAudio{}, &StopAudio{}, &MediaSendDtmf{}, &BridgeMedia{}, &UnbridgeMedia{}}
}

// Media directions of MediaConfig (RFC 3264 §5.1).
const (
	MediaSendRecv = "sendrecv"
	MediaSendOnly = "sendonly"
	MediaRecvOnly = "recvonly"
	MediaInactive = "inactive"
)

// MediaConfig says how media should negotiate a stream.
type MediaConfig struct {
	// Codecs lists the codec names in order of preference, e.g. ["PCMU", "PCMA"].
	Codecs []string `json:"codecs"`
	// PtimeMS is the packetization time in milliseconds; 0 means the default (20).
	PtimeMS int `json:"ptime_ms,omitempty"`
	// Direction is one of MediaSendRecv, MediaSendOnly, MediaRecvOnly and
	// MediaInactive; "" means MediaSendRecv.
	Direction string `json:"direction,omitempty"`
	// Builtin names a built-in application media runs on the stream by
	// itself (★, DESIGN.md §5's built-in numbers): BuiltinEcho sends back
	// what it receives, BuiltinTone plays a tone. "" means none.
	Builtin string `json:"builtin,omitempty"`
}

// Built-in applications of MediaConfig.Builtin.
const (
	BuiltinEcho = "echo"
	BuiltinTone = "tone"
)

// StartMediaStream asks media to set up the stream of a session: to make
// the SDP offer when RemoteSDP is empty, or to answer RemoteSDP.
type StartMediaStream struct {
	onSessionToMedia
	SessionRef
	LocalSDP    string      `json:"local_sdp,omitempty"`
	RemoteSDP   string      `json:"remote_sdp,omitempty"`
	MediaConfig MediaConfig `json:"media_config"`
}

// Type returns "StartMediaStream".
func (*StartMediaStream) Type() string { return "StartMediaStream" }

// StopMediaStream asks media to tear down the stream of a session.
type StopMediaStream struct {
	onSessionToMedia
	SessionRef
}

// Type returns "StopMediaStream".
func (*StopMediaStream) Type() string { return "StopMediaStream" }

// UpdateMediaStream asks media to apply a renegotiated SDP pair (re-INVITE).
type UpdateMediaStream struct {
	onSessionToMedia
	SessionRef
	LocalSDP  string `json:"local_sdp"`
	RemoteSDP string `json:"remote_sdp"`
}

// Type returns "UpdateMediaStream".
func (*UpdateMediaStream) Type() string { return "UpdateMediaStream" }

// HoldMedia asks media to stop sending audio to the far end of a session.
type HoldMedia struct {
	onSessionToMedia
	SessionRef
}

// Type returns "HoldMedia".
func (*HoldMedia) Type() string { return "HoldMedia" }

// ResumeMedia asks media to resume sending audio after HoldMedia.
type ResumeMedia struct {
	onSessionToMedia
	SessionRef
}

// Type returns "ResumeMedia".
func (*ResumeMedia) Type() string { return "ResumeMedia" }

// StartRecording asks media to record both directions of a session to
// FilePath in Format (e.g. "wav").
type StartRecording struct {
	onSessionToMedia
	SessionRef
	FilePath string `json:"file_path"`
	Format   string `json:"format"`
}

// Type returns "StartRecording".
func (*StartRecording) Type() string { return "StartRecording" }

// StopRecording asks media to stop the recording of a session and close its file.
type StopRecording struct {
	onSessionToMedia
	SessionRef
}

// Type returns "StopRecording".
func (*StopRecording) Type() string { return "StopRecording" }

// PlayAudio asks media to play FilePath to the far end, LoopCount times
// (0 means once).
type PlayAudio struct {
	onSessionToMedia
	SessionRef
	FilePath  string `json:"file_path"`
	LoopCount int    `json:"loop_count,omitempty"`
}

// Type returns "PlayAudio".
func (*PlayAudio) Type() string { return "PlayAudio" }

// StopAudio asks media to stop the playback of a session.
type StopAudio struct {
	onSessionToMedia
	SessionRef
}

// Type returns "StopAudio".
func (*StopAudio) Type() string { return "StopAudio" }

// MediaSendDtmf asks media to send DTMF tones in the RTP stream as RFC 4733
// telephone events, each lasting DurationMS. Its event type is "SendDtmf";
// the Go name differs from session_to_dialog's SendDtmf (SIP INFO).
type MediaSendDtmf struct {
	onSessionToMedia
	SessionRef
	Tones      string `json:"tones"`
	DurationMS int    `json:"duration_ms"`
}

// Type returns "SendDtmf".
func (*MediaSendDtmf) Type() string { return "SendDtmf" }

// BridgeMedia asks media to connect the audio of a session with that of
// PeerSessionID, in both directions.
type BridgeMedia struct {
	onSessionToMedia
	SessionRef
	PeerSessionID string `json:"peer_session_id"`
}

// Type returns "BridgeMedia".
func (*BridgeMedia) Type() string { return "BridgeMedia" }

// UnbridgeMedia asks media to disconnect a session from the bridge it is in.
type UnbridgeMedia struct {
	onSessionToMedia
	SessionRef
}

// Type returns "UnbridgeMedia".
func (*UnbridgeMedia) Type() string { return "UnbridgeMedia" }

var (
	_ Event = (*StartMediaStream)(nil)
	_ Event = (*StopMediaStream)(nil)
	_ Event = (*UpdateMediaStream)(nil)
	_ Event = (*HoldMedia)(nil)
	_ Event = (*ResumeMedia)(nil)
	_ Event = (*StartRecording)(nil)
	_ Event = (*StopRecording)(nil)
	_ Event = (*PlayAudio)(nil)
	_ Event = (*StopAudio)(nil)
	_ Event = (*MediaSendDtmf)(nil)
	_ Event = (*BridgeMedia)(nil)
	_ Event = (*UnbridgeMedia)(nil)
)
