package store

import (
	"path/filepath"
	"strings"

	"github.com/callbus/callbus/callcore/events"
)

// sipOf returns the SIP Call-ID and transaction id an event carries, and
// whether it is a SIP transport event (whose flow membership is by Call-ID).
func sipOf(ev events.Event) (callID, tx string, transport bool) {
	switch e := ev.(type) {
	case *events.SipMessageReceived:
		return e.Headers.Get("Call-ID"), e.TransactionID, true
	case *events.SipResponseReceived:
		return e.Headers.Get("Call-ID"), e.TransactionID, true
	case *events.SendSipMessage:
		return e.Headers.Get("Call-ID"), e.TransactionID, true
	case *events.SendSipResponse:
		return e.Headers.Get("Call-ID"), e.TransactionID, true
	case *events.TransportError:
		return "", e.TransactionID, true
	case *events.IncomingCall:
		return e.CallID, "", false
	case *events.InitiateCall:
		return e.Headers.Get("Call-ID"), "", false
	case *events.CallCreated:
		return e.SipCallID, "", false
	}
	return "", "", false
}

// formatOf names a recording's format by its file's extension.
func formatOf(path string) string {
	return strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
}
