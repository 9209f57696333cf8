package audio

import (
	"bytes"
	"fmt"
	"math"
	"testing"
)

var codecs = []Codec{PCMU, PCMA}

// refUlaw and refAlaw decode a G.711 code by the closed formulas of the
// recommendation's tables, independently of the table-building code.
func refUlaw(b byte) int16 {
	c := ^b
	e, m := int(c>>4&7), int(c&15)
	mag := (((2*m + 33) << e) - 33) * 4
	if c&0x80 != 0 {
		return int16(-mag)
	}
	return int16(mag)
}

func refAlaw(b byte) int16 {
	c := b ^ 0x55
	e, m := int(c>>4&7), int(c&15)
	mag := 2*m + 1
	if e > 0 {
		mag = (2*m + 33) << (e - 1)
	}
	mag *= 8
	if c&0x80 == 0 {
		return int16(-mag)
	}
	return int16(mag)
}

func TestG711KnownValues(t *testing.T) {
	cases := []struct {
		name string
		got  int
		want int
	}{
		{"ulaw=0xFF/decode", int(DecodeUlaw(0xFF)), 0},
		{"ulaw=0x7F/decode", int(DecodeUlaw(0x7F)), 0},
		{"ulaw=0x00/decode", int(DecodeUlaw(0x00)), -32124},
		{"ulaw=0x80/decode", int(DecodeUlaw(0x80)), 32124},
		{"ulaw=0xFE/decode", int(DecodeUlaw(0xFE)), 8},
		{"ulaw=0x7E/decode", int(DecodeUlaw(0x7E)), -8},
		{"alaw=0xD5/decode", int(DecodeAlaw(0xD5)), 8},
		{"alaw=0x55/decode", int(DecodeAlaw(0x55)), -8},
		{"alaw=0xAA/decode", int(DecodeAlaw(0xAA)), 32256},
		{"alaw=0x2A/decode", int(DecodeAlaw(0x2A)), -32256},
		{"ulaw/encode=0", int(EncodeUlaw(0)), 0xFF},
		{"ulaw/encode=32767", int(EncodeUlaw(32767)), 0x80},
		{"ulaw/encode=-32768", int(EncodeUlaw(-32768)), 0x00},
		{"ulaw/encode=1000", int(EncodeUlaw(1000)), 0xCE},
		// G.191 takes negatives by one's complement; Sun's g711.c (and
		// Python's audioop) give 0x00 here, on the decision boundary.
		{"ulaw/encode=-31609", int(EncodeUlaw(-31609)), 0x01},
		{"ulaw/encode=-1", int(EncodeUlaw(-1)), 0x7F},
		{"alaw/encode=0", int(EncodeAlaw(0)), 0xD5},
		{"alaw/encode=-1", int(EncodeAlaw(-1)), 0x55},
		{"alaw/encode=32767", int(EncodeAlaw(32767)), 0xAA},
		{"alaw/encode=-32768", int(EncodeAlaw(-32768)), 0x2A},
		{"alaw/encode=1000", int(EncodeAlaw(1000)), 0xFA},
		{"silence=PCMU", int(PCMU.Silence()), 0xFF},
		{"silence=PCMA", int(PCMA.Silence()), 0xD5},
		{"silence=PCMU/decodes=0", int(DecodeUlaw(PCMU.Silence())), 0},
		{"silence=PCMA/decodes=8", int(DecodeAlaw(PCMA.Silence())), 8},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %d (0x%X), want %d (0x%X)", c.name, c.got, c.got, c.want, c.want)
		}
	}
}

func TestG711DecodeMatchesFormula(t *testing.T) {
	for i := range 256 {
		b := byte(i)
		if got, want := DecodeUlaw(b), refUlaw(b); got != want {
			t.Errorf("ulaw=0x%02X: decode %d, formula %d", b, got, want)
		}
		if got, want := DecodeAlaw(b), refAlaw(b); got != want {
			t.Errorf("alaw=0x%02X: decode %d, formula %d", b, got, want)
		}
	}
}

func TestG711RoundTripIdempotent(t *testing.T) {
	for _, c := range codecs {
		t.Run("codec="+c.Name(), func(t *testing.T) {
			for i := range 256 {
				d := c.Decode(nil, []byte{byte(i)})[0]
				e := c.Encode(nil, []int16{d})[0]
				if d2 := c.Decode(nil, []byte{e})[0]; d2 != d {
					t.Errorf("code 0x%02X: decode %d, re-encode 0x%02X, decode %d", i, d, e, d2)
				}
				// Every code but µ-law's negative zero encodes back to itself.
				if e != byte(i) && !(c == PCMU && i == 0x7F) {
					t.Errorf("code 0x%02X re-encodes to 0x%02X", i, e)
				}
			}
		})
	}
}

// codeStep returns the width, in 16-bit units, of the decision interval
// of a G.711 code (the distance between adjacent levels of its segment).
func codeStep(c Codec, b byte) int {
	if c == PCMU {
		return 8 << (^b >> 4 & 7)
	}
	e := (b ^ 0x55) >> 4 & 7
	if e == 0 {
		return 16
	}
	return 16 << (e - 1)
}

// TestG711Quantisation checks every 16-bit sample: the decoded value never
// decreases as the input grows, the input lies within half a step of its
// level (its decision interval) unless it is beyond the largest level, and
// x and -x-1 get codes that differ only in the sign bit.
func TestG711Quantisation(t *testing.T) {
	for _, c := range codecs {
		t.Run("codec="+c.Name(), func(t *testing.T) {
			top := float64(DecodeUlaw(0x80)) // largest level
			if c == PCMA {
				top = float64(DecodeAlaw(0xAA))
			}
			prev := math.Inf(-1)
			for x := -32768; x <= 32767; x++ {
				code := c.Encode(nil, []int16{int16(x)})[0]
				got := float64(c.Decode(nil, []byte{code})[0])
				if got < prev {
					t.Fatalf("not monotonic: %d decodes to %v, %d to %v", x-1, prev, x, got)
				}
				prev = got
				half := float64(codeStep(c, code)) / 2
				if math.Abs(float64(x)) <= top+half {
					// One unit of slack: -x is quantised like x-1.
					if d := math.Abs(got - float64(x)); d > half+1 {
						t.Fatalf("%d quantises to %v: error %v, beyond half a step (%v)", x, got, d, half)
					}
				} else if math.Abs(got) != top {
					t.Fatalf("%d beyond the largest level %v quantises to %v", x, top, got)
				}
				if x >= 0 {
					if neg := c.Encode(nil, []int16{int16(^x)})[0]; neg^code != 0x80 {
						t.Fatalf("%d codes 0x%02X but %d codes 0x%02X: not symmetric", x, code, ^x, neg)
					}
				}
			}
		})
	}
}

func TestCodecEncodeDecodeAppend(t *testing.T) {
	pcm := []int16{0, 1000, -1000, 32767, -32768, 8, -8}
	for _, c := range codecs {
		t.Run("codec="+c.Name(), func(t *testing.T) {
			enc := c.Encode([]byte{0xAB}, pcm)
			if len(enc) != 1+len(pcm) || enc[0] != 0xAB {
				t.Fatalf("Encode did not append: % X", enc)
			}
			for i, s := range pcm {
				want := EncodeUlaw(s)
				if c == PCMA {
					want = EncodeAlaw(s)
				}
				if enc[1+i] != want {
					t.Errorf("sample %d: 0x%02X, want 0x%02X", s, enc[1+i], want)
				}
			}
			dec := c.Decode([]int16{7}, enc[1:])
			if len(dec) != 1+len(pcm) || dec[0] != 7 {
				t.Fatalf("Decode did not append: %v", dec)
			}
			for i, b := range enc[1:] {
				want := DecodeUlaw(b)
				if c == PCMA {
					want = DecodeAlaw(b)
				}
				if dec[1+i] != want {
					t.Errorf("code 0x%02X: %d, want %d", b, dec[1+i], want)
				}
			}
		})
	}
}

func TestCodecNoAllocs(t *testing.T) {
	pcm := make([]int16, FrameSamples)
	enc := make([]byte, 0, FrameSamples)
	dec := make([]int16, 0, FrameSamples)
	tr := make([]byte, 0, FrameSamples)
	for _, c := range codecs {
		if a := testing.AllocsPerRun(100, func() { enc = c.Encode(enc[:0], pcm) }); a != 0 {
			t.Errorf("codec=%s: Encode allocates %v times", c, a)
		}
		if a := testing.AllocsPerRun(100, func() { dec = c.Decode(dec[:0], enc) }); a != 0 {
			t.Errorf("codec=%s: Decode allocates %v times", c, a)
		}
		if a := testing.AllocsPerRun(100, func() { tr = Transcode(tr[:0], enc, c, PCMU+PCMA-c) }); a != 0 {
			t.Errorf("codec=%s: Transcode allocates %v times", c, a)
		}
	}
}

func TestTranscode(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, from := range codecs {
		for _, to := range codecs {
			t.Run(fmt.Sprintf("from=%s/to=%s", from, to), func(t *testing.T) {
				got := Transcode([]byte{1, 2}, all, from, to)
				want := to.Encode([]byte{1, 2}, from.Decode(nil, all))
				if from == to {
					want = append([]byte{1, 2}, all...)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("Transcode differs from decode+encode:\n got % X\nwant % X", got, want)
				}
			})
		}
	}
	if got := Transcode(nil, all, PCMU, Codec(18)); len(got) != 0 {
		t.Errorf("transcode to an invalid codec appended %d bytes", len(got))
	}
}

func TestCodecNames(t *testing.T) {
	cases := []struct {
		name string
		want Codec
		ok   bool
	}{
		{"PCMU", PCMU, true}, {"pcmu", PCMU, true}, {"PcMa", PCMA, true}, {"PCMA", PCMA, true},
		{"G729", 0, false}, {"", 0, false}, {"PCM", 0, false},
	}
	for _, c := range cases {
		t.Run("name="+c.name, func(t *testing.T) {
			got, ok := CodecByName(c.name)
			if ok != c.ok || (ok && got != c.want) {
				t.Errorf("CodecByName(%q) = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
			}
			if ok && got.Name() != map[Codec]string{PCMU: "PCMU", PCMA: "PCMA"}[got] {
				t.Errorf("Name() = %q", got.Name())
			}
		})
	}
	if PCMU.PayloadType() != 0 || PCMA.PayloadType() != 8 {
		t.Errorf("payload types %d, %d", PCMU.PayloadType(), PCMA.PayloadType())
	}
	for pt := range 256 {
		c, ok := CodecByPayloadType(uint8(pt))
		if ok != (pt == 0 || pt == 8) || (ok && c.PayloadType() != uint8(pt)) {
			t.Errorf("CodecByPayloadType(%d) = %v, %v", pt, c, ok)
		}
	}
	bad := Codec(101)
	if bad.Valid() || bad.Name() != "Codec(101)" || len(bad.Encode(nil, []int16{1})) != 0 || len(bad.Decode(nil, []byte{1})) != 0 {
		t.Errorf("invalid codec: Valid %v, Name %q", bad.Valid(), bad.Name())
	}
}

func BenchmarkEncodeFrame(b *testing.B) {
	pcm := make([]int16, FrameSamples)
	NewTone(0.5, 1000).Fill(pcm)
	dst := make([]byte, 0, FrameSamples)
	for _, c := range codecs {
		b.Run("codec="+c.Name(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(FrameSamples * 2)
			for b.Loop() {
				dst = c.Encode(dst[:0], pcm)
			}
		})
	}
}

func BenchmarkDecodeFrame(b *testing.B) {
	pcm := make([]int16, FrameSamples)
	NewTone(0.5, 1000).Fill(pcm)
	dst := make([]int16, 0, FrameSamples)
	for _, c := range codecs {
		payload := c.Encode(nil, pcm)
		b.Run("codec="+c.Name(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(FrameSamples)
			for b.Loop() {
				dst = c.Decode(dst[:0], payload)
			}
		})
	}
}

func BenchmarkTranscodeFrame(b *testing.B) {
	pcm := make([]int16, FrameSamples)
	NewTone(0.5, 1000).Fill(pcm)
	payload := PCMU.Encode(nil, pcm)
	dst := make([]byte, 0, FrameSamples)
	b.ReportAllocs()
	for b.Loop() {
		dst = Transcode(dst[:0], payload, PCMU, PCMA)
	}
}
