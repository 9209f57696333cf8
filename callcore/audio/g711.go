package audio

import (
	"slices"
	"strconv"
	"strings"
)

// SampleRate is the clock rate of G.711 audio and of RFC 4733 telephone
// events, in Hz.
const SampleRate = 8000

// FrameSamples is the number of samples in one 20 ms frame at SampleRate,
// the packetisation callbus uses.
const FrameSamples = 160

// Codec is a G.711 codec identified by its static RTP payload type
// (RFC 3551): PCMU (µ-law) or PCMA (A-law).
type Codec uint8

// The G.711 codecs, by static RTP payload type.
const (
	PCMU Codec = 0
	PCMA Codec = 8
)

// CodecByName returns the codec named "PCMU" or "PCMA" (case-insensitive,
// as SDP rtpmap names are); ok is false for any other name.
func CodecByName(name string) (Codec, bool) {
	switch {
	case strings.EqualFold(name, "PCMU"):
		return PCMU, true
	case strings.EqualFold(name, "PCMA"):
		return PCMA, true
	}
	return 0, false
}

// CodecByPayloadType returns the codec of a static RTP payload type; ok is
// false for any payload type other than 0 (PCMU) and 8 (PCMA), so a packet's
// payload type can be checked before decoding it.
func CodecByPayloadType(pt uint8) (Codec, bool) {
	c := Codec(pt)
	return c, c.Valid()
}

// Valid reports whether c is PCMU or PCMA.
func (c Codec) Valid() bool { return c == PCMU || c == PCMA }

// Name returns the codec's SDP encoding name, "PCMU" or "PCMA"; an invalid
// codec is named "Codec(n)" so that it shows up plainly in logs.
func (c Codec) Name() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	}
	return "Codec(" + strconv.Itoa(int(c)) + ")"
}

// String returns the codec's name, so codecs print readably with %v.
func (c Codec) String() string { return c.Name() }

// PayloadType returns the codec's static RTP payload type (0 or 8).
func (c Codec) PayloadType() uint8 { return uint8(c) }

// Silence returns the code of a zero sample: 0xFF for µ-law, 0xD5 for
// A-law, and 0 for an invalid codec.
func (c Codec) Silence() byte {
	switch c {
	case PCMU:
		return 0xFF
	case PCMA:
		return 0xD5
	}
	return 0
}

// Encode appends the G.711 codes of pcm to dst (one byte per sample) and
// returns the extended slice; it does not allocate when dst has room. An
// invalid codec appends nothing: check Valid (or use CodecByPayloadType)
// first when the codec comes from the network.
func (c Codec) Encode(dst []byte, pcm []int16) []byte {
	var tab *[1 << 16]byte
	switch c {
	case PCMU:
		tab = &tables.ulawEnc
	case PCMA:
		tab = &tables.alawEnc
	default:
		return dst
	}
	n := len(dst)
	dst = slices.Grow(dst, len(pcm))[:n+len(pcm)]
	out := dst[n:]
	for i, s := range pcm {
		out[i] = tab[uint16(s)]
	}
	return dst
}

// Decode appends the linear samples of a G.711 payload to dst and returns
// the extended slice; it does not allocate when dst has room. An invalid
// codec appends nothing.
func (c Codec) Decode(dst []int16, payload []byte) []int16 {
	var tab *[256]int16
	switch c {
	case PCMU:
		tab = &tables.ulawDec
	case PCMA:
		tab = &tables.alawDec
	default:
		return dst
	}
	n := len(dst)
	dst = slices.Grow(dst, len(payload))[:n+len(payload)]
	out := dst[n:]
	for i, b := range payload {
		out[i] = tab[b]
	}
	return dst
}

// Transcode appends src, a payload in codec from, converted to codec to,
// and returns the extended slice. The conversion goes through one 256-entry
// table and equals decoding with from then encoding with to; equal codecs
// copy. An invalid codec appends nothing.
func Transcode(dst []byte, src []byte, from, to Codec) []byte {
	if !from.Valid() || !to.Valid() {
		return dst
	}
	if from == to {
		return append(dst, src...)
	}
	tab := &tables.ulawToAlaw
	if from == PCMA {
		tab = &tables.alawToUlaw
	}
	n := len(dst)
	dst = slices.Grow(dst, len(src))[:n+len(src)]
	out := dst[n:]
	for i, b := range src {
		out[i] = tab[b]
	}
	return dst
}

// EncodeUlaw returns the G.711 µ-law code of a linear sample.
func EncodeUlaw(s int16) byte { return tables.ulawEnc[uint16(s)] }

// DecodeUlaw returns the linear sample of a G.711 µ-law code.
func DecodeUlaw(b byte) int16 { return tables.ulawDec[b] }

// EncodeAlaw returns the G.711 A-law code of a linear sample.
func EncodeAlaw(s int16) byte { return tables.alawEnc[uint16(s)] }

// DecodeAlaw returns the linear sample of a G.711 A-law code.
func DecodeAlaw(b byte) int16 { return tables.alawDec[b] }

// g711Tables holds every G.711 lookup table. The encoders are indexed by
// the sample's 16 bits directly (64 KiB each) because a single load is the
// fastest encoder there is, and the reference algorithm only needs to run
// once per possible sample.
type g711Tables struct {
	ulawEnc    [1 << 16]byte
	alawEnc    [1 << 16]byte
	ulawDec    [256]int16
	alawDec    [256]int16
	ulawToAlaw [256]byte
	alawToUlaw [256]byte
}

// tables is computed once at init from the reference algorithm and only
// read afterwards.
var tables = newG711Tables()

func newG711Tables() *g711Tables {
	t := new(g711Tables)
	for i := range 1 << 16 {
		s := int16(uint16(i))
		t.ulawEnc[i] = linearToUlaw(int(s))
		t.alawEnc[i] = linearToAlaw(int(s))
	}
	for i := range 256 {
		t.ulawDec[i] = ulawToLinear(byte(i))
		t.alawDec[i] = alawToLinear(byte(i))
	}
	for i := range 256 {
		t.ulawToAlaw[i] = t.alawEnc[uint16(t.ulawDec[i])]
		t.alawToUlaw[i] = t.ulawEnc[uint16(t.alawDec[i])]
	}
	return t
}

// The reference conversions below follow the ITU-T G.711 algorithm as
// implemented by the ITU-T G.191 Software Tool Library's g711.c (and Sun's
// g711.c, written in the same shape): 16-bit input, negative samples taken
// by one's complement so that the quantiser is symmetric (x and -x-1 get
// codes that differ only in the sign bit), the low bits below the codec's
// 14-bit (µ-law) or 13-bit (A-law) resolution dropped. Decoded values sit
// inside their code's decision interval, so encode(decode(code)) returns the
// code again: this is what makes end-to-end audio comparisons sample-exact.

const (
	ulawBias = 0x84 // added before segment search so every segment has a leading 1
	ulawClip = 8159 // largest 14-bit magnitude before the bias
)

var (
	ulawSegEnd = [8]int{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}
	alawSegEnd = [8]int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}
)

func segment(v int, ends *[8]int) int {
	for i, e := range ends {
		if v <= e {
			return i
		}
	}
	return 8
}

func linearToUlaw(pcm int) byte {
	mask := 0xFF
	if pcm < 0 {
		pcm = ^pcm // one's complement, as G.191 does: -x quantises like x-1
		mask = 0x7F
	}
	pcm >>= 2
	if pcm > ulawClip {
		pcm = ulawClip
	}
	pcm += ulawBias >> 2
	seg := segment(pcm, &ulawSegEnd)
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	u := seg<<4 | (pcm>>(seg+1))&0xF
	return byte(u ^ mask)
}

func ulawToLinear(u byte) int16 {
	u = ^u
	t := (int(u&0x0F) << 3) + ulawBias
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(ulawBias - t)
	}
	return int16(t - ulawBias)
}

func linearToAlaw(pcm int) byte {
	pcm >>= 3
	mask := 0xD5
	if pcm < 0 {
		mask = 0x55
		pcm = -pcm - 1
	}
	seg := segment(pcm, &alawSegEnd)
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	a := seg << 4
	if seg < 2 {
		a |= (pcm >> 1) & 0xF
	} else {
		a |= (pcm >> seg) & 0xF
	}
	return byte(a ^ mask)
}

func alawToLinear(a byte) int16 {
	a ^= 0x55
	t := int(a&0x0F) << 4
	seg := int(a&0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}
