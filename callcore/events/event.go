// Package events is the catalogue of every event that crosses a layer
// boundary in callbus (DESIGN.md §3): one Go type per event, grouped by
// channel in one file per channel, a registry from (channel, type) to Go
// type, the JSON envelope codec, and the catalogue derived from the types.
package events

// Event is a message on the bus. Every implementation is a pointer to a
// struct of this package with JSON tags.
type Event interface {
	// Channel names the bus channel, e.g. "dialog_to_session".
	Channel() string
	// Type names the event within its channel, e.g. "IncomingCall".
	Type() string
	// Key is the ordering key: the session id, else the SIP Call-ID, else
	// the transaction id. Events with the same key reach each subscriber in
	// publish order. The bus refuses an event whose key is empty.
	Key() string
}

// DataPlane marks the RTP packet events (SendRtpPacket, RtpPacketReceived).
// They carry no feed seq and are streamed only when asked for by name.
type DataPlane interface {
	Event
	dataPlane()
}

// IsDataPlane reports whether ev is an RTP packet event.
func IsDataPlane(ev Event) bool {
	_, ok := ev.(DataPlane)
	return ok
}

// SessionScoped is implemented by events that belong to one call session.
type SessionScoped interface {
	Event
	Session() string
}

// SessionRef is embedded by every event that names its call session; its
// session id is the event's ordering key.
type SessionRef struct {
	SessionID string `json:"session_id"`
}

// Key returns the session id.
func (r SessionRef) Key() string { return r.SessionID }

// Session returns the session id.
func (r SessionRef) Session() string { return r.SessionID }

// SessionOf returns the session id of ev, or "" when ev belongs to no session.
func SessionOf(ev Event) string {
	if s, ok := ev.(SessionScoped); ok {
		return s.Session()
	}
	return ""
}
