package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/events"
)

// A 44.1 kHz stereo WAV of a 1 kHz tone plays as 8 kHz G.711 whose
// dominant frequency is 1 kHz, every sample of the converted file sent
// once (padded to whole frames), loop_count times.
func TestPlaybackResampled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tone := sine(1000, 44100, 0.3)
	path := writeWAV(t, dir, "prompts/tone.wav", 44100, tone, tone)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	converted, _, err := audio.ReadWAV(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvCfg(t, 0, Config{MediaDir: dir})
	cases := []struct {
		name  string
		codec audio.Codec
		offer string
		loops int
		file  string
	}{
		{"codec=PCMU/loop=0", audio.PCMU, offerPCMU, 0, "prompts/tone.wav"},
		{"codec=PCMA/loop=2/path=absolute", audio.PCMA, offerPCMA, 2, path},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("play-%d", i)
			e.start(t, id, c.offer, events.MediaConfig{})
			e.publish(t, &events.PlayAudio{SessionRef: ref(id), FilePath: c.file, LoopCount: c.loops})
			waitFor[*events.AudioPlaybackFinished](t, e.rec, id)
			plays := max(c.loops, 1)
			frames := (len(converted)*plays + 159) / 160
			pkts := e.waitSent(t, id, frames, audible(c.codec))
			pcm := decodeAudible(c.codec, pkts)
			if len(pcm) != 160*frames {
				t.Fatalf("%d audible frames, want %d (%d samples × %d)", len(pcm)/160, frames, len(converted), plays)
			}
			if f := audio.DominantFrequency(pcm, 8000, 100, 3900); !near(f, 1000, 10) {
				t.Fatalf("dominant frequency %.1f Hz, want 1000", f)
			}
			if n := len(all[*events.MediaError](e.rec, id)); n != 0 {
				t.Fatalf("%d MediaErrors", n)
			}
			e.stop(t, id)
		})
	}
	if n := e.media.clips.loadCount(); n != 1 {
		t.Fatalf("the file was decoded %d times, want once (relative and absolute name alike)", n)
	}
}

// StopAudio stops at once (one AudioPlaybackFinished, then silence); a
// PlayAudio replaces the playback in progress, which is reported finished
// first.
func TestPlaybackStopAndReplace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeWAV(t, dir, "long.wav", 8000, sine(500, 8000, 1))
	writeWAV(t, dir, "short.wav", 8000, sine(1500, 8000, 0.1))
	e := newEnvCfg(t, 0, Config{MediaDir: dir})
	const id = "stop"
	e.start(t, id, offerPCMU, events.MediaConfig{})

	e.publish(t, &events.PlayAudio{SessionRef: ref(id), FilePath: "long.wav", LoopCount: 100})
	e.waitSent(t, id, 3, audible(audio.PCMU))
	e.publish(t, &events.StopAudio{SessionRef: ref(id)})
	waitFor[*events.AudioPlaybackFinished](t, e.rec, id)
	mi, _ := e.media.Stream(id)
	if mi.Playing {
		t.Fatal("still playing after StopAudio")
	}
	sentAtStop := int(mi.PacketsSent)
	pkts := e.waitSent(t, id, sentAtStop+5, nil)
	for _, p := range pkts[sentAtStop:] {
		if !silent(audio.PCMU, p.Payload) {
			t.Fatalf("audio sent after StopAudio")
		}
	}
	e.publish(t, &events.StopAudio{SessionRef: ref(id)}) // nothing plays: no second outcome

	e.publish(t, &events.PlayAudio{SessionRef: ref(id), FilePath: "long.wav", LoopCount: 100})
	playedBefore := len(decodeAudible(audio.PCMU, e.sent(id))) / 160
	e.waitSent(t, id, playedBefore+3, audible(audio.PCMU))
	e.publish(t, &events.PlayAudio{SessionRef: ref(id), FilePath: "short.wav"})
	fins := waitN[*events.AudioPlaybackFinished](t, e.rec, id, 3)
	e.waitTicks(t, 5)
	if n := len(all[*events.AudioPlaybackFinished](e.rec, id)); n != 3 || len(fins) != 3 {
		t.Fatalf("%d AudioPlaybackFinished for 3 PlayAudio", n)
	}
	if got := controlFlow(e.rec, id)[4:]; !equalStrings(got, []string{"PlayAudio", "StopAudio",
		"AudioPlaybackFinished", "StopAudio", "PlayAudio", "PlayAudio", "AudioPlaybackFinished", "AudioPlaybackFinished"}) {
		t.Fatalf("flow %v", got)
	}
	// The replacement played out: 800 samples of 1.5 kHz, the last audio sent.
	pcm := decodeAudible(audio.PCMU, e.sent(id))
	if f := audio.DominantFrequency(pcm[len(pcm)-800:], 8000, 100, 3900); !near(f, 1500, 15) {
		t.Fatalf("last audio sent at %.1f Hz, want the replacement's 1500", f)
	}
}

func equalStrings(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// Files that cannot be played are MediaError{playback_failed} naming the
// file as given and the reason, never the server's path, and no
// AudioPlaybackFinished.
func TestPlaybackRefused(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dir := filepath.Join(base, "media")
	writeWAV(t, base, "outside.wav", 8000, sine(500, 8000, 0.1))
	writeWAV(t, dir, "ok.wav", 8000, sine(500, 8000, 0.1))
	if err := os.Symlink(filepath.Join(base, "outside.wav"), filepath.Join(dir, "link.wav")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.wav"), []byte("these are not audio samples at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	var adpcm bytes.Buffer
	if err := audio.EncodeWAV(&adpcm, 8000, [][]int16{sine(500, 8000, 0.1)}); err != nil {
		t.Fatal(err)
	}
	b := adpcm.Bytes()
	binary.LittleEndian.PutUint16(b[20:], 2) // WAVE_FORMAT_ADPCM
	if err := os.WriteFile(filepath.Join(dir, "adpcm.wav"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}

	e := newEnvCfg(t, 0, Config{MediaDir: dir})
	cases := []struct {
		name, file, reason string
	}{
		{"path=dotdot", "../outside.wav", "outside the media dir"},
		{"path=dotdot-inside", "sub/../../outside.wav", "outside the media dir"},
		{"path=absolute-outside", filepath.Join(base, "outside.wav"), "outside the media dir"},
		{"path=symlink-out", "link.wav", "outside the media dir"},
		{"path=missing", "missing.wav", "no such file"},
		{"path=directory", "sub", "is a directory"},
		{"path=empty", "", "no file named"},
		{"format=text", "notes.wav", "not a WAV file"},
		{"format=adpcm", "adpcm.wav", "unsupported WAV"},
		{"url=bad", "http://", "not a valid URL"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("refused-%d", i)
			e.start(t, id, offerPCMU, events.MediaConfig{})
			e.publish(t, &events.PlayAudio{SessionRef: ref(id), FilePath: c.file})
			f := waitFor[*events.MediaError](t, e.rec, id)
			name := c.file
			if filepath.IsAbs(name) {
				name = filepath.Base(name) // only the name is shown, never the server's path
			}
			if f.ErrorCode != events.MediaErrPlaybackFailed || !strings.Contains(f.Error, c.reason) ||
				!strings.Contains(f.Error, name) || strings.Contains(f.Error, dir) && !filepath.IsAbs(c.file) {
				t.Fatalf("MediaError{%q, %q}: want playback_failed naming %q: %s", f.ErrorCode, f.Error, name, c.reason)
			}
			e.waitTicks(t, 2)
			if n := len(all[*events.AudioPlaybackFinished](e.rec, id)); n != 0 {
				t.Fatalf("%d AudioPlaybackFinished for a refused PlayAudio", n)
			}
			e.stop(t, id)
		})
	}
	// The file next to those plays, named absolutely inside the dir.
	e.start(t, "ok", offerPCMU, events.MediaConfig{})
	e.publish(t, &events.PlayAudio{SessionRef: ref("ok"), FilePath: filepath.Join(dir, "ok.wav")})
	waitFor[*events.AudioPlaybackFinished](t, e.rec, "ok")

	t.Run("media-dir=none", func(t *testing.T) {
		e := newEnv(t, 0)
		e.start(t, "nodir", offerPCMU, events.MediaConfig{})
		e.publish(t, &events.PlayAudio{SessionRef: ref("nodir"), FilePath: "ok.wav"})
		if f := waitFor[*events.MediaError](t, e.rec, "nodir"); f.ErrorCode != events.MediaErrPlaybackFailed ||
			!strings.Contains(f.Error, "no media dir configured") {
			t.Fatalf("MediaError %+v", f)
		}
	})
	t.Run("media-dir=created-later", func(t *testing.T) {
		// A fresh checkout has no media dir: media starts, refuses file
		// playback, and plays once the directory exists.
		later := filepath.Join(t.TempDir(), "later")
		e := newEnvCfg(t, 0, Config{MediaDir: later})
		e.start(t, "later", offerPCMU, events.MediaConfig{})
		e.publish(t, &events.PlayAudio{SessionRef: ref("later"), FilePath: "ok.wav"})
		if f := waitFor[*events.MediaError](t, e.rec, "later"); f.ErrorCode != events.MediaErrPlaybackFailed ||
			!strings.Contains(f.Error, "cannot be opened") {
			t.Fatalf("MediaError %+v", f)
		}
		writeWAV(t, later, "ok.wav", 8000, sine(500, 8000, 0.1))
		e.publish(t, &events.PlayAudio{SessionRef: ref("later"), FilePath: "ok.wav"})
		waitFor[*events.AudioPlaybackFinished](t, e.rec, "later")
	})
	t.Run("session=unknown", func(t *testing.T) {
		e.publish(t, &events.PlayAudio{SessionRef: ref("ghost"), FilePath: "ok.wav"})
		if f := waitFor[*events.MediaError](t, e.rec, "ghost"); f.ErrorCode != events.MediaErrPlaybackFailed {
			t.Fatalf("MediaError %+v", f)
		}
	})
}

// A URL plays like a file; an HTTP failure is playback_failed.
func TestPlaybackURL(t *testing.T) {
	t.Parallel()
	var wav bytes.Buffer
	if err := audio.EncodeWAV(&wav, 16000, [][]int16{sine(800, 16000, 0.2)}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hello.wav" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "audio/wav")
		_, _ = w.Write(wav.Bytes())
	}))
	t.Cleanup(srv.Close)

	e := newEnv(t, 0) // no media dir: URLs still play
	e.start(t, "url", offerPCMU, events.MediaConfig{})
	e.publish(t, &events.PlayAudio{SessionRef: ref("url"), FilePath: srv.URL + "/hello.wav?token=secret"})
	waitFor[*events.AudioPlaybackFinished](t, e.rec, "url")
	pcm := decodeAudible(audio.PCMU, e.waitSent(t, "url", 10, audible(audio.PCMU)))
	if len(pcm) != 1600 {
		t.Fatalf("%d samples played, want 1600 (0.2 s)", len(pcm))
	}
	if f := audio.DominantFrequency(pcm, 8000, 100, 3900); !near(f, 800, 10) {
		t.Fatalf("dominant frequency %.1f Hz, want 800", f)
	}

	e.publish(t, &events.PlayAudio{SessionRef: ref("url"), FilePath: srv.URL + "/missing.wav?token=secret"})
	f := waitFor[*events.MediaError](t, e.rec, "url")
	if f.ErrorCode != events.MediaErrPlaybackFailed || !strings.Contains(f.Error, "404") ||
		!strings.Contains(f.Error, "/missing.wav") || strings.Contains(f.Error, "secret") {
		t.Fatalf("MediaError{%q, %q}: want playback_failed, HTTP 404, the URL without its query", f.ErrorCode, f.Error)
	}
}

// Sessions playing one file share one decode; a rewritten file is decoded
// again.
func TestPlaybackCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeWAV(t, dir, "p.wav", 8000, sine(500, 8000, 0.05))
	e := newEnvCfg(t, 0, Config{MediaDir: dir})
	for i := range 4 {
		id := fmt.Sprintf("cache-%d", i)
		e.start(t, id, offerPCMU, events.MediaConfig{})
		e.publish(t, &events.PlayAudio{SessionRef: ref(id), FilePath: "p.wav"})
	}
	for i := range 4 {
		waitFor[*events.AudioPlaybackFinished](t, e.rec, fmt.Sprintf("cache-%d", i))
	}
	if n := e.media.clips.loadCount(); n != 1 {
		t.Fatalf("decoded %d times for 4 sessions, want 1", n)
	}
	writeWAV(t, dir, "p.wav", 8000, sine(500, 8000, 0.06))
	e.publish(t, &events.PlayAudio{SessionRef: ref("cache-0"), FilePath: "p.wav"})
	waitN[*events.AudioPlaybackFinished](t, e.rec, "cache-0", 2)
	if n := e.media.clips.loadCount(); n != 2 {
		t.Fatalf("decoded %d times after the file changed, want 2", n)
	}
}

func TestClipCacheBounds(t *testing.T) {
	c := newClipCache(2, 100)
	load := func(n int) func() ([]int16, error) {
		return func() ([]int16, error) { return make([]int16, n), nil }
	}
	fail := func() ([]int16, error) { return nil, fmt.Errorf("boom") }
	k := func(name string) clipKey { return clipKey{name: name} }
	for _, step := range []struct {
		name  string
		load  func() ([]int16, error)
		loads int
		err   bool
	}{
		{"a", load(10), 1, false},
		{"b", load(10), 2, false},
		{"a", load(10), 2, false}, // cached; a becomes most recent
		{"c", load(10), 3, false}, // evicts b
		{"a", load(10), 3, false},
		{"b", load(10), 4, false},
		{"big", load(101), 5, false}, // over the sample bound: not kept
		{"big", load(101), 6, false},
		{"bad", fail, 7, true}, // failures are not kept
		{"bad", fail, 8, true},
	} {
		_, err := c.get(k(step.name), step.load)
		if (err != nil) != step.err || c.loads != step.loads {
			t.Fatalf("get %s: err %v, %d loads; want err %v, %d loads", step.name, err, c.loads, step.err, step.loads)
		}
		if len(c.entries) > 2 || c.samples > 100 {
			t.Fatalf("after %s: %d entries, %d samples", step.name, len(c.entries), c.samples)
		}
	}
}
