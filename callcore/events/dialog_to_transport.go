package events

// ChannelDialogToTransport carries the SIP messages the dialog layer wants
// sent, and its registrations, to the transport layer.
const ChannelDialogToTransport = "dialog_to_transport"

type onDialogToTransport struct{}

// Channel returns ChannelDialogToTransport.
func (onDialogToTransport) Channel() string { return ChannelDialogToTransport }

func dialogToTransportEvents() []Event {
	return []Event{&SendSipMessage{}, &SendSipResponse{}, &RegisterEndpoint{},
		&UnregisterEndpoint{}}
}

// SendSipMessage asks transport to send a SIP request to Destination, in the
// client transaction TransactionID when it continues one.
type SendSipMessage struct {
	onDialogToTransport
	Destination   string  `json:"destination"`
	Method        string  `json:"method"`
	Headers       Headers `json:"headers"`
	Body          string  `json:"body"`
	TransactionID string  `json:"transaction_id,omitempty"`
}

// Type returns "SendSipMessage".
func (*SendSipMessage) Type() string { return "SendSipMessage" }

// Key returns the Call-ID header, else the transaction id, else the
// destination.
func (e *SendSipMessage) Key() string {
	if id := e.Headers.Get("Call-ID"); id != "" {
		return id
	}
	if e.TransactionID != "" {
		return e.TransactionID
	}
	return e.Destination
}

// SendSipResponse asks transport to answer the server transaction
// TransactionID.
type SendSipResponse struct {
	onDialogToTransport
	TransactionID string  `json:"transaction_id"`
	StatusCode    int     `json:"status_code"`
	ReasonPhrase  string  `json:"reason_phrase"`
	Headers       Headers `json:"headers"`
	Body          string  `json:"body"`
}

// Type returns "SendSipResponse".
func (*SendSipResponse) Type() string { return "SendSipResponse" }

// Key returns the Call-ID header, else the transaction id.
func (e *SendSipResponse) Key() string {
	if id := e.Headers.Get("Call-ID"); id != "" {
		return id
	}
	return e.TransactionID
}

// RegisterEndpoint asks transport to register URI with its registrar and
// keep the registration refreshed, answering digest challenges with
// Username and Password.
//
// URI is the address of record. Registrar is the REGISTER's request URI
// (default: the AOR's domain); RegistrationID is echoed back in every
// RegistrationStatusUpdate.
type RegisterEndpoint struct {
	onDialogToTransport
	URI            string `json:"uri"`
	Expires        int    `json:"expires,omitempty"`
	Contact        string `json:"contact,omitempty"`
	Username       string `json:"username,omitempty"`
	Password       Secret `json:"password,omitempty"`
	Registrar      string `json:"registrar,omitempty"`
	RegistrationID string `json:"registration_id,omitempty"`
}

// Type returns "RegisterEndpoint".
func (*RegisterEndpoint) Type() string { return "RegisterEndpoint" }

// Key returns the URI.
func (e *RegisterEndpoint) Key() string { return e.URI }

// UnregisterEndpoint asks transport to remove the registration of URI
// (REGISTER with Expires: 0) and stop refreshing it.
type UnregisterEndpoint struct {
	onDialogToTransport
	URI string `json:"uri"`
}

// Type returns "UnregisterEndpoint".
func (*UnregisterEndpoint) Type() string { return "UnregisterEndpoint" }

// Key returns the URI.
func (e *UnregisterEndpoint) Key() string { return e.URI }

var (
	_ Event = (*SendSipMessage)(nil)
	_ Event = (*SendSipResponse)(nil)
	_ Event = (*RegisterEndpoint)(nil)
	_ Event = (*UnregisterEndpoint)(nil)
)
