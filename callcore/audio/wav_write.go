package audio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// wavHeaderBytes is the size of the canonical 16-bit PCM WAV header.
const wavHeaderBytes = 44

// maxWAVData is the largest data chunk a RIFF size field can describe.
const maxWAVData = 1<<32 - 1 - (wavHeaderBytes - 8)

// HeaderInterval is how much audio a WAVWriter writes between two rewrites
// of its header: what a crash can lose at most.
const HeaderInterval = time.Second

// ErrWAVTooLong is returned when audio would not fit a RIFF file (4 GiB).
var ErrWAVTooLong = errors.New("WAV data over 4 GiB")

// putWAVHeader fills b (44 bytes) with the header of a 16-bit PCM file.
func putWAVHeader(b []byte, rate, channels int, dataBytes uint32) {
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], dataBytes+wavHeaderBytes-8)
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], wavPCM)
	binary.LittleEndian.PutUint16(b[22:], uint16(channels))
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*channels*2))
	binary.LittleEndian.PutUint16(b[32:], uint16(channels*2))
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], dataBytes)
}

// checkChannels validates one slice per channel of equal length and
// returns that length.
func checkChannels(channels [][]int16) (int, error) {
	if len(channels) == 0 || len(channels) > MaxWAVChannels {
		return 0, fmt.Errorf("%d channels, want 1..%d", len(channels), MaxWAVChannels)
	}
	n := len(channels[0])
	for i, c := range channels {
		if len(c) != n {
			return 0, fmt.Errorf("channel %d has %d samples, channel 0 has %d", i, len(c), n)
		}
	}
	return n, nil
}

// appendInterleaved appends the channels' samples frame by frame as
// little-endian 16-bit PCM.
func appendInterleaved(dst []byte, channels [][]int16, n int) []byte {
	for i := range n {
		for _, c := range channels {
			dst = binary.LittleEndian.AppendUint16(dst, uint16(c[i]))
		}
	}
	return dst
}

// EncodeWAV writes a complete 16-bit PCM WAV file of the given rate to w,
// one slice per channel (all of equal length), interleaving them. It
// returns an error for no or more than 32 channels, unequal lengths, a rate
// outside 1..384000, more than 4 GiB of data, or w's write error.
func EncodeWAV(w io.Writer, rate int, channels [][]int16) error {
	n, err := checkChannels(channels)
	if err != nil {
		return fmt.Errorf("encode WAV: %w", err)
	}
	if rate < 1 || rate > MaxWAVRate {
		return fmt.Errorf("encode WAV: rate %d Hz, want 1..%d", rate, MaxWAVRate)
	}
	size := int64(n) * int64(len(channels)) * 2
	if size > maxWAVData {
		return fmt.Errorf("encode WAV: %d bytes: %w", size, ErrWAVTooLong)
	}
	bw := bufio.NewWriter(w)
	var hdr [wavHeaderBytes]byte
	putWAVHeader(hdr[:], rate, len(channels), uint32(size))
	if _, err := bw.Write(hdr[:]); err != nil {
		return fmt.Errorf("encode WAV: %w", err)
	}
	buf := make([]byte, 0, 4096)
	for start := 0; start < n; start += 1024 {
		end := min(start+1024, n)
		part := make([][]int16, len(channels))
		for c := range channels {
			part[c] = channels[c][start:end]
		}
		buf = appendInterleaved(buf[:0], part, end-start)
		if _, err := bw.Write(buf); err != nil {
			return fmt.Errorf("encode WAV: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("encode WAV: %w", err)
	}
	return nil
}

// WAVWriter writes a 16-bit PCM WAV file at SampleRate incrementally, for
// call recordings. Its header is written first with zero sizes and
// rewritten (after flushing the buffered audio) every HeaderInterval of
// audio and on Close, so a crash leaves a valid WAV file holding everything
// up to the last header update. It is safe for concurrent use.
type WAVWriter struct {
	path     string
	channels int

	mu         sync.Mutex
	f          *os.File
	bw         *bufio.Writer
	scratch    []byte
	frames     int64 // frames written
	headFrames int64 // frames covered by the header on disk
	err        error // first write error: sticky
	closed     bool
	closeErr   error
}

// CreateWAV creates (or truncates) the file at path, mode 0640, and writes
// the header of an empty 8 kHz 16-bit WAV with the given channels (1..32).
// The parent directory must exist. It returns the open error, or an error
// for a bad channel count.
func CreateWAV(path string, channels int) (*WAVWriter, error) {
	if channels < 1 || channels > MaxWAVChannels {
		return nil, fmt.Errorf("create WAV %s: %d channels, want 1..%d", path, channels, MaxWAVChannels)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create WAV: %w", err)
	}
	var hdr [wavHeaderBytes]byte
	putWAVHeader(hdr[:], SampleRate, channels, 0)
	if _, err := f.Write(hdr[:]); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("create WAV %s: write header: %w", path, err)
	}
	return &WAVWriter{path: path, channels: channels, f: f, bw: bufio.NewWriterSize(f, 32<<10)}, nil
}

// Write appends audio: one slice per channel, all of equal length, which
// are interleaved. It returns an error for the wrong number of channels or
// unequal lengths (nothing written), ErrWAVTooLong past 4 GiB, os.ErrClosed
// after Close, or the file's write error, which sticks: every later Write
// returns it.
func (w *WAVWriter) Write(frames ...[]int16) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return fmt.Errorf("write WAV %s: %w", w.path, os.ErrClosed)
	case w.err != nil:
		return w.err
	case len(frames) != w.channels:
		return fmt.Errorf("write WAV %s: %d channels given, file has %d", w.path, len(frames), w.channels)
	}
	n, err := checkChannels(frames)
	if err != nil {
		return fmt.Errorf("write WAV %s: %w", w.path, err)
	}
	if (w.frames+int64(n))*int64(w.channels)*2 > maxWAVData {
		return fmt.Errorf("write WAV %s: %w", w.path, ErrWAVTooLong)
	}
	w.scratch = appendInterleaved(w.scratch[:0], frames, n)
	if _, err := w.bw.Write(w.scratch); err != nil {
		w.err = fmt.Errorf("write WAV %s: %w", w.path, err)
		return w.err
	}
	w.frames += int64(n)
	if w.frames-w.headFrames >= int64(HeaderInterval/time.Second)*SampleRate {
		if err := w.updateHeader(); err != nil {
			w.err = err
			return err
		}
	}
	return nil
}

// updateHeader flushes the buffered audio, then rewrites the header to
// cover it: in that order, so the header never claims audio not written.
func (w *WAVWriter) updateHeader() error {
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("write WAV %s: flush: %w", w.path, err)
	}
	var hdr [wavHeaderBytes]byte
	putWAVHeader(hdr[:], SampleRate, w.channels, uint32(w.frames*int64(w.channels)*2))
	if _, err := w.f.WriteAt(hdr[:], 0); err != nil {
		return fmt.Errorf("write WAV %s: header: %w", w.path, err)
	}
	w.headFrames = w.frames
	return nil
}

// Duration returns how much audio has been written so far (buffered or not).
func (w *WAVWriter) Duration() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Duration(w.frames) * time.Second / SampleRate
}

// Path returns the file's path as given to CreateWAV.
func (w *WAVWriter) Path() string { return w.path }

// Close flushes the buffered audio, rewrites the header, syncs the file to
// disk and closes it. It returns the first error among those steps (or an
// earlier sticky write error); calling it again returns the same result.
func (w *WAVWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.closeErr
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.updateHeader()
	}
	if err == nil {
		if serr := w.f.Sync(); serr != nil {
			err = fmt.Errorf("close WAV %s: sync: %w", w.path, serr)
		}
	}
	if cerr := w.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close WAV %s: %w", w.path, cerr)
	}
	w.closeErr = err
	return err
}
