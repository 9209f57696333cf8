package media

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// A recording holds what was received on the left (a 1 kHz tone sent by
// the test) and what media sent on the right (a 500 Hz playback), both
// aligned to the clock; RecordingStopped gives its length.
func TestRecording(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeWAV(t, dir, "p500.wav", 8000, sine(500, 8000, 0.4))
	e := newEnvCfg(t, 0, Config{MediaDir: dir})
	const id = "rec"
	e.start(t, id, offerPCMA, events.MediaConfig{})
	path := filepath.Join(t.TempDir(), "calls", "2026", "rec.wav") // its directory does not exist yet
	e.publish(t, &events.StartRecording{SessionRef: ref(id), FilePath: path, Format: "wav"})
	if st := waitFor[*events.RecordingStarted](t, e.rec, id); st.FilePath != path {
		t.Fatalf("RecordingStarted %+v", st)
	}
	e.publish(t, &events.PlayAudio{SessionRef: ref(id), FilePath: "p500.wav"})
	e.inject(t, id, 8, toneFrames(audio.PCMA, 1000, 20))
	waitFor[*events.AudioPlaybackFinished](t, e.rec, id)
	if mi, _ := e.media.Stream(id); !mi.Recording {
		t.Fatal("StreamInfo.Recording is false while recording")
	}
	e.publish(t, &events.StopRecording{SessionRef: ref(id)})
	stopped := waitFor[*events.RecordingStopped](t, e.rec, id)

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ch, format, err := audio.ReadWAVChannels(f)
	if err != nil {
		t.Fatal(err)
	}
	if format.SampleRate != 8000 || format.Channels != 2 || format.BitsPerSample != 16 {
		t.Fatalf("format %+v, want 8 kHz stereo 16-bit", format)
	}
	left, right := ch[0], ch[1]
	if stopped.FilePath != path || stopped.DurationMS != int64(len(left))/8 || len(left)%160 != 0 {
		t.Fatalf("RecordingStopped %+v for %d samples (%d ms)", stopped, len(left), len(left)/8)
	}
	// The left channel may have a silent tick between two received frames
	// (the test's packets are not paced by the clock): judge its frames.
	if got, f := len(frames(left)), audio.DominantFrequency(sound(left), 8000, 100, 3900); got != 20 || !near(f, 1000, 10) {
		t.Fatalf("left channel: %d frames of sound at %.1f Hz, want 20 at 1000 Hz", got, f)
	}
	if got, f := sound(right), audio.DominantFrequency(sound(right), 8000, 100, 3900); len(got) < 3190 || len(got) > 3200 || !near(f, 500, 10) {
		t.Fatalf("right channel: %d samples of sound at %.1f Hz, want 3200 at 500 Hz", len(got), f)
	}
	// Sample-exact: the left channel holds the frames received, the right
	// one the frames sent (both in PCMA, encode(decode(x)) == x).
	var in, out []byte
	for _, p := range toneFrames(audio.PCMA, 1000, 20) {
		in = append(in, p...)
	}
	for _, p := range e.sent(id) {
		if audible(audio.PCMA)(p) {
			out = append(out, p.Payload...)
		}
	}
	if !bytes.Equal(audio.PCMA.Encode(nil, slices.Concat(frames(left)...)), in) {
		t.Fatal("the left channel does not hold the frames received")
	}
	if len(out) != 3200 || !bytes.Contains(audio.PCMA.Encode(nil, right), out) {
		t.Fatalf("the right channel does not hold the %d bytes of audio sent", len(out))
	}
	if mi, _ := e.media.Stream(id); mi.Recording || mi.RecordingDropped != 0 {
		t.Fatalf("after StopRecording: %+v", mi)
	}
	e.publish(t, &events.StopRecording{SessionRef: ref(id)})
	if f := waitFor[*events.MediaError](t, e.rec, id); f.ErrorCode != events.MediaErrRecordingFailed || !strings.Contains(f.Error, "not recording") {
		t.Fatalf("second StopRecording: %+v", f)
	}
}

// frames returns the 20 ms frames of s that are not all silence.
func frames(s []int16) [][]int16 {
	var out [][]int16
	for f := range slices.Chunk(s, 160) {
		if slices.ContainsFunc(f, func(v int16) bool { return v != 0 }) {
			out = append(out, f)
		}
	}
	return out
}

// sound returns s from its first to its last non-zero sample.
func sound(s []int16) []int16 {
	i := slices.IndexFunc(s, func(v int16) bool { return v != 0 })
	if i < 0 {
		return nil
	}
	j := len(s)
	for s[j-1] == 0 {
		j--
	}
	return s[i:j]
}

// A stream that stops while recording closes the file and reports
// RecordingStopped before MediaStreamStopped.
func TestRecordingStreamStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	const id = "recstop"
	e.start(t, id, offerPCMU, events.MediaConfig{Builtin: events.BuiltinTone})
	path := filepath.Join(t.TempDir(), "r.wav")
	e.publish(t, &events.StartRecording{SessionRef: ref(id), FilePath: path, Format: "wav"})
	waitFor[*events.RecordingStarted](t, e.rec, id)
	e.waitTicks(t, 5)
	e.stop(t, id)
	flow := controlFlow(e.rec, id)
	if i, j := slices.Index(flow, "RecordingStopped"), slices.Index(flow, "MediaStreamStopped"); i < 0 || i > j {
		t.Fatalf("flow %v: want RecordingStopped before MediaStreamStopped", flow)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ch, _, err := audio.ReadWAVChannels(f)
	if err != nil {
		t.Fatal(err)
	}
	if d := waitFor[*events.RecordingStopped](t, e.rec, id).DurationMS; d != int64(len(ch[0])/8) || d < 100 {
		t.Fatalf("duration_ms %d for %d samples", d, len(ch[0]))
	}
	if f := audio.DominantFrequency(ch[1], 8000, 100, 3900); !near(f, 350, 5) && !near(f, 440, 5) {
		t.Fatalf("the tone was recorded at %.1f Hz", f)
	}
}

// Close completes the recordings in progress: the file is a valid WAV
// holding what was recorded.
func TestRecordingClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	e.start(t, "c", offerPCMU, events.MediaConfig{Builtin: events.BuiltinTone})
	path := filepath.Join(t.TempDir(), "c.wav")
	e.publish(t, &events.StartRecording{SessionRef: ref("c"), FilePath: path, Format: "wav"})
	waitFor[*events.RecordingStarted](t, e.rec, "c")
	e.waitTicks(t, 5)
	if err := e.media.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ch, _, err := audio.ReadWAVChannels(f)
	if err != nil || len(ch) != 2 || len(ch[1]) < 5*160 || len(sound(ch[1])) == 0 {
		t.Fatalf("recording after Close: err %v, %d channels", err, len(ch))
	}
}

// A disk that stalls past the shutdown deadline does not hold Close: it
// returns at the deadline naming the writer still finishing its file.
func TestRecordingCloseAtTheDeadline(t *testing.T) {
	t.Parallel()
	// Not newEnv, whose cleanup wants a Close without error.
	b := bustest.NewBus(t, bus.Config{})
	e := &env{bus: b, rec: record(t, b, events.ChannelSessionToMedia, events.ChannelMediaToSession,
		events.ChannelMediaToRTP, events.ChannelRTPToMedia)}
	m, err := New(Config{ExternalIP: externalIP}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := &stallingSink{release: make(chan struct{})}
	m.createWAV = func(string, int) (wavSink, error) { return sink, nil }
	if err := m.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.media = m
	e.start(t, "c", offerPCMU, events.MediaConfig{Builtin: events.BuiltinTone})
	e.publish(t, &events.StartRecording{SessionRef: ref("c"), FilePath: filepath.Join(t.TempDir(), "c.wav"), Format: "wav"})
	waitFor[*events.RecordingStarted](t, e.rec, "c")
	e.waitTicks(t, 5) // the writer is in a Write that does not return

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err = e.media.Close(ctx)
	took := time.Since(begin)
	close(sink.release)
	if took > 2*time.Second {
		t.Errorf("Close took %v with a 100ms deadline", took)
	}
	var re *callcore.RunningError
	if !errors.As(err, &re) || !slices.Contains(re.Running, "recording writer") {
		t.Fatalf("Close = %v, want a RunningError naming the recording writer", err)
	}
	if again := e.media.Close(t.Context()); again != err {
		t.Fatalf("second Close = %v, want the first's result", again)
	}
}

// stallingSink is a recording whose writes block until release is closed.
type stallingSink struct{ release chan struct{} }

func (s *stallingSink) Write(...[]int16) error  { <-s.release; return nil }
func (s *stallingSink) Close() error            { return nil }
func (s *stallingSink) Duration() time.Duration { return 0 }

// Every failure of a recording is MediaError{recording_failed} and its
// only outcome.
func TestRecordingFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	tmp := t.TempDir()
	blocker := filepath.Join(tmp, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, format, text string
	}{
		{"format=mp3", filepath.Join(tmp, "a.mp3"), "mp3", `format "mp3"`},
		{"path=empty", "", "wav", "no file_path"},
		{"dir=is-a-file", filepath.Join(blocker, "x.wav"), "wav", "not a directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := "recfail-" + c.name
			e.start(t, id, offerPCMU, events.MediaConfig{})
			e.publish(t, &events.StartRecording{SessionRef: ref(id), FilePath: c.path, Format: c.format})
			f := waitFor[*events.MediaError](t, e.rec, id)
			if f.ErrorCode != events.MediaErrRecordingFailed || !strings.Contains(f.Error, c.text) {
				t.Fatalf("MediaError{%q, %q}, want recording_failed with %q", f.ErrorCode, f.Error, c.text)
			}
			if n := len(all[*events.RecordingStarted](e.rec, id)); n != 0 {
				t.Fatal("RecordingStarted for a failed recording")
			}
		})
	}
	t.Run("session=unknown", func(t *testing.T) {
		e.publish(t, &events.StartRecording{SessionRef: ref("ghost"), FilePath: filepath.Join(tmp, "g.wav"), Format: "wav"})
		if f := waitFor[*events.MediaError](t, e.rec, "ghost"); f.ErrorCode != events.MediaErrRecordingFailed {
			t.Fatalf("MediaError %+v", f)
		}
	})

	// A disk that fails mid-recording: the writer closes the file and
	// reports it; the recording is gone, without RecordingStopped.
	t.Run("write=fails", func(t *testing.T) {
		sink := &failingSink{failAfter: 10}
		e.media.createWAV = func(string, int) (wavSink, error) { return sink, nil }
		const id = "recfail-write"
		e.start(t, id, offerPCMU, events.MediaConfig{})
		e.publish(t, &events.StartRecording{SessionRef: ref(id), FilePath: filepath.Join(tmp, "w.wav"), Format: "wav"})
		waitFor[*events.RecordingStarted](t, e.rec, id)
		f := waitFor[*events.MediaError](t, e.rec, id)
		if f.ErrorCode != events.MediaErrRecordingFailed || !strings.Contains(f.Error, "disk on fire") {
			t.Fatalf("MediaError %+v", f)
		}
		bustest.CheckFor(t, 5*time.Second, func() error {
			if mi, _ := e.media.Stream(id); mi.Recording || !sink.isClosed() {
				return errors.New("the failed recording is still attached or open")
			}
			return nil
		})
		e.stop(t, id)
		if n := len(all[*events.RecordingStopped](e.rec, id)); n != 0 {
			t.Fatal("RecordingStopped after a failed recording")
		}
		if n := len(all[*events.MediaError](e.rec, id)); n != 1 {
			t.Fatalf("%d MediaErrors, want 1", n)
		}
	})
}

// failingSink is a recording whose writes fail after failAfter frames.
type failingSink struct {
	mu        sync.Mutex
	failAfter int
	writes    int
	closed    bool
}

func (f *failingSink) Write(frames ...[]int16) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writes++; f.writes > f.failAfter {
		return errors.New("write: disk on fire")
	}
	return nil
}

func (f *failingSink) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *failingSink) Duration() time.Duration { return 0 }

func (f *failingSink) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}
