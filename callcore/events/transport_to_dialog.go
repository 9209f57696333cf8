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

// TransportError reports a transport failure (a send error, a transaction
// timeout), tied to a transaction when TransactionID is set.
type TransportError struct {
	onTransportToDialog
	Error         string `json:"error"`
	TransactionID string `json:"transaction_id,omitempty"`
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

// RegistrationStatusUpdate reports the outcome of a REGISTER for URI:
// Status is e.g. "registered", "unregistered" or "failed", and Expires the
// lifetime in seconds the registrar granted.
//
// Status is "registered", "unregistered" or "failed" (with Error).
type RegistrationStatusUpdate struct {
	onTransportToDialog
	URI            string `json:"uri"`
	Status         string `json:"status"`
	Expires        int    `json:"expires,omitempty"`
	RegistrationID string `json:"registration_id,omitempty"`
	Error          string `json:"error,omitempty"`
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
