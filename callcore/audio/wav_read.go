package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Errors of the WAV reader; every error it returns wraps one of them.
var (
	// ErrNotWAV means the input is not a RIFF/WAVE file.
	ErrNotWAV = errors.New("not a RIFF/WAVE file")
	// ErrUnsupportedWAV means a valid WAV file this package does not decode:
	// a compressed format, an odd sample size, too many channels, too high a
	// rate, or more audio than MaxWAVBytes.
	ErrUnsupportedWAV = errors.New("unsupported WAV file")
	// ErrMalformedWAV means a broken WAV file: truncated, missing its fmt or
	// data chunk, or with inconsistent sizes.
	ErrMalformedWAV = errors.New("malformed WAV file")
)

// Limits of the WAV reader.
const (
	// MaxWAVBytes is the largest data chunk ReadWAV accepts (64 MiB), and
	// the most audio it returns once converted to 8 kHz int16, so that a
	// file's header can never make it allocate without bound.
	MaxWAVBytes = 64 << 20
	// MaxWAVRate and MaxWAVChannels bound the formats ReadWAV accepts.
	MaxWAVRate     = 384000
	MaxWAVChannels = 32
	// maxFmtBytes bounds the fmt chunk (40 bytes for the extensible format).
	maxFmtBytes = 1024
)

// WAVE format tags (mmreg.h).
const (
	wavPCM        = 1
	wavFloat      = 3
	wavAlaw       = 6
	wavUlaw       = 7
	wavExtensible = 0xFFFE
)

// wavGUIDTail is the KSDATAFORMAT_SUBTYPE GUID after its first two bytes,
// which hold the format tag of the subformat.
var wavGUIDTail = [14]byte{0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71}

// Format describes the audio of a WAV file as stored: sample rate (Hz),
// channel count, bits per stored sample and whether samples are IEEE
// floats. A G.711 WAV (A-law or µ-law) reports 8 bits, not float.
type Format struct {
	SampleRate, Channels, BitsPerSample int
	Float                               bool
}

// wavInfo is what the reader learnt from the header, up to the data chunk.
type wavInfo struct {
	format Format
	tag    uint16 // 1, 3, 6 or 7: extensible resolved to its subformat
	frame  int    // bytes per frame (all channels)
	size   int64  // data bytes, or -1 when the header leaves it open
}

// ReadWAV decodes a RIFF/WAVE file and returns its audio as 8 kHz mono
// int16, with the file's own format. It accepts integer PCM (8-bit
// unsigned, 16, 24 and 32-bit), IEEE float (32 and 64-bit), G.711 A-law and
// µ-law (8-bit), and WAVE_FORMAT_EXTENSIBLE with a PCM or float subformat,
// at any rate from 1 to 384000 Hz and 1 to 32 channels; it skips chunks it
// does not need (LIST, fact, ...) including their pad byte. Channels are
// averaged and the result resampled with Resample's anti-aliased filter
// (computed in floating point, rounded once); an 8 kHz file is not filtered.
// A data size of 0xFFFFFFFF (left open by a streaming writer) reads to the
// end of the input. Errors wrap ErrNotWAV, ErrUnsupportedWAV (other
// formats; a data chunk or result over MaxWAVBytes) or ErrMalformedWAV
// (truncated, missing fmt or data chunk, inconsistent sizes).
func ReadWAV(r io.Reader) (samples []int16, src Format, err error) {
	info, err := readWAVHeader(r)
	if err != nil {
		return nil, Format{}, err
	}
	src = info.format
	ch := src.Channels
	maxOut := int64(MaxWAVBytes / 2)
	var expect int64
	if info.size >= 0 {
		frames := info.size / int64(info.frame)
		expect = (frames*SampleRate + int64(src.SampleRate) - 1) / int64(src.SampleRate)
		if expect > maxOut {
			return nil, src, fmt.Errorf("read WAV: %d frames at %d Hz make %d samples at 8 kHz, over the limit of %d: %w",
				frames, src.SampleRate, expect, maxOut, ErrUnsupportedWAV)
		}
	}
	// Capacity by what the header claims, but modestly: the data may not
	// be there, and append grows by what is.
	out := make([]int16, 0, min(expect, 1<<14))
	var rs *resampler
	if src.SampleRate != SampleRate {
		rs = newResampler(src.SampleRate, SampleRate)
	}
	dec := sampleDecoder(info)
	var mono []float64
	err = readWAVData(r, info, func(block []byte) error {
		frames := len(block) / info.frame
		mono = mono[:0]
		for f := range frames {
			fb := block[f*info.frame : (f+1)*info.frame]
			var sum float64
			for c := range ch {
				sum += dec(fb[c*info.frame/ch:])
			}
			mono = append(mono, sum/float64(ch))
		}
		if rs == nil {
			for _, v := range mono {
				out = append(out, clampRound(v))
			}
		} else {
			out = rs.push(mono, out)
		}
		if int64(len(out)) > maxOut {
			return fmt.Errorf("read WAV: more than %d samples at 8 kHz: %w", maxOut, ErrUnsupportedWAV)
		}
		return nil
	})
	if err != nil {
		return nil, src, err
	}
	if rs != nil {
		out = rs.finish(out)
	}
	return out, src, nil
}

// ReadWAVChannels decodes a WAV file like ReadWAV but keeps its own sample
// rate and channels: one int16 slice per channel (wider samples rounded,
// floats scaled by 32768 and saturated). It returns the same errors.
func ReadWAVChannels(r io.Reader) (channels [][]int16, src Format, err error) {
	info, err := readWAVHeader(r)
	if err != nil {
		return nil, Format{}, err
	}
	src = info.format
	ch := src.Channels
	var expect int64
	if info.size >= 0 {
		expect = info.size / int64(info.frame)
	}
	channels = make([][]int16, ch)
	for c := range channels {
		channels[c] = make([]int16, 0, min(expect, (1<<14)/int64(ch)))
	}
	dec := sampleDecoder(info)
	width := info.frame / ch
	err = readWAVData(r, info, func(block []byte) error {
		for f := 0; f+info.frame <= len(block); f += info.frame {
			for c := range ch {
				channels[c] = append(channels[c], clampRound(dec(block[f+c*width:])))
			}
		}
		return nil
	})
	if err != nil {
		return nil, src, err
	}
	return channels, src, nil
}

// readWAVHeader reads the RIFF header and every chunk up to the start of
// the data chunk's payload.
func readWAVHeader(r io.Reader) (wavInfo, error) {
	var hdr [12]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if n < 4 || string(hdr[:4]) != "RIFF" {
			return wavInfo{}, fmt.Errorf("read WAV: %d-byte file: %w", n, ErrNotWAV)
		}
		return wavInfo{}, fmt.Errorf("read WAV: RIFF header truncated at %d bytes: %w", n, ErrMalformedWAV)
	}
	switch {
	case string(hdr[:4]) == "RF64" || string(hdr[:4]) == "BW64":
		return wavInfo{}, fmt.Errorf("read WAV: %s (64-bit RIFF) files: %w", hdr[:4], ErrUnsupportedWAV)
	case string(hdr[:4]) != "RIFF" || string(hdr[8:12]) != "WAVE":
		return wavInfo{}, fmt.Errorf("read WAV: header %q: %w", hdr[:], ErrNotWAV)
	}
	var info wavInfo
	haveFmt := false
	for {
		var ck [8]byte
		if n, err := io.ReadFull(r, ck[:]); err != nil {
			what := "no data chunk"
			if !haveFmt {
				what = "no fmt chunk"
			}
			if n > 0 {
				what += fmt.Sprintf(" (chunk header truncated at %d bytes)", n)
			}
			return wavInfo{}, fmt.Errorf("read WAV: %s: %w", what, ErrMalformedWAV)
		}
		id := string(ck[:4])
		size := int64(binary.LittleEndian.Uint32(ck[4:]))
		switch id {
		case "fmt ":
			if haveFmt {
				break // a second fmt chunk: the first one rules
			}
			if size < 16 || size > maxFmtBytes {
				return wavInfo{}, fmt.Errorf("read WAV: fmt chunk of %d bytes: %w", size, ErrMalformedWAV)
			}
			buf := make([]byte, size+size&1)
			if n, err := io.ReadFull(r, buf[:size]); err != nil {
				return wavInfo{}, fmt.Errorf("read WAV: fmt chunk truncated at %d of %d bytes: %w", n, size, ErrMalformedWAV)
			}
			if size&1 == 1 {
				_, _ = io.ReadFull(r, buf[size:]) // pad byte; a missing one surfaces at the next chunk
			}
			var err error
			if info, err = parseWAVFmt(buf[:size]); err != nil {
				return wavInfo{}, err
			}
			haveFmt = true
			continue
		case "data":
			if !haveFmt {
				return wavInfo{}, fmt.Errorf("read WAV: data chunk before fmt chunk: %w", ErrMalformedWAV)
			}
			info.size = size
			if size == math.MaxUint32 {
				info.size = -1
			} else if size > MaxWAVBytes {
				return wavInfo{}, fmt.Errorf("read WAV: data chunk of %d bytes, over the limit of %d: %w", size, MaxWAVBytes, ErrUnsupportedWAV)
			}
			return info, nil
		}
		skip := size + size&1
		if n, err := io.CopyN(io.Discard, r, skip); err != nil {
			if n == size && errors.Is(err, io.EOF) {
				continue // a missing final pad byte; the loop reports the missing data chunk
			}
			return wavInfo{}, fmt.Errorf("read WAV: %q chunk truncated at %d of %d bytes: %w", id, n, size, ErrMalformedWAV)
		}
	}
}

// parseWAVFmt validates a fmt chunk (16 bytes or more).
func parseWAVFmt(b []byte) (wavInfo, error) {
	tag := binary.LittleEndian.Uint16(b[0:])
	channels := int(binary.LittleEndian.Uint16(b[2:]))
	rate := int64(binary.LittleEndian.Uint32(b[4:]))
	blockAlign := int(binary.LittleEndian.Uint16(b[12:]))
	bits := int(binary.LittleEndian.Uint16(b[14:]))
	if tag == wavExtensible {
		if len(b) < 40 || binary.LittleEndian.Uint16(b[16:]) < 22 {
			return wavInfo{}, fmt.Errorf("read WAV: extensible fmt chunk of %d bytes: %w", len(b), ErrMalformedWAV)
		}
		if !bytes.Equal(b[26:40], wavGUIDTail[:]) {
			return wavInfo{}, fmt.Errorf("read WAV: extensible subformat GUID % x: %w", b[24:40], ErrUnsupportedWAV)
		}
		tag = binary.LittleEndian.Uint16(b[24:])
		// wValidBitsPerSample may be below the container size (20 bits in
		// 24): samples are left-justified, so decoding the container is right.
	}
	switch {
	case channels == 0 || rate == 0:
		return wavInfo{}, fmt.Errorf("read WAV: %d channels at %d Hz: %w", channels, rate, ErrMalformedWAV)
	case channels > MaxWAVChannels:
		return wavInfo{}, fmt.Errorf("read WAV: %d channels, over %d: %w", channels, MaxWAVChannels, ErrUnsupportedWAV)
	case rate > MaxWAVRate:
		return wavInfo{}, fmt.Errorf("read WAV: %d Hz, over %d: %w", rate, MaxWAVRate, ErrUnsupportedWAV)
	}
	ok := false
	switch tag {
	case wavPCM:
		ok = bits == 8 || bits == 16 || bits == 24 || bits == 32
	case wavFloat:
		ok = bits == 32 || bits == 64
	case wavAlaw, wavUlaw:
		ok = bits == 8
	default:
		return wavInfo{}, fmt.Errorf("read WAV: format tag 0x%04x (compressed): %w", tag, ErrUnsupportedWAV)
	}
	if !ok {
		return wavInfo{}, fmt.Errorf("read WAV: format tag %d with %d-bit samples: %w", tag, bits, ErrUnsupportedWAV)
	}
	if blockAlign != channels*bits/8 {
		return wavInfo{}, fmt.Errorf("read WAV: block align %d for %d channels of %d bits: %w", blockAlign, channels, bits, ErrMalformedWAV)
	}
	return wavInfo{
		format: Format{SampleRate: int(rate), Channels: channels, BitsPerSample: bits, Float: tag == wavFloat},
		tag:    tag,
		frame:  blockAlign,
	}, nil
}

// readWAVData reads the data chunk in blocks of whole frames and passes
// each to fn; a trailing partial frame is dropped. A known size must be
// present in full; an open size reads to EOF, at most MaxWAVBytes.
func readWAVData(r io.Reader, info wavInfo, fn func(block []byte) error) error {
	buf := make([]byte, (32<<10)/info.frame*info.frame)
	remaining := info.size
	var read int64
	for remaining != 0 {
		n := int64(len(buf))
		if remaining > 0 {
			n = min(n, remaining)
		}
		got, err := io.ReadFull(r, buf[:n])
		read += int64(got)
		if remaining > 0 {
			remaining -= int64(got)
		}
		if info.size < 0 && read > MaxWAVBytes {
			return fmt.Errorf("read WAV: open-ended data chunk over the limit of %d bytes: %w", MaxWAVBytes, ErrUnsupportedWAV)
		}
		if got -= got % info.frame; got > 0 {
			if ferr := fn(buf[:got]); ferr != nil {
				return ferr
			}
		}
		switch {
		case err == nil:
		case (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) && info.size < 0:
			return nil
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("read WAV: data chunk truncated at %d of %d bytes: %w", read, info.size, ErrMalformedWAV)
		default:
			return fmt.Errorf("read WAV: data: %w", err)
		}
	}
	return nil
}

// sampleDecoder returns the function that turns one stored sample into a
// value on the int16 scale (fractional for wider samples).
func sampleDecoder(info wavInfo) func(b []byte) float64 {
	switch {
	case info.tag == wavUlaw:
		return func(b []byte) float64 { return float64(DecodeUlaw(b[0])) }
	case info.tag == wavAlaw:
		return func(b []byte) float64 { return float64(DecodeAlaw(b[0])) }
	case info.tag == wavFloat && info.format.BitsPerSample == 32:
		return func(b []byte) float64 {
			return finite(float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))) * 32768
		}
	case info.tag == wavFloat:
		return func(b []byte) float64 {
			return finite(math.Float64frombits(binary.LittleEndian.Uint64(b))) * 32768
		}
	}
	switch info.format.BitsPerSample {
	case 8:
		return func(b []byte) float64 { return float64(int(b[0])-128) * 256 }
	case 16:
		return func(b []byte) float64 { return float64(int16(binary.LittleEndian.Uint16(b))) }
	case 24:
		return func(b []byte) float64 {
			v := int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24) >> 8
			return float64(v) / 256
		}
	}
	return func(b []byte) float64 { return float64(int32(binary.LittleEndian.Uint32(b))) / 65536 }
}

// finite maps NaN to 0 and clamps infinities and huge values to ±2 (beyond
// full scale, so they still saturate), which keeps a corrupt sample from
// poisoning the resampler's sums.
func finite(v float64) float64 {
	switch {
	case v != v:
		return 0
	case v > 2:
		return 2
	case v < -2:
		return -2
	}
	return v
}
