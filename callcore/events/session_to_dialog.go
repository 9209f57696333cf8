package events

import "github.com/callbus/callbus/callcore"

// ChannelSessionToDialog carries the session layer's call commands to the
// dialog layer.
const ChannelSessionToDialog = "session_to_dialog"

type onSessionToDialog struct{}

// Channel returns ChannelSessionToDialog.
func (onSessionToDialog) Channel() string { return ChannelSessionToDialog }

func sessionToDialogEvents() []Event {
	return []Event{&InitiateCall{}, &AcceptCall{}, &RejectCall{}, &TerminateSession{},
		&HoldSession{}, &ResumeSession{}, &TransferCall{}, &SendDtmf{},
		&TransferProgress{}, &RegisterAccount{}, &UnregisterAccount{}}
}

// InitiateCall asks dialog to send the INVITE of a new outgoing call.
type InitiateCall struct {
	onSessionToDialog
	SessionRef
	From     string  `json:"from"`
	To       string  `json:"to"`
	SDPOffer string  `json:"sdp_offer"`
	Headers  Headers `json:"headers"`
}

// Type returns "InitiateCall".
func (*InitiateCall) Type() string { return "InitiateCall" }

// AcceptCall asks dialog to answer an incoming INVITE with 200 and the SDP answer.
type AcceptCall struct {
	onSessionToDialog
	SessionRef
	SDPAnswer string `json:"sdp_answer"`
}

// Type returns "AcceptCall".
func (*AcceptCall) Type() string { return "AcceptCall" }

// RejectCall asks dialog to answer an incoming INVITE with a final error status.
type RejectCall struct {
	onSessionToDialog
	SessionRef
	StatusCode int    `json:"status_code"`
	Reason     string `json:"reason"`
}

// Type returns "RejectCall".
func (*RejectCall) Type() string { return "RejectCall" }

// TerminateSession asks dialog to end a call: BYE when established, CANCEL
// while an outgoing INVITE is pending. Reason is the call's end reason;
// dialog reports it back in CallTerminated (local_hangup when empty).
type TerminateSession struct {
	onSessionToDialog
	SessionRef
	Reason callcore.EndReason `json:"reason"`
}

// Type returns "TerminateSession".
func (*TerminateSession) Type() string { return "TerminateSession" }

// HoldSession asks dialog to send a hold re-INVITE (a=sendonly).
type HoldSession struct {
	onSessionToDialog
	SessionRef
	SDPOffer string `json:"sdp_offer,omitempty"`
}

// Type returns "HoldSession".
func (*HoldSession) Type() string { return "HoldSession" }

// ResumeSession asks dialog to send a resume re-INVITE (a=sendrecv).
type ResumeSession struct {
	onSessionToDialog
	SessionRef
	SDPOffer string `json:"sdp_offer"`
}

// Type returns "ResumeSession".
func (*ResumeSession) Type() string { return "ResumeSession" }

// Transfer types of TransferCall.
const (
	TransferBlind    = "blind"
	TransferAttended = "attended"
)

// TransferCall asks dialog to send a REFER: blind, or attended with Replaces
// naming the dialog of ReplacesSessionID.
type TransferCall struct {
	onSessionToDialog
	SessionRef
	Target            string `json:"target"`
	TransferType      string `json:"transfer_type"`
	ReplacesSessionID string `json:"replaces_session_id,omitempty"`
}

// Type returns "TransferCall".
func (*TransferCall) Type() string { return "TransferCall" }

// SendDtmf asks dialog to send DTMF tones as SIP INFO (application/dtmf-relay).
type SendDtmf struct {
	onSessionToDialog
	SessionRef
	Tones string `json:"tones"`
}

// Type returns "SendDtmf".
func (*SendDtmf) Type() string { return "SendDtmf" }

var (
	_ Event = (*TransferProgress)(nil)
	_ Event = (*RegisterAccount)(nil)
	_ Event = (*UnregisterAccount)(nil)
	_ Event = (*InitiateCall)(nil)
	_ Event = (*AcceptCall)(nil)
	_ Event = (*RejectCall)(nil)
	_ Event = (*TerminateSession)(nil)
	_ Event = (*HoldSession)(nil)
	_ Event = (*ResumeSession)(nil)
	_ Event = (*TransferCall)(nil)
	_ Event = (*SendDtmf)(nil)
)

// TransferProgress asks dialog to report the progress of a transfer the far
// end requested (a REFER we accepted) with a NOTIFY carrying a sipfrag of
// StatusCode and Reason. A final status (≥ 200) ends the subscription.
type TransferProgress struct {
	onSessionToDialog
	SessionRef
	StatusCode int    `json:"status_code"`
	Reason     string `json:"reason,omitempty"`
}

// Type returns "TransferProgress".
func (*TransferProgress) Type() string { return "TransferProgress" }

// RegisterAccount asks dialog to register AOR at Registrar and keep the
// registration refreshed; dialog hands it to transport as RegisterEndpoint.
type RegisterAccount struct {
	onSessionToDialog
	RegistrationID string `json:"registration_id"`
	Registrar      string `json:"registrar"`
	AOR            string `json:"aor"`
	Username       string `json:"username,omitempty"`
	Password       Secret `json:"password,omitempty"`
	Expires        int    `json:"expires,omitempty"`
}

// Type returns "RegisterAccount".
func (*RegisterAccount) Type() string { return "RegisterAccount" }

// Key returns the registration id.
func (e *RegisterAccount) Key() string { return e.RegistrationID }

// UnregisterAccount asks dialog to remove a registration (REGISTER with
// Expires: 0) and stop refreshing it.
type UnregisterAccount struct {
	onSessionToDialog
	RegistrationID string `json:"registration_id"`
}

// Type returns "UnregisterAccount".
func (*UnregisterAccount) Type() string { return "UnregisterAccount" }

// Key returns the registration id.
func (e *UnregisterAccount) Key() string { return e.RegistrationID }
