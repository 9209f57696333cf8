package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors of the RFC 4733 helpers.
var (
	// ErrShortDTMF is returned for a telephone-event payload under 4 bytes.
	ErrShortDTMF = errors.New("telephone-event payload shorter than 4 bytes")
	// ErrInvalidDigit is returned for a DTMF digit outside 0-9 * # A-D.
	ErrInvalidDigit = errors.New("invalid DTMF digit")
	// ErrInvalidDTMFTiming is returned for a digit duration or ptime out of range.
	ErrInvalidDTMFTiming = errors.New("invalid DTMF timing")
)

// DTMFEvent is one RFC 4733 telephone-event payload (§2.3): the event code
// (0-15 for DTMF digits), the end bit, the volume in -dBm0 (0..63) and the
// duration in timestamp units (8 kHz) since the event's RTP timestamp.
type DTMFEvent struct {
	Event    uint8
	End      bool
	Volume   uint8
	Duration uint16
}

// ParseDTMFEvent decodes the first 4 bytes of a telephone-event payload.
// Bytes beyond 4 (RFC 4733 redundancy blocks, or padding) are ignored: the
// first block is the current event. It returns ErrShortDTMF for fewer than 4
// bytes. The reserved bit is ignored, as §2.3 asks of receivers.
func ParseDTMFEvent(payload []byte) (DTMFEvent, error) {
	if len(payload) < 4 {
		return DTMFEvent{}, fmt.Errorf("parse telephone-event: %d bytes: %w", len(payload), ErrShortDTMF)
	}
	return DTMFEvent{
		Event:    payload[0],
		End:      payload[1]&0x80 != 0,
		Volume:   payload[1] & 0x3F,
		Duration: binary.BigEndian.Uint16(payload[2:4]),
	}, nil
}

// Marshal appends the event's 4-byte payload to dst and returns the
// extended slice; a Volume above 63 keeps only its low 6 bits.
func (e DTMFEvent) Marshal(dst []byte) []byte {
	b := e.Volume & 0x3F
	if e.End {
		b |= 0x80
	}
	return append(dst, e.Event, b, byte(e.Duration>>8), byte(e.Duration))
}

// DigitEvent returns the RFC 4733 event code of a DTMF digit: '0'-'9' are
// 0-9, '*' is 10, '#' is 11, 'A'-'D' (or 'a'-'d') are 12-15; ok is false for
// anything else.
func DigitEvent(digit byte) (uint8, bool) {
	switch {
	case digit >= '0' && digit <= '9':
		return digit - '0', true
	case digit == '*':
		return 10, true
	case digit == '#':
		return 11, true
	case digit >= 'A' && digit <= 'D':
		return digit - 'A' + 12, true
	case digit >= 'a' && digit <= 'd':
		return digit - 'a' + 12, true
	}
	return 0, false
}

// EventDigit returns the DTMF digit of an RFC 4733 event code 0-15
// ('A'-'D' in upper case); ok is false for other events (flash, tones).
func EventDigit(ev uint8) (byte, bool) {
	switch {
	case ev <= 9:
		return '0' + ev, true
	case ev == 10:
		return '*', true
	case ev == 11:
		return '#', true
	case ev <= 15:
		return 'A' + ev - 12, true
	}
	return 0, false
}

// ValidDigits returns nil when s is a non-empty string of DTMF digits
// 0-9 * # A-D (upper case only, the form the API documents). Otherwise it
// returns an error wrapping ErrInvalidDigit that names the first bad
// character and its position.
func ValidDigits(s string) error {
	if s == "" {
		return fmt.Errorf("%w: no digits", ErrInvalidDigit)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'd' {
			return fmt.Errorf("%w %q at position %d (A-D must be upper case)", ErrInvalidDigit, rune(c), i)
		}
		if _, ok := DigitEvent(c); !ok {
			return fmt.Errorf("%w %q at position %d", ErrInvalidDigit, rune(c), i)
		}
	}
	return nil
}

// dtmfHistory is how many reported events the receiver remembers, so that
// late redundant or reordered packets of an event never report it twice.
const dtmfHistory = 16

// DTMFReceiver turns received RFC 4733 telephone-event packets into digits,
// each reported exactly once. An event is identified by its RTP timestamp.
// A digit is reported when the first end packet of its event arrives (the
// redundant end packets after it are ignored); when every end packet was
// lost, when a packet of a newer event arrives; or when Flush is called.
// The start (marker) packet is not needed. Packets of an event older than
// the newest one seen, if that event was never seen before, are ignored as
// stale. Events other than the 16 DTMF digits are ignored. The zero value is
// ready to use; a DTMFReceiver is not safe for concurrent use.
type DTMFReceiver struct {
	open    bool   // an event is in progress and not reported yet
	cur     uint32 // RTP timestamp of the open event
	ev      uint8  // event code of the open event
	dur     uint16 // longest duration seen for the open event
	newest  uint32 // newest event timestamp seen
	started bool   // newest is valid

	done  [dtmfHistory]uint32 // timestamps of reported events (ring)
	ndone int

	queue  [2]dtmfDigit // digits completed but not returned yet
	queued int
}

type dtmfDigit struct {
	digit byte
	ms    int
}

// Feed processes one received telephone-event packet, given its RTP
// timestamp and payload. When the packet completes a digit it returns the
// digit, its duration in milliseconds and ok=true. A packet can complete
// two digits at once (a lost end followed by an event whose first packet
// received is its end); the second is returned by the next Feed or Flush.
// It returns ErrShortDTMF (wrapped) for a payload under 4 bytes.
func (r *DTMFReceiver) Feed(timestamp uint32, payload []byte) (digit byte, durationMS int, ok bool, err error) {
	e, err := ParseDTMFEvent(payload)
	if err != nil {
		return 0, 0, false, err
	}
	r.feed(timestamp, e)
	d, ok := r.pop()
	return d.digit, d.ms, ok, nil
}

func (r *DTMFReceiver) feed(ts uint32, e DTMFEvent) {
	if _, isDigit := EventDigit(e.Event); !isDigit {
		return
	}
	if r.open && ts == r.cur {
		r.dur = max(r.dur, e.Duration)
		if e.End {
			r.close()
		}
		return
	}
	if r.reported(ts) {
		return // a redundant end, a duplicate or a late packet of a reported event
	}
	if r.started && int32(ts-r.newest) < 0 {
		return // stale: an older event that was never seen
	}
	if r.open {
		r.close() // every end packet of the open event was lost
	}
	r.open, r.cur, r.ev, r.dur = true, ts, e.Event, e.Duration
	r.newest, r.started = ts, true
	if e.End {
		r.close()
	}
}

// close reports the open event.
func (r *DTMFReceiver) close() {
	r.open = false
	r.done[r.ndone%dtmfHistory] = r.cur
	r.ndone++
	d, _ := EventDigit(r.ev)
	if r.queued < len(r.queue) {
		r.queue[r.queued] = dtmfDigit{digit: d, ms: int(r.dur) * 1000 / SampleRate}
		r.queued++
	}
}

func (r *DTMFReceiver) reported(ts uint32) bool {
	for i := range min(r.ndone, dtmfHistory) {
		if r.done[i] == ts {
			return true
		}
	}
	return false
}

func (r *DTMFReceiver) pop() (dtmfDigit, bool) {
	if r.queued == 0 {
		return dtmfDigit{}, false
	}
	d := r.queue[0]
	copy(r.queue[:], r.queue[1:r.queued])
	r.queued--
	return d, true
}

// Flush reports a digit that is complete but not returned yet, or else the
// event still open (its end packets lost or not arrived yet), as if it had
// ended. Call it until ok is false at the end of a stream.
func (r *DTMFReceiver) Flush() (digit byte, durationMS int, ok bool) {
	if r.queued == 0 && r.open {
		r.close()
	}
	d, ok := r.pop()
	return d.digit, d.ms, ok
}

// dtmfEndPackets is how many identical end packets a digit ends with
// (RFC 4733 §2.5.1.4 recommends three).
const dtmfEndPackets = 3

// DTMFVolume is the volume (-dBm0) DTMFSender puts in its events.
const DTMFVolume = 10

// DTMFSender produces the RFC 4733 packet sequence of one digit, one packet
// per ptime tick, all to be sent with the same RTP timestamp (the caller's
// timestamp when the digit starts): first a packet with the marker set and a
// duration of one tick, then one per tick with the duration growing by one
// tick until the digit's duration is reached (the last growth may be
// shorter), then three identical end packets carrying the final duration.
// A 100 ms digit at 20 ms ptime is 5 packets (durations 160, 320, 480, 640,
// 800) then 3 end packets (800): 8 packets, 8 ticks. A DTMFSender is not
// safe for concurrent use.
type DTMFSender struct {
	event uint8
	tick  int // samples per packet
	total int // final duration in samples
	n     int // packets returned so far
	grow  int // packets before the end packets
}

// NewDTMFSender returns the sender of one digit lasting durationMS at a
// packet time of ptimeMS. It returns an error wrapping ErrInvalidDigit for a
// digit outside 0-9 * # A-D (a-d accepted), or ErrInvalidDTMFTiming unless
// 1 <= ptimeMS <= durationMS <= 8000 (the 16-bit duration field holds up to
// 8.19 s at 8 kHz).
func NewDTMFSender(digit byte, durationMS, ptimeMS int) (*DTMFSender, error) {
	ev, ok := DigitEvent(digit)
	if !ok {
		return nil, fmt.Errorf("dtmf sender: %w %q", ErrInvalidDigit, rune(digit))
	}
	if ptimeMS < 1 || durationMS < ptimeMS || durationMS > 8000 {
		return nil, fmt.Errorf("dtmf sender: duration %d ms, ptime %d ms: %w", durationMS, ptimeMS, ErrInvalidDTMFTiming)
	}
	tick := ptimeMS * SampleRate / 1000
	total := durationMS * SampleRate / 1000
	return &DTMFSender{event: ev, tick: tick, total: total, grow: (total + tick - 1) / tick}, nil
}

// Packets returns how many packets the digit takes in all, end packets
// included: ceil(duration/ptime) + 3.
func (s *DTMFSender) Packets() int { return s.grow + dtmfEndPackets }

// Next returns the next packet of the sequence and whether it carries the
// RTP marker. done is true with the last packet (the third end packet) and
// on every call after it, which repeats that end packet; so both
// "send, then stop if done" and "stop if done, else send" loops are safe
// (the latter sends one end packet fewer, still redundant).
func (s *DTMFSender) Next() (ev DTMFEvent, marker bool, done bool) {
	ev = DTMFEvent{Event: s.event, Volume: DTMFVolume}
	if s.n < s.grow {
		ev.Duration = uint16(min((s.n+1)*s.tick, s.total))
		marker = s.n == 0
		s.n++
		return ev, marker, false
	}
	ev.End = true
	ev.Duration = uint16(s.total)
	if s.n < s.Packets() {
		s.n++
	}
	return ev, false, s.n >= s.Packets()
}
