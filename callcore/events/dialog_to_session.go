package events

import "github.com/callbus/callbus/callcore"

// ChannelDialogToSession carries what the dialog layer learns about a call
// (new INVITEs, state changes, DTMF over INFO, errors) to the session layer.
const ChannelDialogToSession = "dialog_to_session"

type onDialogToSession struct{}

// Channel returns ChannelDialogToSession.
func (onDialogToSession) Channel() string { return ChannelDialogToSession }

func dialogToSessionEvents() []Event {
	return []Event{&IncomingCall{}, &CallStateChanged{}, &CallEstablished{},
		&CallTerminated{}, &DtmfReceived{}, &DialogError{}, &ReinviteReceived{},
		&TransferRequested{}, &RegistrationUpdated{}}
}

// IncomingCall reports a new incoming INVITE; the session layer creates the
// call session it names.
type IncomingCall struct {
	onDialogToSession
	SessionRef
	CallID   string  `json:"call_id"`
	From     string  `json:"from"`
	To       string  `json:"to"`
	SDPOffer string  `json:"sdp_offer"`
	Headers  Headers `json:"headers"`
}

// Type returns "IncomingCall".
func (*IncomingCall) Type() string { return "IncomingCall" }

// CallStateChanged reports a dialog state change, e.g. "ringing" on a 180 or
// 183 to an outgoing INVITE.
type CallStateChanged struct {
	onDialogToSession
	SessionRef
	NewState string `json:"new_state"`
	Reason   string `json:"reason,omitempty"`
}

// Type returns "CallStateChanged".
func (*CallStateChanged) Type() string { return "CallStateChanged" }

// CallEstablished reports that the INVITE transaction completed with a 2xx
// and its ACK; SDPAnswer is the far end's answer to our offer (or our own
// answer for an incoming call).
type CallEstablished struct {
	onDialogToSession
	SessionRef
	SDPAnswer string `json:"sdp_answer"`
}

// Type returns "CallEstablished".
func (*CallEstablished) Type() string { return "CallEstablished" }

// CallTerminated reports that the dialog ended: BYE either way, CANCEL, a
// final error response or a timeout, as said by Reason, one of the public
// end reasons (callcore.EndReason): the reason of our TerminateSession for
// a call we ended, remote_hangup for a BYE from the far end, cancelled, the
// callcore.EndReasonForStatus of a final error status, or failed.
type CallTerminated struct {
	onDialogToSession
	SessionRef
	Reason callcore.EndReason `json:"reason"`
}

// Type returns "CallTerminated".
func (*CallTerminated) Type() string { return "CallTerminated" }

// DtmfReceived reports DTMF tones received as SIP INFO.
type DtmfReceived struct {
	onDialogToSession
	SessionRef
	Tones string `json:"tones"`
}

// Type returns "DtmfReceived".
func (*DtmfReceived) Type() string { return "DtmfReceived" }

// DialogError reports a dialog failure that the session layer must act on.
// ErrorCode is a SIP status, the vocabulary of RFC 3261 §21: the final
// status of a refused request, 408 for a transaction that timed out, 481
// for a session with no dialog, 400 for a bad target; 0 when none applies.
// callcore.EndReasonForStatus is the one table from it to an end reason.
type DialogError struct {
	onDialogToSession
	SessionRef
	Error     string `json:"error"`
	ErrorCode int    `json:"error_code,omitempty"`
}

// Type returns "DialogError".
func (*DialogError) Type() string { return "DialogError" }

// ReinviteReceived reports a re-INVITE from the far end (hold, resume or a
// media change) carrying its new SDP offer.
type ReinviteReceived struct {
	onDialogToSession
	SessionRef
	SDP string `json:"sdp"`
}

// Type returns "ReinviteReceived".
func (*ReinviteReceived) Type() string { return "ReinviteReceived" }

// TransferRequested reports a REFER from the far end asking us to call
// ReferTo, replacing the dialog named by Replaces when it is attended.
type TransferRequested struct {
	onDialogToSession
	SessionRef
	ReferTo  string `json:"refer_to"`
	Replaces string `json:"replaces,omitempty"`
}

// Type returns "TransferRequested".
func (*TransferRequested) Type() string { return "TransferRequested" }

// RegistrationUpdated reports the state of a registration asked for with
// RegisterAccount: RegStatusRegistered (with the Expires the registrar
// granted), RegStatusUnregistered, or RegStatusFailed with Error. Dialog
// relays the transport's RegistrationStatusUpdate, or fails a registration
// it cannot hand on (a bad AOR, an unknown id).
type RegistrationUpdated struct {
	onDialogToSession
	RegistrationID string             `json:"registration_id"`
	AOR            string             `json:"aor"`
	Status         RegistrationStatus `json:"status"`
	Expires        int                `json:"expires,omitempty"`
	Error          string             `json:"error,omitempty"`
}

// Type returns "RegistrationUpdated".
func (*RegistrationUpdated) Type() string { return "RegistrationUpdated" }

// Key returns the registration id.
func (e *RegistrationUpdated) Key() string { return e.RegistrationID }

var (
	_ Event = (*RegistrationUpdated)(nil)
	_ Event = (*IncomingCall)(nil)
	_ Event = (*CallStateChanged)(nil)
	_ Event = (*CallEstablished)(nil)
	_ Event = (*CallTerminated)(nil)
	_ Event = (*DtmfReceived)(nil)
	_ Event = (*DialogError)(nil)
	_ Event = (*ReinviteReceived)(nil)
	_ Event = (*TransferRequested)(nil)
)
