package calltest

import (
	"errors"
	"fmt"
)

// Sentinel errors of the package; test them with errors.Is.
var (
	// ErrNotOpen is returned by operations on a peer that is not open yet.
	ErrNotOpen = errors.New("calltest: not open")
	// ErrClosed is returned by operations on a peer that has been closed,
	// and by Open on a peer opened or closed before.
	ErrClosed = errors.New("calltest: closed")
	// ErrCallEnded is returned by operations on a call that has ended.
	ErrCallEnded = errors.New("calltest: call ended")
	// ErrInvalidState is returned when an operation does not fit the call's
	// current state (answering an outbound call, holding a ringing one…).
	ErrInvalidState = errors.New("calltest: invalid call state")
	// ErrNoAnswer is returned when a transaction ended (timeout, transport
	// error) without a final response.
	ErrNoAnswer = errors.New("calltest: no final response")
)

// StatusError is the error for a request that got a final response other
// than 2xx. The response itself is in Response.
type StatusError struct {
	Method   string
	Status   int
	Reason   string
	Response Message
}

// Error returns e.g. "calltest: INVITE: 486 Busy Here".
func (e *StatusError) Error() string {
	return fmt.Sprintf("calltest: %s: %d %s", e.Method, e.Status, e.Reason)
}

// StatusOf returns the SIP status of the first *StatusError in err's chain,
// or 0 when there is none.
func StatusOf(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

func statusError(m Message) *StatusError {
	return &StatusError{Method: m.Method, Status: m.Status, Reason: m.Reason, Response: m}
}
