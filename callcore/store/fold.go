package store

import (
	"path/filepath"
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// callState is the writer's view of one call: the resource as it will be
// stored and what the store learned around it.
type callState struct {
	call      callcore.Call
	sipCallID string // the SIP Call-ID the call's flow is matched by
	seq       uint64 // the seq of the last event applied to it
	ended     bool   // its CallEnded was seen: nothing more is expected
}

// fold applies one session event to a call, as the session layer would
// report it, for when no Snapshot is available. Events that do not change
// the call resource leave it as it is.
func fold(c *callcore.Call, env events.Envelope, ev events.Event) {
	at := env.Time.UTC()
	switch e := ev.(type) {
	case *events.CallCreated:
		c.ID = e.SessionID
		c.Direction = callcore.Direction(e.Direction)
		c.From, c.To = e.From, e.To
		if e.SipCallID != "" {
			c.SipCallID = e.SipCallID
		}
		c.ClientState = e.ClientState
		c.CreatedAt = at
		if c.Direction == callcore.Inbound {
			c.State = callcore.StateRinging
		} else {
			c.State = callcore.StateInitiating
		}
	case *events.IncomingCall:
		if c.SipCallID == "" {
			c.SipCallID = e.CallID
		}
	case *events.InitiateCall:
		if id := e.Headers.Get("Call-ID"); c.SipCallID == "" && id != "" {
			c.SipCallID = id
		}
	case *events.CallRinging:
		if live(c) {
			c.State = callcore.StateRinging
		}
	case *events.CallAnswered:
		if live(c) {
			c.State = callcore.StateActive
		}
		c.AnsweredAt = at
		if e.Codec != "" {
			c.Media.Codec = e.Codec
		}
	case *events.CallHeld:
		if live(c) {
			c.State = callcore.StateOnHold
		}
		c.Held = true
	case *events.CallResumed:
		if live(c) {
			c.State = callcore.StateActive
		}
		c.Held = false
	case *events.CallBridged:
		c.BridgedWith = e.PeerSessionID
	case *events.RecordingFinished:
		c.RecordingID = e.RecordingID
	case *events.MediaQualityUpdate:
		m := e.QualityMetrics
		c.Media.Quality = &callcore.CallQuality{MOS: m.MOS, PacketLossPct: m.PacketLossPct, JitterMS: m.JitterMS,
			RttMS: m.RttMS, PacketsSent: m.PacketsSent, PacketsReceived: m.PacketsReceived}
	case *events.MediaStreamStarted:
		if e.Codec != "" {
			c.Media.Codec = e.Codec
		}
	case *events.CallEnded:
		c.State = callcore.StateTerminated
		c.EndedAt = at
		c.EndReason = callcore.EndReason(e.Reason)
		c.SipStatus = e.SipStatus
		c.Held = false
	}
}

// live reports whether c has not ended: a late event (a ringing that
// crossed a hang-up) must not bring a call back.
func live(c *callcore.Call) bool { return c.State != callcore.StateTerminated }

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
