package events

// ChannelAPIToSession carries commands from the REST API and the IVR to the
// session layer. Every event of this channel is a request: it is sent with
// the bus's Request and answered with a CommandResult.
const ChannelAPIToSession = "api_to_session"

type onAPIToSession struct{}

// Channel returns ChannelAPIToSession.
func (onAPIToSession) Channel() string { return ChannelAPIToSession }

func apiToSessionEvents() []Event {
	return []Event{&CmdMakeCall{}, &CmdAnswerCall{}, &CmdRejectCall{}, &CmdHangupCall{},
		&CmdHoldCall{}, &CmdResumeCall{}, &CmdTransferCall{}, &CmdSendDtmf{},
		&CmdPlayAudio{}, &CmdStopAudio{}, &CmdStartRecording{}, &CmdStopRecording{},
		&CmdBridgeCalls{}, &CmdRegister{}, &CmdUnregister{}}
}

// CommandResult is the reply the server of an api_to_session command
// returns: ID is the session id (or the registration id for CmdRegister and
// CmdUnregister) and State the call or registration state after the command.
// It is not an event and is not in the registry.
type CommandResult struct {
	ID    string `json:"id"`
	State string `json:"state,omitempty"`
}

// DTMF methods of CmdSendDtmf.
const (
	DtmfMethodRFC4733 = "rfc4733"
	DtmfMethodInfo    = "info"
)

// CmdMakeCall asks for a new outgoing call from From to To. The caller
// chooses the session id. Status callbacks go to WebhookURL, carrying
// ClientState back; the call gives up after RingTimeoutS seconds unanswered.
type CmdMakeCall struct {
	onAPIToSession
	SessionRef
	From         string  `json:"from"`
	To           string  `json:"to"`
	Headers      Headers `json:"headers,omitempty"`
	WebhookURL   string  `json:"webhook_url,omitempty"`
	ClientState  string  `json:"client_state,omitempty"`
	RingTimeoutS int     `json:"ring_timeout_s,omitempty"`
}

// Type returns "MakeCall".
func (*CmdMakeCall) Type() string { return "MakeCall" }

// CmdAnswerCall asks to answer a ringing incoming call.
type CmdAnswerCall struct {
	onAPIToSession
	SessionRef
}

// Type returns "AnswerCall".
func (*CmdAnswerCall) Type() string { return "AnswerCall" }

// CmdRejectCall asks to refuse a ringing incoming call with StatusCode.
type CmdRejectCall struct {
	onAPIToSession
	SessionRef
	StatusCode int    `json:"status_code"`
	Reason     string `json:"reason,omitempty"`
}

// Type returns "RejectCall".
func (*CmdRejectCall) Type() string { return "RejectCall" }

// CmdHangupCall asks to end a call in any state.
type CmdHangupCall struct {
	onAPIToSession
	SessionRef
	Reason string `json:"reason,omitempty"`
}

// Type returns "HangupCall".
func (*CmdHangupCall) Type() string { return "HangupCall" }

// CmdHoldCall asks to put an active call on hold.
type CmdHoldCall struct {
	onAPIToSession
	SessionRef
}

// Type returns "HoldCall".
func (*CmdHoldCall) Type() string { return "HoldCall" }

// CmdResumeCall asks to take a held call off hold.
type CmdResumeCall struct {
	onAPIToSession
	SessionRef
}

// Type returns "ResumeCall".
func (*CmdResumeCall) Type() string { return "ResumeCall" }

// CmdTransferCall asks to transfer a call to Target, blind or attended
// (TransferBlind, TransferAttended); an attended transfer replaces the call
// of ConsultSessionID.
type CmdTransferCall struct {
	onAPIToSession
	SessionRef
	Target           string `json:"target"`
	TransferType     string `json:"transfer_type"`
	ConsultSessionID string `json:"consult_session_id,omitempty"`
}

// Type returns "TransferCall".
func (*CmdTransferCall) Type() string { return "TransferCall" }

// CmdSendDtmf asks to send Digits to the far end of a call by Method
// (DtmfMethodRFC4733, the default, or DtmfMethodInfo), each lasting DurationMS.
type CmdSendDtmf struct {
	onAPIToSession
	SessionRef
	Digits     string `json:"digits"`
	Method     string `json:"method,omitempty"`
	DurationMS int    `json:"duration_ms,omitempty"`
}

// Type returns "SendDtmf".
func (*CmdSendDtmf) Type() string { return "SendDtmf" }

// CmdPlayAudio asks to play a local File or a URL to the far end of a call,
// LoopCount times (0 means once).
type CmdPlayAudio struct {
	onAPIToSession
	SessionRef
	File      string `json:"file,omitempty"`
	URL       string `json:"url,omitempty"`
	LoopCount int    `json:"loop_count,omitempty"`
}

// Type returns "PlayAudio".
func (*CmdPlayAudio) Type() string { return "PlayAudio" }

// CmdStopAudio asks to stop the playback of a call.
type CmdStopAudio struct {
	onAPIToSession
	SessionRef
}

// Type returns "StopAudio".
func (*CmdStopAudio) Type() string { return "StopAudio" }

// CmdStartRecording asks to record a call, for at most MaxDurationS seconds
// when it is not 0.
type CmdStartRecording struct {
	onAPIToSession
	SessionRef
	MaxDurationS int `json:"max_duration_s,omitempty"`
}

// Type returns "StartRecording".
func (*CmdStartRecording) Type() string { return "StartRecording" }

// CmdStopRecording asks to stop the recording of a call.
type CmdStopRecording struct {
	onAPIToSession
	SessionRef
}

// Type returns "StopRecording".
func (*CmdStopRecording) Type() string { return "StopRecording" }

// CmdBridgeCalls asks to connect the audio of a call with that of
// PeerSessionID.
type CmdBridgeCalls struct {
	onAPIToSession
	SessionRef
	PeerSessionID string `json:"peer_session_id"`
}

// Type returns "BridgeCalls".
func (*CmdBridgeCalls) Type() string { return "BridgeCalls" }

// CmdRegister asks to register AOR with Registrar under the caller-chosen
// RegistrationID, authenticating as Username with Password, and to keep the
// registration refreshed (Expires seconds per REGISTER; 0 means the default).
type CmdRegister struct {
	onAPIToSession
	RegistrationID string `json:"registration_id"`
	Registrar      string `json:"registrar"`
	AOR            string `json:"aor"`
	Username       string `json:"username"`
	Password       Secret `json:"password"`
	Expires        int    `json:"expires,omitempty"`
}

// Type returns "Register".
func (*CmdRegister) Type() string { return "Register" }

// Key returns the registration id.
func (e *CmdRegister) Key() string { return e.RegistrationID }

// CmdUnregister asks to remove the registration RegistrationID.
type CmdUnregister struct {
	onAPIToSession
	RegistrationID string `json:"registration_id"`
}

// Type returns "Unregister".
func (*CmdUnregister) Type() string { return "Unregister" }

// Key returns the registration id.
func (e *CmdUnregister) Key() string { return e.RegistrationID }

var (
	_ Event = (*CmdMakeCall)(nil)
	_ Event = (*CmdAnswerCall)(nil)
	_ Event = (*CmdRejectCall)(nil)
	_ Event = (*CmdHangupCall)(nil)
	_ Event = (*CmdHoldCall)(nil)
	_ Event = (*CmdResumeCall)(nil)
	_ Event = (*CmdTransferCall)(nil)
	_ Event = (*CmdSendDtmf)(nil)
	_ Event = (*CmdPlayAudio)(nil)
	_ Event = (*CmdStopAudio)(nil)
	_ Event = (*CmdStartRecording)(nil)
	_ Event = (*CmdStopRecording)(nil)
	_ Event = (*CmdBridgeCalls)(nil)
	_ Event = (*CmdRegister)(nil)
	_ Event = (*CmdUnregister)(nil)
)
