package events

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// ID identifies one published event. Hi is chosen at random when a bus
// starts and Lo counts the events it publishes, so IDs are unique across
// nodes and restarts without coordination and cost one atomic add to make.
// The zero ID means "none" (an event published outside any handler has no
// cause).
type ID struct {
	Hi, Lo uint64
}

const idPrefix = "ev_"

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// String formats id as "ev_" followed by 32 hex digits, or "" for the zero ID.
func (id ID) String() string {
	if id.IsZero() {
		return ""
	}
	var b [len(idPrefix) + 32]byte
	copy(b[:], idPrefix)
	putHex(b[len(idPrefix):], id.Hi)
	putHex(b[len(idPrefix)+16:], id.Lo)
	return string(b[:])
}

func putHex(dst []byte, v uint64) {
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		dst[i] = digits[v&0xf]
		v >>= 4
	}
}

// ParseID parses the form String produces; "" parses to the zero ID.
// It returns an error naming the input when it is not an event id.
func ParseID(s string) (ID, error) {
	if s == "" {
		return ID{}, nil
	}
	h, ok := strings.CutPrefix(s, idPrefix)
	if !ok || len(h) != 32 {
		return ID{}, fmt.Errorf("event id %q: want %q and 32 hex digits", s, idPrefix)
	}
	var raw [16]byte
	if _, err := hex.Decode(raw[:], []byte(h)); err != nil {
		return ID{}, fmt.Errorf("event id %q: %w", s, err)
	}
	var id ID
	for i := 0; i < 8; i++ {
		id.Hi = id.Hi<<8 | uint64(raw[i])
		id.Lo = id.Lo<<8 | uint64(raw[8+i])
	}
	return id, nil
}

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Envelope is what the bus adds to every published event (DESIGN.md §2).
type Envelope struct {
	// Seq is the node-wide, contiguous sequence number of a control-plane
	// event; 0 for data-plane (RTP packet) events.
	Seq uint64
	// ID identifies this event.
	ID ID
	// Time is when the event was published.
	Time time.Time
	// Node is the id of the node that published the event.
	Node string
	// Cause is the ID of the event whose handler published this one, or zero.
	Cause ID
}
