package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
)

// wavSpec describes a WAV file for buildWAV, the hand-built header writer
// that makes the formats EncodeWAV does not.
type wavSpec struct {
	tag        uint16 // format tag; wavExtensible wraps sub
	sub        uint16 // subformat of an extensible file
	guidTail   []byte // replaces the subformat GUID's tail when set
	channels   int
	rate       int
	bits       int
	blockAlign int    // 0: computed
	fmtSize    int    // 0: 16, or 40 for extensible
	dataSize   int64  // -1: len(data)
	before     []byte // raw chunks between fmt and data
	first      []byte // raw chunks before fmt
	riff       string // "" = "RIFF"
	wave       string // "" = "WAVE"
}

func chunk(id string, body []byte) []byte {
	b := append([]byte(id), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(body)))
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0) // pad byte
	}
	return b
}

func buildWAV(s wavSpec, data []byte) []byte {
	if s.blockAlign == 0 {
		s.blockAlign = s.channels * s.bits / 8
	}
	fmtSize := s.fmtSize
	if fmtSize == 0 {
		fmtSize = 16
		if s.tag == wavExtensible {
			fmtSize = 40
		}
	}
	f := make([]byte, max(fmtSize, 40))
	binary.LittleEndian.PutUint16(f[0:], s.tag)
	binary.LittleEndian.PutUint16(f[2:], uint16(s.channels))
	binary.LittleEndian.PutUint32(f[4:], uint32(s.rate))
	binary.LittleEndian.PutUint32(f[8:], uint32(s.rate*s.blockAlign))
	binary.LittleEndian.PutUint16(f[12:], uint16(s.blockAlign))
	binary.LittleEndian.PutUint16(f[14:], uint16(s.bits))
	if s.tag == wavExtensible {
		binary.LittleEndian.PutUint16(f[16:], 22)
		binary.LittleEndian.PutUint16(f[18:], uint16(s.bits))
		binary.LittleEndian.PutUint32(f[20:], 3) // channel mask FL|FR
		binary.LittleEndian.PutUint16(f[24:], s.sub)
		tail := s.guidTail
		if tail == nil {
			tail = wavGUIDTail[:]
		}
		copy(f[26:40], tail)
	}
	body := []byte(orDefault(s.wave, "WAVE"))
	body = append(body, s.first...)
	body = append(body, chunk("fmt ", f[:fmtSize])...)
	body = append(body, s.before...)
	size := s.dataSize
	if size < 0 {
		size = int64(len(data))
	}
	body = append(body, 'd', 'a', 't', 'a', 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(body[len(body)-4:], uint32(size))
	body = append(body, data...)
	out := []byte(orDefault(s.riff, "RIFF"))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// encodeSamples stores int16 channels in a WAV sample format, the way the
// common tools scale them.
func encodeSamples(tag uint16, bits int, channels [][]int16) []byte {
	var b []byte
	for i := range channels[0] {
		for _, c := range channels {
			s := c[i]
			switch {
			case tag == wavUlaw:
				b = append(b, EncodeUlaw(s))
			case tag == wavAlaw:
				b = append(b, EncodeAlaw(s))
			case tag == wavFloat && bits == 32:
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(s)/32768))
			case tag == wavFloat:
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(s)/32768))
			case bits == 8:
				b = append(b, byte(int(s)>>8+128))
			case bits == 16:
				b = binary.LittleEndian.AppendUint16(b, uint16(s))
			case bits == 24:
				v := uint32(int32(s) << 8)
				b = append(b, byte(v), byte(v>>8), byte(v>>16))
			case bits == 32:
				b = binary.LittleEndian.AppendUint32(b, uint32(int32(s)<<16))
			}
		}
	}
	return b
}

func encodeWAV(t testing.TB, rate int, channels ...[]int16) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := EncodeWAV(&buf, rate, channels); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// toneAt returns n samples of a sum of sines at rate.
func toneAt(n, rate int, amp float64, freqs ...float64) []int16 {
	s := make([]int16, n)
	for i := range s {
		var v float64
		for _, f := range freqs {
			v += math.Sin(2 * math.Pi * f * float64(i) / float64(rate))
		}
		s[i] = int16(math.Round(v * amp * 32767 / float64(len(freqs))))
	}
	return s
}

func TestReadWAV44100Stereo(t *testing.T) {
	const secs = 1.5
	n := int(44100 * secs)
	left, right := toneAt(n, 44100, 0.5, 1000), toneAt(n, 44100, 0.5, 1000)
	out, src, err := ReadWAV(bytes.NewReader(encodeWAV(t, 44100, left, right)))
	if err != nil {
		t.Fatal(err)
	}
	if src != (Format{SampleRate: 44100, Channels: 2, BitsPerSample: 16}) {
		t.Errorf("format %+v", src)
	}
	if want := int(secs * 8000); len(out) != want {
		t.Errorf("%d samples, want %d", len(out), want)
	}
	if f := DominantFrequency(out, SampleRate, 100, 3900); math.Abs(f-1000) > 10 {
		t.Errorf("dominant %v Hz, want 1000", f)
	}
	// The filter passes 1 kHz at unity gain (edges excluded: they ramp).
	want := 0.5 * 32767 / math.Sqrt2
	if got := RMS(out[400 : len(out)-400]); math.Abs(got-want) > want*0.01 {
		t.Errorf("RMS %v, want %v", got, want)
	}
}

func TestReadWAVFormats(t *testing.T) {
	const n = 4000
	left := toneAt(n, 8000, 0.7, 1000)
	right := toneAt(n, 8000, 0.3, 440)
	cases := []struct {
		name string
		spec wavSpec
		tol  int // per-sample tolerance of the stored format
	}{
		{"format=pcm8", wavSpec{tag: wavPCM, bits: 8}, 256},
		{"format=pcm16", wavSpec{tag: wavPCM, bits: 16}, 0},
		{"format=pcm24", wavSpec{tag: wavPCM, bits: 24}, 0},
		{"format=pcm32", wavSpec{tag: wavPCM, bits: 32}, 0},
		{"format=float32", wavSpec{tag: wavFloat, bits: 32}, 0},
		{"format=float64", wavSpec{tag: wavFloat, bits: 64}, 0},
		{"format=ulaw", wavSpec{tag: wavUlaw, bits: 8}, 1024},
		{"format=alaw", wavSpec{tag: wavAlaw, bits: 8}, 1024},
		{"format=extensible-pcm24", wavSpec{tag: wavExtensible, sub: wavPCM, bits: 24}, 0},
		{"format=extensible-pcm16", wavSpec{tag: wavExtensible, sub: wavPCM, bits: 16}, 0},
		{"format=extensible-float32", wavSpec{tag: wavExtensible, sub: wavFloat, bits: 32}, 0},
		{"format=pcm16/fmt-18", wavSpec{tag: wavPCM, bits: 16, fmtSize: 18}, 0},
		{"format=pcm16/chunks", wavSpec{tag: wavPCM, bits: 16,
			first:  chunk("JUNK", make([]byte, 27)),
			before: append(chunk("LIST", []byte("INFOISFT\x05\x00\x00\x00test\x00")), chunk("fact", []byte{1, 2, 3, 4})...)}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tag := c.spec.tag
			if tag == wavExtensible {
				tag = c.spec.sub
			}
			spec := c.spec
			spec.channels, spec.rate, spec.dataSize = 2, 8000, -1
			file := buildWAV(spec, encodeSamples(tag, spec.bits, [][]int16{left, right}))

			chans, src, err := ReadWAVChannels(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			wantFmt := Format{SampleRate: 8000, Channels: 2, BitsPerSample: spec.bits, Float: tag == wavFloat}
			if src != wantFmt {
				t.Errorf("format %+v, want %+v", src, wantFmt)
			}
			if len(chans) != 2 || len(chans[0]) != n || len(chans[1]) != n {
				t.Fatalf("got %d channels of %d samples", len(chans), len(chans[0]))
			}
			for ci, want := range [][]int16{left, right} {
				for i := range want {
					if d := int(chans[ci][i]) - int(want[i]); d > c.tol || d < -c.tol {
						t.Fatalf("channel %d sample %d: %d, want %d ± %d", ci, i, chans[ci][i], want[i], c.tol)
					}
				}
			}

			mono, src2, err := ReadWAV(bytes.NewReader(file))
			if err != nil || src2 != src {
				t.Fatalf("ReadWAV: %v, format %+v", err, src2)
			}
			if len(mono) != n {
				t.Fatalf("ReadWAV: %d samples, want %d", len(mono), n)
			}
			for i := range mono {
				avg := (float64(chans[0][i]) + float64(chans[1][i])) / 2
				if math.Abs(float64(mono[i])-avg) > 1 {
					t.Fatalf("mono sample %d: %d, want the channel average %v", i, mono[i], avg)
				}
			}
			if f := DominantFrequency(mono, SampleRate, 100, 3900); math.Abs(f-1000) > 10 {
				t.Errorf("dominant %v Hz", f)
			}
		})
	}
}

func TestReadWAVRates(t *testing.T) {
	cases := []struct {
		rate, channels int
	}{
		{8000, 1}, {11025, 1}, {16000, 3}, {22050, 2}, {32000, 1}, {44100, 6}, {48000, 2}, {96000, 1}, {192000, 1}, {384000, 1}, {4000, 1}, {1000, 1},
		{44099, 1}, {7999, 2}, // odd pairs: the interpolated kernel, not polyphase
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("rate=%d/channels=%d", c.rate, c.channels), func(t *testing.T) {
			n := c.rate / 2 // 0.5 s
			f := 440.0
			if c.rate < 2*1000 {
				f = 300
			}
			chans := make([][]int16, c.channels)
			for i := range chans {
				chans[i] = toneAt(n, c.rate, 0.5, f)
			}
			out, src, err := ReadWAV(bytes.NewReader(encodeWAV(t, c.rate, chans...)))
			if err != nil {
				t.Fatal(err)
			}
			if src.SampleRate != c.rate || src.Channels != c.channels {
				t.Errorf("format %+v", src)
			}
			if len(out) != 4000 {
				t.Errorf("%d samples, want 4000", len(out))
			}
			if got := DominantFrequency(out, SampleRate, 100, 3900); math.Abs(got-f) > 10 {
				t.Errorf("dominant %v Hz, want %v", got, f)
			}
		})
	}
}

// TestReadWAVAntiAlias resamples 48 kHz audio holding 1 kHz and 6 kHz: 6 kHz
// is above the 4 kHz Nyquist frequency of the result, and a resampler
// without a low-pass folds it onto 2 kHz.
func TestReadWAVAntiAlias(t *testing.T) {
	in := toneAt(48000, 48000, 0.8, 1000, 6000)
	inPower := Goertzel(in, 48000, 6000)
	out, _, err := ReadWAV(bytes.NewReader(encodeWAV(t, 48000, in)))
	if err != nil {
		t.Fatal(err)
	}
	alias := Goertzel(out, SampleRate, 2000)
	kept := Goertzel(out, SampleRate, 1000)
	t.Logf("6 kHz in: %.3g; 2 kHz alias out: %.3g (%.1f dB); 1 kHz out: %.3g", inPower, alias, 10*math.Log10(alias/inPower), kept)
	if alias > inPower*1e-6 { // -60 dB
		t.Errorf("aliased 2 kHz power %.3g, not 60 dB under the input's 6 kHz %.3g", alias, inPower)
	}
	if math.Abs(kept-0.16) > 0.01 {
		t.Errorf("1 kHz power %v, want 0.16", kept)
	}
	// The same check on naive decimation shows what it guards against.
	naive := make([]int16, 0, 8000)
	for i := 0; i < len(in); i += 6 {
		naive = append(naive, in[i])
	}
	if p := Goertzel(naive, SampleRate, 2000); p < inPower/2 {
		t.Errorf("naive decimation alias %.3g: the test signal does not alias", p)
	}
}

func TestResample(t *testing.T) {
	in := toneAt(44100, 44100, 0.5, 1000)
	out := Resample(in, 44100, 8000)
	if len(out) != 8000 {
		t.Fatalf("%d samples", len(out))
	}
	// ReadWAV streams the same filter block by block: identical output.
	mono, _, err := ReadWAV(bytes.NewReader(encodeWAV(t, 44100, in)))
	if err != nil {
		t.Fatal(err)
	}
	if !equalInt16(mono, out) {
		t.Error("ReadWAV and Resample differ on the same mono input")
	}
	// Up and back down keeps a passband tone.
	up := Resample(out, 8000, 16000)
	if len(up) != 16000 {
		t.Fatalf("upsampled %d", len(up))
	}
	if f := DominantFrequency(up, 16000, 100, 7900); math.Abs(f-1000) > 1 {
		t.Errorf("upsampled dominant %v", f)
	}
	if p := Goertzel(up, 16000, 7000); p > 1e-6 { // no image of 1 kHz at 7 kHz
		t.Errorf("image at 7 kHz: %v", p)
	}
	// DC passes at unity gain.
	dc := make([]int16, 4410)
	for i := range dc {
		dc[i] = 10000
	}
	for _, to := range []int{8000, 16000, 48000} {
		r := Resample(dc, 44100, to)
		mid := r[len(r)/2]
		if mid < 9990 || mid > 10010 {
			t.Errorf("to=%d: DC 10000 became %d", to, mid)
		}
	}
	// Equal rates copy; bad rates give nil; lengths keep the duration.
	cp := Resample(in[:10], 8000, 8000)
	cp[0] = 12345
	if in[0] == 12345 || len(cp) != 10 {
		t.Error("equal rates did not copy")
	}
	if Resample(in, 0, 8000) != nil || Resample(in, 8000, -1) != nil {
		t.Error("non-positive rates did not give nil")
	}
	for _, c := range []struct{ n, from, to, want int }{{1, 44100, 8000, 1}, {6, 48000, 8000, 1}, {7, 48000, 8000, 2}, {3, 8000, 48000, 18}, {0, 8000, 16000, 0}} {
		if got := len(Resample(make([]int16, c.n), c.from, c.to)); got != c.want {
			t.Errorf("n=%d from=%d to=%d: %d samples, want %d", c.n, c.from, c.to, got, c.want)
		}
	}
}

// TestResamplePaths checks the interpolated kernel against the polyphase
// coefficients on the same rate pairs: they compute the same filter.
func TestResamplePaths(t *testing.T) {
	in := toneAt(11025, 11025, 0.9, 440, 3000, 5000)
	for _, c := range []struct{ from, to int }{{11025, 8000}, {44100, 8000}, {8000, 16000}, {48000, 8000}} {
		t.Run(fmt.Sprintf("from=%d/to=%d", c.from, c.to), func(t *testing.T) {
			poly := newResampler(c.from, c.to)
			interp := newResampler(c.from, c.to)
			if poly.coefs == nil {
				t.Fatal("no polyphase coefficients for a common pair")
			}
			interp.coefs = nil
			block := make([]float64, len(in))
			for i, v := range in {
				block[i] = float64(v)
			}
			a := poly.finish(poly.push(block, nil))
			b := interp.finish(interp.push(block, nil))
			if len(a) != len(b) || len(a) == 0 {
				t.Fatalf("lengths %d, %d", len(a), len(b))
			}
			for i := range a {
				if d := int(a[i]) - int(b[i]); d < -1 || d > 1 {
					t.Fatalf("sample %d: polyphase %d, interpolated %d", i, a[i], b[i])
				}
			}
		})
	}
	if r := newResampler(44099, 8000); r.coefs != nil {
		t.Errorf("44099→8000 precomputed %d coefficients", len(r.coefs))
	}
}

// TestResampleBlocks pushes the same input in blocks of several sizes: the
// output must not depend on the split.
func TestResampleBlocks(t *testing.T) {
	in := toneAt(4410, 44100, 0.9, 440, 3000)
	whole := Resample(in, 44100, 8000)
	for _, size := range []int{1, 7, 100, 4409} {
		r := newResampler(44100, 8000)
		var out []int16
		for i := 0; i < len(in); i += size {
			var block []float64
			for _, v := range in[i:min(i+size, len(in))] {
				block = append(block, float64(v))
			}
			out = r.push(block, out)
		}
		out = r.finish(out)
		if !equalInt16(out, whole) {
			t.Errorf("block=%d: output differs (%d vs %d samples)", size, len(out), len(whole))
		}
	}
}

func equalInt16(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadWAVErrors(t *testing.T) {
	pcm := wavSpec{tag: wavPCM, channels: 1, rate: 8000, bits: 16, dataSize: -1}
	with := func(f func(*wavSpec)) wavSpec { s := pcm; f(&s); return s }
	good := buildWAV(pcm, make([]byte, 100))
	cases := []struct {
		name   string
		file   []byte
		want   error
		detail string
	}{
		{"input=empty", nil, ErrNotWAV, "0-byte"},
		{"input=garbage", []byte("hello, this is not a wave file at all"), ErrNotWAV, "header"},
		{"input=riff-avi", buildWAV(with(func(s *wavSpec) { s.wave = "AVI " }), nil), ErrNotWAV, "AVI"},
		{"input=rf64", buildWAV(with(func(s *wavSpec) { s.riff = "RF64" }), nil), ErrUnsupportedWAV, "RF64"},
		{"input=riff-truncated", []byte("RIFF\x10\x00"), ErrMalformedWAV, "truncated"},
		{"input=no-fmt", []byte("RIFF\x04\x00\x00\x00WAVE"), ErrMalformedWAV, "no fmt chunk"},
		{"input=no-data", good[:36], ErrMalformedWAV, "no data chunk"},
		{"input=data-before-fmt", append([]byte("RIFF\x00\x00\x00\x00WAVE"), chunk("data", []byte{1, 2})...), ErrMalformedWAV, "before fmt"},
		{"input=data-truncated", good[:len(good)-10], ErrMalformedWAV, "truncated at 90 of 100"},
		{"input=fmt-truncated", good[:24], ErrMalformedWAV, "fmt chunk truncated"},
		{"input=fmt-short", buildWAV(with(func(s *wavSpec) { s.fmtSize = 14 }), nil), ErrMalformedWAV, "fmt chunk of 14"},
		{"input=list-truncated", append(good[:36:36], chunk("LIST", make([]byte, 50))[:30]...), ErrMalformedWAV, `"LIST" chunk truncated`},
		{"format=adpcm", buildWAV(with(func(s *wavSpec) { s.tag = 2; s.bits = 4; s.blockAlign = 256 }), nil), ErrUnsupportedWAV, "0x0002"},
		{"format=mp3", buildWAV(with(func(s *wavSpec) { s.tag = 0x55 }), nil), ErrUnsupportedWAV, "0x0055"},
		{"format=pcm12", buildWAV(with(func(s *wavSpec) { s.bits = 12; s.blockAlign = 2 }), nil), ErrUnsupportedWAV, "12-bit"},
		{"format=float16", buildWAV(with(func(s *wavSpec) { s.tag = wavFloat }), nil), ErrUnsupportedWAV, "16-bit"},
		{"format=extensible-short", buildWAV(with(func(s *wavSpec) { s.tag = wavExtensible; s.sub = wavPCM; s.fmtSize = 18 }), nil), ErrMalformedWAV, "extensible"},
		{"format=extensible-guid", buildWAV(with(func(s *wavSpec) { s.tag = wavExtensible; s.sub = wavPCM; s.guidTail = make([]byte, 14) }), nil), ErrUnsupportedWAV, "GUID"},
		{"format=extensible-adpcm", buildWAV(with(func(s *wavSpec) { s.tag = wavExtensible; s.sub = 2 }), nil), ErrUnsupportedWAV, "0x0002"},
		{"channels=0", buildWAV(with(func(s *wavSpec) { s.channels = 0; s.blockAlign = 2 }), nil), ErrMalformedWAV, "0 channels"},
		{"channels=33", buildWAV(with(func(s *wavSpec) { s.channels = 33 }), nil), ErrUnsupportedWAV, "33 channels"},
		{"rate=0", buildWAV(with(func(s *wavSpec) { s.rate = 0 }), nil), ErrMalformedWAV, "0 Hz"},
		{"rate=500000", buildWAV(with(func(s *wavSpec) { s.rate = 500000 }), nil), ErrUnsupportedWAV, "500000 Hz"},
		{"block-align=3", buildWAV(with(func(s *wavSpec) { s.blockAlign = 3 }), nil), ErrMalformedWAV, "block align 3"},
		{"data=100MiB", buildWAV(with(func(s *wavSpec) { s.dataSize = 100 << 20 }), nil), ErrUnsupportedWAV, "limit"},
		{"data=4GiB-2", buildWAV(with(func(s *wavSpec) { s.dataSize = 1<<32 - 2 }), nil), ErrUnsupportedWAV, "limit"},
		{"data=60MiB-truncated", buildWAV(with(func(s *wavSpec) { s.dataSize = 60 << 20 }), make([]byte, 10)), ErrMalformedWAV, "truncated"},
		{"rate=1/upsampled-too-long", buildWAV(with(func(s *wavSpec) { s.rate = 1; s.dataSize = 20000 }), nil), ErrUnsupportedWAV, "over the limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ReadWAV(bytes.NewReader(c.file))
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.detail) {
				t.Errorf("ReadWAV: %v; want %v naming %q", err, c.want, c.detail)
			}
			if c.name == "rate=1/upsampled-too-long" {
				return // only the 8 kHz conversion is too long
			}
			if _, _, err := ReadWAVChannels(bytes.NewReader(c.file)); !errors.Is(err, c.want) {
				t.Errorf("ReadWAVChannels: %v; want %v", err, c.want)
			}
		})
	}
}

func TestReadWAVLenient(t *testing.T) {
	samples := toneAt(800, 8000, 0.5, 1000)
	data := encodeSamples(wavPCM, 16, [][]int16{samples})
	spec := wavSpec{tag: wavPCM, channels: 1, rate: 8000, bits: 16, dataSize: -1}
	cases := []struct {
		name string
		file []byte
		want []int16
	}{
		// A streaming writer's open size reads to the end of the input.
		{"data-size=open", buildWAV(wavSpec{tag: wavPCM, channels: 1, rate: 8000, bits: 16, dataSize: 0xFFFFFFFF}, data), samples},
		// An odd data size drops the partial last sample.
		{"data-size=odd", func() []byte {
			f := buildWAV(spec, append(data, 0x7F))
			return f
		}(), samples},
		// A chunk after data (a trailing LIST) is not read.
		{"trailing-chunk", append(buildWAV(spec, data), chunk("LIST", []byte("abc"))...), samples},
		// A second fmt chunk is ignored: the first one rules.
		{"fmt-twice", buildWAV(wavSpec{tag: wavPCM, channels: 1, rate: 8000, bits: 16, dataSize: -1,
			before: chunk("fmt ", make([]byte, 16))}, data), samples},
		// Zero data is an empty recording, not an error.
		{"data-size=0", buildWAV(spec, nil), []int16{}},
		// A short read source (one byte at a time) changes nothing.
		{"reader=one-byte", nil, samples},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(c.file)
			if c.file == nil {
				r = &oneByteReader{bytes.NewReader(buildWAV(spec, data))}
			}
			out, _, err := ReadWAV(r)
			if err != nil {
				t.Fatal(err)
			}
			if !equalInt16(out, c.want) {
				t.Errorf("got %d samples, want %d (or different values)", len(out), len(c.want))
			}
		})
	}
}

type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

// TestReadWAVBoundedMemory reads headers that claim large sizes over tiny
// inputs: the reader must allocate by what is there, not by what is claimed.
func TestReadWAVBoundedMemory(t *testing.T) {
	files := map[string][]byte{
		"data=60MiB":    buildWAV(wavSpec{tag: wavPCM, channels: 1, rate: 8000, bits: 8, dataSize: 60 << 20}, make([]byte, 100)),
		"data=open":     buildWAV(wavSpec{tag: wavPCM, channels: 32, rate: 8000, bits: 8, dataSize: 0xFFFFFFFF}, make([]byte, 100)),
		"list=4GiB":     append(buildWAV(wavSpec{tag: wavPCM, channels: 1, rate: 8000, bits: 8}, nil)[:36:36], []byte("LIST\xff\xff\xff\xff")...),
		"rate=384k/32c": buildWAV(wavSpec{tag: wavFloat, channels: 32, rate: 384000, bits: 64, dataSize: 60 << 20}, make([]byte, 100)),
	}
	for name, file := range files {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err1 := ReadWAV(bytes.NewReader(file))
			_, _, err2 := ReadWAVChannels(bytes.NewReader(file))
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
				t.Errorf("allocated %d bytes for a %d-byte file (errors %v, %v)", alloc, len(file), err1, err2)
			}
		})
	}
}

// TestReadWAVBadFloats checks NaN and infinities saturate instead of
// poisoning the output.
func TestReadWAVBadFloats(t *testing.T) {
	var data []byte
	for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e30, 0.5, -1} {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	chans, _, err := ReadWAVChannels(bytes.NewReader(buildWAV(wavSpec{tag: wavFloat, channels: 1, rate: 8000, bits: 32, dataSize: -1}, data)))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int16{0, 32767, -32768, 32767, 16384, -32768}; !equalInt16(chans[0], want) {
		t.Errorf("got %v, want %v", chans[0], want)
	}
	out, _, err := ReadWAV(bytes.NewReader(buildWAV(wavSpec{tag: wavFloat, channels: 1, rate: 16000, bits: 32, dataSize: -1}, data)))
	if err != nil || len(out) != 3 {
		t.Fatalf("resampled: %v, %v", out, err)
	}
}

func TestEncodeWAVErrors(t *testing.T) {
	cases := []struct {
		name     string
		rate     int
		channels [][]int16
	}{
		{"channels=0", 8000, nil},
		{"channels=unequal", 8000, [][]int16{{1, 2}, {1}}},
		{"rate=0", 0, [][]int16{{1}}},
		{"channels=33", 8000, make([][]int16, 33)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := EncodeWAV(io.Discard, c.rate, c.channels); err == nil {
				t.Error("no error")
			}
		})
	}
	if err := EncodeWAV(failWriter{}, 8000, [][]int16{{1}}); err == nil {
		t.Error("write error not returned")
	}
	// The header EncodeWAV writes is the canonical 44 bytes.
	b := encodeWAV(t, 16000, []int16{1, -2}, []int16{3, -4})
	want := "RIFF\x2c\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x02\x00\x80\x3e\x00\x00\x00\xfa\x00\x00\x04\x00\x10\x00data\x08\x00\x00\x00" +
		"\x01\x00\x03\x00\xfe\xff\xfc\xff"
	if string(b) != want {
		t.Errorf("bytes\n% X\nwant\n% X", b, []byte(want))
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func FuzzReadWAV(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, src, err := ReadWAV(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrNotWAV) && !errors.Is(err, ErrUnsupportedWAV) && !errors.Is(err, ErrMalformedWAV) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		// Anything ReadWAV accepts, ReadWAVChannels accepts, with the
		// same format and the duration kept by the conversion to 8 kHz.
		chans, src2, err := ReadWAVChannels(bytes.NewReader(b))
		if err != nil || src2 != src || len(chans) != src.Channels {
			t.Fatalf("ReadWAVChannels: %v, %+v vs %+v", err, src2, src)
		}
		frames := int64(len(chans[0]))
		if want := (frames*SampleRate + int64(src.SampleRate) - 1) / int64(src.SampleRate); int64(len(out)) != want {
			t.Fatalf("%d frames at %d Hz gave %d samples, want %d", frames, src.SampleRate, len(out), want)
		}
		if frames*int64(src.Channels*src.BitsPerSample/8) > int64(len(b)) {
			t.Fatalf("%d frames from a %d-byte input", frames, len(b))
		}
	})
}

// fuzzSeeds are tiny valid files of each layout and a few broken ones.
func fuzzSeeds() [][]byte {
	s := []int16{0, 1000, -1000, 32767, -32768, 5}
	return [][]byte{
		buildWAV(wavSpec{tag: wavPCM, channels: 1, rate: 8000, bits: 16, dataSize: -1}, encodeSamples(wavPCM, 16, [][]int16{s})),
		buildWAV(wavSpec{tag: wavPCM, channels: 2, rate: 44100, bits: 8, dataSize: -1}, encodeSamples(wavPCM, 8, [][]int16{s, s})),
		buildWAV(wavSpec{tag: wavFloat, channels: 1, rate: 16000, bits: 32, dataSize: -1}, encodeSamples(wavFloat, 32, [][]int16{s})),
		buildWAV(wavSpec{tag: wavExtensible, sub: wavPCM, channels: 1, rate: 48000, bits: 24, dataSize: -1,
			before: chunk("LIST", []byte("INFOx"))}, encodeSamples(wavPCM, 24, [][]int16{s})),
		buildWAV(wavSpec{tag: wavUlaw, channels: 1, rate: 8000, bits: 8, dataSize: 0xFFFFFFFF}, encodeSamples(wavUlaw, 8, [][]int16{s})),
		[]byte("RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00abcd"),
		[]byte("not a wav"),
	}
}
