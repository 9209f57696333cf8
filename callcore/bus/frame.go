package bus

import (
	"errors"
	"sync/atomic"

	"github.com/callbus/callbus/callcore/events"
)

// frameCacheSize is how many recent control-plane frames the bus keeps
// for its taps to share, a power of two. Taps within this many seqs of
// each other (the store, the feed's clients) marshal each event once
// between them; a tap further behind marshals what it reads itself.
const frameCacheSize = 1 << 13

// frameCache holds the encoded frames of recent control-plane events by
// seq. A frame is immutable once stored; a slot is reused by the event
// frameCacheSize seqs later, which the seq and id check tells apart.
type frameCache struct {
	slots [frameCacheSize]atomic.Pointer[cachedFrame]
}

type cachedFrame struct {
	seq uint64
	id  events.ID
	b   []byte
}

// errNoEvent is Frame's error for a gap record.
var errNoEvent = errors.New("bus: record has no event (a gap)")

// Frame returns the record's event as the §6 JSON frame (events.Marshal),
// which every reader of the same event shares: the first tap to ask
// encodes it, later ones get the same bytes, which no one may modify.
// encoded reports whether this call did the encoding. RTP packet events
// (no seq) are encoded on each call. It returns events.Marshal's error, or
// an error for a gap record.
func (r Record) Frame() (b []byte, encoded bool, err error) {
	if r.Event == nil {
		return nil, false, errNoEvent
	}
	seq := r.Envelope.Seq
	if r.frames == nil || seq == 0 {
		b, err = events.Marshal(r.Envelope, r.Event)
		return b, true, err
	}
	slot := &r.frames.slots[seq%frameCacheSize]
	if c := slot.Load(); c != nil && c.seq == seq && c.id == r.Envelope.ID {
		return c.b, false, nil
	}
	if b, err = events.Marshal(r.Envelope, r.Event); err != nil {
		return nil, true, err
	}
	slot.Store(&cachedFrame{seq: seq, id: r.Envelope.ID, b: b})
	return b, true, nil
}
