package sdp

import "strings"

// Direction is a media direction attribute (RFC 4566 §6, RFC 3264 §5.1):
// whether a stream's owner sends, receives, both or neither.
type Direction string

// The media directions, spelled as their SDP attributes. They equal the
// bus vocabulary's events.MediaSendRecv and friends.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// Valid reports whether d is one of the four directions.
func (d Direction) Valid() bool {
	switch d {
	case SendRecv, SendOnly, RecvOnly, Inactive:
		return true
	}
	return false
}

// Sends reports whether the side with direction d sends media.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether the side with direction d receives media.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// Mirror returns the direction that answers an offer of d when the
// answerer is willing to do anything (RFC 3264 §6.1): sendonly is answered
// recvonly, recvonly sendonly, inactive inactive, and anything else
// (sendrecv, or an invalid d) sendrecv.
func (d Direction) Mirror() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

// Intersect returns the direction that sends only when both d and e send
// and receives only when both receive. The answer to an offer o by an
// answerer that would like w is w.Intersect(o.Mirror()).
func (d Direction) Intersect(e Direction) Direction {
	send, recv := d.Sends() && e.Sends(), d.Receives() && e.Receives()
	switch {
	case send && recv:
		return SendRecv
	case send:
		return SendOnly
	case recv:
		return RecvOnly
	}
	return Inactive
}

// directionOf returns the direction an SDP line sets ("a=sendonly",
// trailing blanks and CRs allowed), or "".
func directionOf(line string) Direction {
	if v, ok := strings.CutPrefix(strings.TrimRight(line, " \t\r"), "a="); ok {
		if d := Direction(v); d.Valid() {
			return d
		}
	}
	return ""
}
