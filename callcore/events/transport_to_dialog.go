package events

// ChannelTransportToDialog carries SIP messages received by the transport
// layer, and its failures, to the dialog layer.
const ChannelTransportToDialog = "transport_to_dialog"

type onTransportToDialog struct{}

// Channel returns ChannelTransportToDialog.
func (onTransportToDialog) Channel() string { return ChannelTransportToDialog }

func transportToDialogEvents() []Event {
	return []Event{&SipMessageReceived{}, &SipResponseReceived{}, &TransportError{},
		&RegistrationStatusUpdate{}}
}

// transportKeyFallback is the ordering key of transport errors that belong
// to no transaction: they are few, so one key for all of them is enough.
const transportKeyFallback = "transport"

// SipMessageReceived reports a SIP request received from Source.
//
// Source is the sender's host:port, Transport "udp" or "tcp", RequestURI the
// request line's URI; Headers holds every header in wire order.
type SipMessageReceived struct {
	onTransportToDialog
	Source        string  `json:"source"`
	Method        string  `json:"method"`
	Headers       Headers `json:"headers"`
	Body          string  `json:"body"`
	TransactionID string  `json:"transaction_id"`
	RequestURI    string  `json:"request_uri,omitempty"`
	Transport     string  `json:"transport,omitempty"`
}

// Type returns "SipMessageReceived".
func (*SipMessageReceived) Type() string { return "SipMessageReceived" }

// Key returns the Call-ID header, else the transaction id, so that every
// message of one dialog is handled in order.
func (e *SipMessageReceived) Key() string {
	if id := e.Headers.Get("Call-ID"); id != "" {
		return id
	}
	return e.TransactionID
}

// SipResponseReceived reports a SIP response to a client transaction.
type SipResponseReceived struct {
	onTransportToDialog
	TransactionID string  `json:"transaction_id"`
	StatusCode    int     `json:"status_code"`
	ReasonPhrase  string  `json:"reason_phrase"`
	Headers       Headers `json:"headers"`
	Body          string  `json:"body"`
}

// Type returns "SipResponseReceived".
func (*SipResponseReceived) Type() string { return "SipResponseReceived" }

// Key returns the Call-ID header, else the transaction id.
func (e *SipResponseReceived) Key() string {
	if id := e.Headers.Get("Call-ID"); id != "" {
		return id
	}
	return e.TransactionID
}

// TransportErrorCode classifies a TransportError. The transport emits
// every one of them; the dialog layer ends the transaction it names,
// whatever the code (as a 408 for a client transaction).
type TransportErrorCode string

// The codes of TransportError.
const (
	// TransportErrTimeout: a client transaction got no final response in
	// time (RFC 3261 timer B or F).
	TransportErrTimeout TransportErrorCode = "timeout"
	// TransportErrNoFinalResponse: a server transaction was left without a
	// final response for too long; the transport answered it 408 itself.
	TransportErrNoFinalResponse TransportErrorCode = "no_final_response"
	// TransportErrSendFailed: a message could not be sent, or the
	// connection of its transaction failed (refused, unreachable, closed).
	TransportErrSendFailed TransportErrorCode = "send_failed"
	// TransportErrBadMessage: a message asked for is not valid SIP (a bad
	// header, method, URI or status code, a transaction id in use, a
	// CANCEL of a non-INVITE).
	TransportErrBadMessage TransportErrorCode = "bad_message"
	// TransportErrTooLarge: a message is over what UDP may carry; it must
	// go over TCP.
	TransportErrTooLarge TransportErrorCode = "too_large"
	// TransportErrUnsupportedTransport: the destination asks for a
	// transport callbus does not speak (sips, TLS, SCTP…).
	TransportErrUnsupportedTransport TransportErrorCode = "unsupported_transport"
	// TransportErrUnknownTransaction: a response or CANCEL names a
	// transaction the transport does not know, or that has ended.
	TransportErrUnknownTransaction TransportErrorCode = "unknown_transaction"
)

// TransportErrorCodes lists every TransportErrorCode.
func TransportErrorCodes() []TransportErrorCode {
	return []TransportErrorCode{TransportErrTimeout, TransportErrNoFinalResponse, TransportErrSendFailed,
		TransportErrBadMessage, TransportErrTooLarge, TransportErrUnsupportedTransport,
		TransportErrUnknownTransaction}
}

// TransportError reports a transport failure (a send error, a transaction
// timeout), classified by ErrorCode and tied to a transaction when
// TransactionID is set.
type TransportError struct {
	onTransportToDialog
	Error         string             `json:"error"`
	ErrorCode     TransportErrorCode `json:"error_code,omitempty"`
	TransactionID string             `json:"transaction_id,omitempty"`
}

// Type returns "TransportError".
func (*TransportError) Type() string { return "TransportError" }

// Key returns the transaction id, else "transport".
func (e *TransportError) Key() string {
	if e.TransactionID != "" {
		return e.TransactionID
	}
	return transportKeyFallback
}

// RegistrationStatus is the state of an outbound registration, as the
// transport reports it in RegistrationStatusUpdate and dialog relays it in
// RegistrationUpdated.
type RegistrationStatus string

// The statuses of RegistrationStatusUpdate and RegistrationUpdated.
const (
	// RegStatusRegistered: the registrar accepted the binding (Expires set).
	// The transport emits it after each successful REGISTER or refresh.
	RegStatusRegistered RegistrationStatus = "registered"
	// RegStatusUnregistered: the binding was removed (or never existed);
	// the transport emits it once an UnregisterEndpoint is done, and the
	// session layer then forgets the registration.
	RegStatusUnregistered RegistrationStatus = "unregistered"
	// RegStatusFailed: a REGISTER failed, Error says why. The transport
	// emits it (and retries transient failures); dialog emits it for an
	// AOR it cannot parse or the unregistration of an unknown id.
	RegStatusFailed RegistrationStatus = "failed"
)

// RegistrationStatuses lists every RegistrationStatus.
func RegistrationStatuses() []RegistrationStatus {
	return []RegistrationStatus{RegStatusRegistered, RegStatusUnregistered, RegStatusFailed}
}

// RegistrationStatusUpdate reports the outcome of a REGISTER for URI:
// Status is RegStatusRegistered, RegStatusUnregistered or RegStatusFailed
// (with Error), and Expires the lifetime in seconds the registrar granted.
type RegistrationStatusUpdate struct {
	onTransportToDialog
	URI            string             `json:"uri"`
	Status         RegistrationStatus `json:"status"`
	Expires        int                `json:"expires,omitempty"`
	RegistrationID string             `json:"registration_id,omitempty"`
	Error          string             `json:"error,omitempty"`
}

// Type returns "RegistrationStatusUpdate".
func (*RegistrationStatusUpdate) Type() string { return "RegistrationStatusUpdate" }

// Key returns the registered URI.
func (e *RegistrationStatusUpdate) Key() string { return e.URI }

var (
	_ Event = (*SipMessageReceived)(nil)
	_ Event = (*SipResponseReceived)(nil)
	_ Event = (*TransportError)(nil)
	_ Event = (*RegistrationStatusUpdate)(nil)
)
