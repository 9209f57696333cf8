package events

import "github.com/callbus/callbus/callcore"

// ChannelSessionToApp carries the public call lifecycle that apps consume
// (the WebSocket feed, webhooks, the IVR) from the session layer.
const ChannelSessionToApp = "session_to_app"

type onSessionToApp struct{}

// Channel returns ChannelSessionToApp.
func (onSessionToApp) Channel() string { return ChannelSessionToApp }

func sessionToAppEvents() []Event {
	return []Event{&CallCreated{}, &CallRinging{}, &CallAnswered{}, &CallHeld{},
		&CallResumed{}, &CallTransferred{}, &CallBridged{}, &CallDtmfReceived{},
		&PlaybackFinished{}, &RecordingFinished{}, &CallEnded{}, &RegistrationChanged{}, &CallUpdated{}}
}

// Sides of a call that put it on hold or took it off (CallHeld, CallResumed).
const (
	ByLocal  = "local"
	ByRemote = "remote"
)

// CallCreated reports a new call, Direction "inbound" or "outbound".
// SipCallID is the SIP Call-ID once known; ClientState is the value given
// to MakeCall.
type CallCreated struct {
	onSessionToApp
	SessionRef
	Direction   string `json:"direction"`
	From        string `json:"from"`
	To          string `json:"to"`
	SipCallID   string `json:"sip_call_id,omitempty"`
	ClientState string `json:"client_state,omitempty"`
}

// Type returns "CallCreated".
func (*CallCreated) Type() string { return "CallCreated" }

// CallRinging reports that a call is ringing (incoming, or 180/183 outgoing).
type CallRinging struct {
	onSessionToApp
	SessionRef
}

// Type returns "CallRinging".
func (*CallRinging) Type() string { return "CallRinging" }

// CallAnswered reports that a call is answered and its media flows in Codec.
type CallAnswered struct {
	onSessionToApp
	SessionRef
	Codec string `json:"codec,omitempty"`
}

// Type returns "CallAnswered".
func (*CallAnswered) Type() string { return "CallAnswered" }

// CallHeld reports that a call is on hold, put there By ByLocal or ByRemote.
type CallHeld struct {
	onSessionToApp
	SessionRef
	By string `json:"by,omitempty"`
}

// Type returns "CallHeld".
func (*CallHeld) Type() string { return "CallHeld" }

// CallResumed reports that a call is off hold, taken off By ByLocal or ByRemote.
type CallResumed struct {
	onSessionToApp
	SessionRef
	By string `json:"by,omitempty"`
}

// Type returns "CallResumed".
func (*CallResumed) Type() string { return "CallResumed" }

// CallTransferred reports that a call was transferred to Target.
type CallTransferred struct {
	onSessionToApp
	SessionRef
	Target       string `json:"target"`
	TransferType string `json:"transfer_type"`
}

// Type returns "CallTransferred".
func (*CallTransferred) Type() string { return "CallTransferred" }

// CallBridged reports that the audio of a call is connected with that of
// PeerSessionID.
type CallBridged struct {
	onSessionToApp
	SessionRef
	PeerSessionID string `json:"peer_session_id"`
}

// Type returns "CallBridged".
func (*CallBridged) Type() string { return "CallBridged" }

// CallDtmfReceived reports DTMF digits received on a call by Method
// (DtmfMethodRFC4733 or DtmfMethodInfo). Its event type is "DtmfReceived";
// the Go name differs from dialog_to_session's DtmfReceived.
type CallDtmfReceived struct {
	onSessionToApp
	SessionRef
	Digits string `json:"digits"`
	Method string `json:"method"`
}

// Type returns "DtmfReceived".
func (*CallDtmfReceived) Type() string { return "DtmfReceived" }

// PlaybackReason says how a playback ended (PlaybackFinished.Reason). The
// session layer emits every one of them.
type PlaybackReason string

// The reasons of PlaybackFinished.
const (
	// PlaybackReasonFinished: media reported the playback over without
	// being asked to stop it: played to its end (every loop), or cut by
	// the end of the media stream.
	PlaybackReasonFinished PlaybackReason = "finished"
	// PlaybackReasonStopped: StopAudio or a newer PlayAudio cut it short.
	PlaybackReasonStopped PlaybackReason = "stopped"
	// PlaybackReasonFailed: media could not play it (MediaError
	// playback_failed).
	PlaybackReasonFailed PlaybackReason = "failed"
)

// PlaybackReasons lists every PlaybackReason.
func PlaybackReasons() []PlaybackReason {
	return []PlaybackReason{PlaybackReasonFinished, PlaybackReasonStopped, PlaybackReasonFailed}
}

// PlaybackFinished reports that the playback of File ended, as Reason says.
type PlaybackFinished struct {
	onSessionToApp
	SessionRef
	File   string         `json:"file,omitempty"`
	Reason PlaybackReason `json:"reason,omitempty"`
}

// Type returns "PlaybackFinished".
func (*PlaybackFinished) Type() string { return "PlaybackFinished" }

// RecordingFinished reports that a recording is complete and can be fetched
// by RecordingID.
type RecordingFinished struct {
	onSessionToApp
	SessionRef
	RecordingID string `json:"recording_id"`
	FilePath    string `json:"file_path"`
	DurationMS  int64  `json:"duration_ms"`
}

// Type returns "RecordingFinished".
func (*RecordingFinished) Type() string { return "RecordingFinished" }

// CallEnded reports that a call is over: Reason is one of the public end
// reasons, SipStatus the final SIP status when one ended it, and Message a
// human-readable detail.
type CallEnded struct {
	onSessionToApp
	SessionRef
	Reason    string `json:"reason"`
	SipStatus int    `json:"sip_status,omitempty"`
	Message   string `json:"message,omitempty"`
}

// Type returns "CallEnded".
func (*CallEnded) Type() string { return "CallEnded" }

// CallUpdated carries the call resource of DESIGN.md §5 as it stands after
// the events the session published before it for the same call. The
// session publishes one whenever the resource changes (its state, its
// media, its quality, its bridge…), after that change's other events and
// in the call's key order, so the latest CallUpdated of a call is the call:
// the store's call rows are these, and a feed client has every call
// without asking REST.
type CallUpdated struct {
	onSessionToApp
	SessionRef
	Call callcore.Call `json:"call"`
}

// Type returns "CallUpdated".
func (*CallUpdated) Type() string { return "CallUpdated" }

func (e *CallUpdated) appendData(b []byte) []byte {
	b = append(b, `{"session_id":`...)
	b = appendString(b, e.SessionID)
	b = append(b, `,"call":`...)
	b = e.Call.AppendJSON(b)
	return append(b, '}')
}

// RegistrationChanged reports a change of the state of a registration made
// with CmdRegister: Status e.g. "registered" or "failed", Expires the
// lifetime granted in seconds, Error why it failed.
type RegistrationChanged struct {
	onSessionToApp
	RegistrationID string `json:"registration_id"`
	AOR            string `json:"aor"`
	Status         string `json:"status"`
	Expires        int    `json:"expires,omitempty"`
	Error          string `json:"error,omitempty"`
}

// Type returns "RegistrationChanged".
func (*RegistrationChanged) Type() string { return "RegistrationChanged" }

// Key returns the registration id.
func (e *RegistrationChanged) Key() string { return e.RegistrationID }

var (
	_ Event = (*CallCreated)(nil)
	_ Event = (*CallRinging)(nil)
	_ Event = (*CallAnswered)(nil)
	_ Event = (*CallHeld)(nil)
	_ Event = (*CallResumed)(nil)
	_ Event = (*CallTransferred)(nil)
	_ Event = (*CallBridged)(nil)
	_ Event = (*CallDtmfReceived)(nil)
	_ Event = (*PlaybackFinished)(nil)
	_ Event = (*RecordingFinished)(nil)
	_ Event = (*CallEnded)(nil)
	_ Event = (*RegistrationChanged)(nil)
	_ Event = (*CallUpdated)(nil)
)
