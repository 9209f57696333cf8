package audio

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func readWAVFile(t *testing.T, path string) ([][]int16, Format) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	chans, src, err := ReadWAVChannels(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s (%d bytes) is not a readable WAV: %v", path, len(b), err)
	}
	return chans, src
}

func TestWAVWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.wav")
	w, err := CreateWAV(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	if w.Path() != path {
		t.Errorf("Path %q", w.Path())
	}
	// A fresh file is already a valid, empty WAV.
	if chans, src := readWAVFile(t, path); len(chans[0]) != 0 || src != (Format{SampleRate: 8000, Channels: 2, BitsPerSample: 16}) {
		t.Errorf("fresh file: %d frames, %+v", len(chans[0]), src)
	}
	const frames = 125 // 2.5 s of 20 ms frames
	left, right := NewTone(0.5, 440), NewTone(0.3, 1000)
	var wantL, wantR []int16
	for i := range frames {
		l, r := make([]int16, FrameSamples), make([]int16, FrameSamples)
		left.Fill(l)
		right.Fill(r)
		if err := w.Write(l, r); err != nil {
			t.Fatal(err)
		}
		wantL, wantR = append(wantL, l...), append(wantR, r...)
		switch i + 1 {
		case 10: // 0.2 s: nothing on disk yet but the header
			if chans, _ := readWAVFile(t, path); len(chans[0]) != 0 {
				t.Errorf("after 0.2 s the header already claims %d frames", len(chans[0]))
			}
		case 50, 80: // after 1 s: the first header update, and no other before 2 s
			chans, _ := readWAVFile(t, path)
			if len(chans[0]) != 8000 {
				t.Errorf("after %d frames the file holds %d samples, want 8000", i+1, len(chans[0]))
			}
			if !equalInt16(chans[0], wantL[:len(chans[0])]) || !equalInt16(chans[1], wantR[:len(chans[1])]) {
				t.Error("mid-way file differs from what was written")
			}
		}
	}
	if d := w.Duration(); d != 2500*time.Millisecond {
		t.Errorf("Duration %v", d)
	}
	// Without Close (a crash), the file holds the audio up to the last
	// header update at 2 s.
	if chans, _ := readWAVFile(t, path); len(chans[0]) != 16000 || !equalInt16(chans[0], wantL[:16000]) {
		t.Errorf("before Close: %d frames", len(chans[0]))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	chans, src := readWAVFile(t, path)
	if src != (Format{SampleRate: 8000, Channels: 2, BitsPerSample: 16}) {
		t.Errorf("format %+v", src)
	}
	if !equalInt16(chans[0], wantL) || !equalInt16(chans[1], wantR) {
		t.Errorf("closed file: %d/%d frames, want %d, or different samples", len(chans[0]), len(chans[1]), len(wantL))
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := w.Write(wantL[:1], wantR[:1]); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if d := w.Duration(); d != 2500*time.Millisecond {
		t.Errorf("Duration after Close %v", d)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&^0o640 != 0 {
		t.Errorf("mode %v, want at most 0640", perm)
	}
	if fi.Size() != 44+2500*16*2 {
		t.Errorf("size %d", fi.Size())
	}
}

func TestWAVWriterErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := CreateWAV(filepath.Join(dir, "missing", "x.wav"), 1); err == nil {
		t.Error("CreateWAV in a missing directory succeeded")
	}
	for _, ch := range []int{0, -1, 33} {
		if _, err := CreateWAV(filepath.Join(dir, "x.wav"), ch); err == nil {
			t.Errorf("channels=%d accepted", ch)
		}
	}
	w, err := CreateWAV(filepath.Join(dir, "mono.wav"), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	cases := []struct {
		name   string
		frames [][]int16
	}{
		{"channels=2-for-mono", [][]int16{{1}, {2}}},
		{"channels=none", nil},
	}
	for _, c := range cases {
		if err := w.Write(c.frames...); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	w2, err := CreateWAV(filepath.Join(dir, "stereo.wav"), 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Write([]int16{1, 2}, []int16{1}); err == nil {
		t.Error("unequal lengths accepted")
	}
	if err := w2.Write([]int16{7, 8}, []int16{9, 10}); err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	chans, _ := readWAVFile(t, filepath.Join(dir, "stereo.wav"))
	if !equalInt16(chans[0], []int16{7, 8}) || !equalInt16(chans[1], []int16{9, 10}) {
		t.Errorf("after a refused write: %v", chans)
	}
	// Recreating a path truncates the old recording.
	w3, err := CreateWAV(filepath.Join(dir, "stereo.wav"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := w3.Close(); err != nil {
		t.Fatal(err)
	}
	if chans, _ := readWAVFile(t, filepath.Join(dir, "stereo.wav")); len(chans) != 1 || len(chans[0]) != 0 {
		t.Errorf("recreated file: %d channels, %d frames", len(chans), len(chans[0]))
	}
}

// TestWAVWriterConcurrent writes from one goroutine while others read the
// duration and close: run with -race.
func TestWAVWriterConcurrent(t *testing.T) {
	w, err := CreateWAV(filepath.Join(t.TempDir(), "c.wav"), 1)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]int16, FrameSamples)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 200 {
			if err := w.Write(frame); err != nil {
				if !errors.Is(err, os.ErrClosed) {
					t.Error(err)
				}
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range 200 {
			_ = w.Duration()
		}
	}()
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if d := w.Duration(); d != 4*time.Second {
		t.Errorf("Duration %v", d)
	}
}

func BenchmarkWAVWriter(b *testing.B) {
	w, err := CreateWAV(filepath.Join(b.TempDir(), "b.wav"), 2)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	l, r := make([]int16, FrameSamples), make([]int16, FrameSamples)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(l, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResample44100(b *testing.B) {
	in := toneAt(44100, 44100, 0.5, 1000) // 1 s
	b.ReportAllocs()
	for b.Loop() {
		Resample(in, 44100, 8000)
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/1e6, "ms/s-of-audio")
}

func BenchmarkReadWAV(b *testing.B) {
	n := 44100
	file := encodeWAV(b, 44100, toneAt(n, 44100, 0.5, 1000), toneAt(n, 44100, 0.5, 1000))
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ReadWAV(bytes.NewReader(file)); err != nil {
			b.Fatal(err)
		}
	}
}
