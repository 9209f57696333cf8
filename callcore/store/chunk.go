package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"
)

// A chunk is the stored form of the events one batch holds for one flow
// key: the call they are attributed to, else the SIP Call-ID they carry
// ("sip:" + Call-ID), else "" for events of no call. A call's events thus
// cost one row per batch instead of one row (and two index entries) each,
// which is where SQLite spent its time.
//
// The frames are kept byte for byte, each as the uvarint of its seq minus
// the chunk's first seq, the uvarint of its length, and the frame; the
// row holds that S2-compressed (packChunk). JSON frames with their SIP
// messages compress about 5×, in about 5 µs for a call's 8 KB: SQLite then
// writes, checkpoints and keeps a fifth of the bytes, which costs far less
// than the compression saves.

// flowKey is the chunk key of an event attributed as a.
func flowKey(a attribution) string {
	switch {
	case a.call != "":
		return a.call
	case a.sip != "":
		return sipKey(a.sip)
	}
	return ""
}

// sipKey is the chunk key of the SIP events of Call-ID sip that no call
// claimed when they were stored.
func sipKey(sip string) string { return "sip:" + sip }

// appendChunkFrame appends the frame of seq to a chunk starting at first.
func appendChunkFrame(b []byte, first, seq uint64, frame []byte) []byte {
	b = binary.AppendUvarint(b, seq-first)
	b = binary.AppendUvarint(b, uint64(len(frame)))
	return append(b, frame...)
}

var errBadChunk = errors.New("store: corrupt event chunk")

// packChunk returns the stored form of the chunk b.
func packChunk(b []byte) []byte { return s2.Encode(nil, b) }

// readChunk calls fn with each event of the stored chunk packed, starting
// at first, in order; the frames alias a buffer of their own. It stops
// early when fn returns false, and returns an error wrapping errBadChunk
// when packed is not a stored chunk.
func readChunk(packed []byte, first uint64, fn func(seq uint64, frame []byte) bool) error {
	b, err := s2.Decode(nil, packed)
	if err != nil {
		return fmt.Errorf("%w: %v", errBadChunk, err)
	}
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return errBadChunk
		}
		b = b[n:]
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return errBadChunk
		}
		b = b[n:]
		if !fn(first+d, b[:l:l]) {
			return nil
		}
		b = b[l:]
	}
	return nil
}
