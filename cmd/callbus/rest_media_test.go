package main

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/calltest"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/httpapi"
	"github.com/callbus/callbus/internal/bustest"
)

// restToneWAV returns a WAV of seconds of a sine at freq, 8 kHz mono.
func restToneWAV(t *testing.T, freq float64, seconds float64) []byte {
	t.Helper()
	pcm := make([]int16, int(8000*seconds))
	for i := range pcm {
		pcm[i] = int16(12000 * math.Sin(2*math.Pi*freq*float64(i)/8000))
	}
	var b bytes.Buffer
	if err := audio.EncodeWAV(&b, 8000, [][]int16{pcm}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// appOf returns the session_to_app events of type T of call id on the feed.
func appOf[T events.Event](f *feed, id string) []T {
	var out []T
	for _, ev := range appEvents(f.all(), id) {
		if e, ok := ev.(T); ok {
			out = append(out, e)
		}
	}
	return out
}

// waitApp waits until the feed carried n events of type T of call id.
func waitApp[T events.Event](t *testing.T, f *feed, id string, n int) []T {
	t.Helper()
	var got []T
	bustest.CheckFor(t, 10*time.Second, func() error {
		got = appOf[T](f, id)
		if len(got) < n {
			var zero T
			return fmt.Errorf("%d %T of %s on the feed, want %d", len(got), zero, id, n)
		}
		return nil
	})
	return got
}

// restDominant returns the strongest frequency of pcm between 200 and 3400 Hz.
func restDominant(pcm []int16) float64 { return audio.DominantFrequency(pcm, 8000, 200, 3400) }

// TestRESTMedia plays a URL to a call, records it, and bridges two calls,
// all through REST.
func TestRESTMedia(t *testing.T) {
	ctx := flowCtx(t)
	media := t.TempDir()
	if err := os.MkdirAll(filepath.Join(media, "prompts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(media, "prompts", "beep.wav"), restToneWAV(t, 600, 0.6), 0o644); err != nil {
		t.Fatal(err)
	}
	n, api := openRESTNode(t, env{"CALLBUS_INBOUND": "answer", "CALLBUS_MEDIA_DIR": media})
	ws := openFeed(t, api, "channels=session_to_app")
	clips := http.NewServeMux()
	short, long := restToneWAV(t, 440, 0.6), restToneWAV(t, 440, 30)
	clips.HandleFunc("/short.wav", func(w http.ResponseWriter, _ *http.Request) { w.Write(short) })
	clips.HandleFunc("/long.wav", func(w http.ResponseWriter, _ *http.Request) { w.Write(long) })
	srv := httptest.NewServer(clips)
	t.Cleanup(srv.Close)

	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	bob := calltest.StartPhone(t, calltest.WithUser("bob"))
	a, toAlice := callNode(t, n, alice, "agent")
	b, toBob := callNode(t, n, bob, "agent")

	t.Run("play", func(t *testing.T) {
		toAlice.ResetReceived()
		api.call("POST", "/v1/calls/"+a+"/play", map[string]any{"url": srv.URL + "/short.wav"}, http.StatusAccepted)
		pcm, err := toAlice.WaitAudio(ctx, 4000)
		if err != nil {
			t.Fatal(err)
		}
		if f := restDominant(pcm[800:]); math.Abs(f-440) > 20 {
			t.Errorf("alice hears %.0f Hz, want the clip's 440 Hz", f)
		}
		if fin := waitApp[*events.PlaybackFinished](t, ws, a, 1); fin[0].Reason != "finished" {
			t.Errorf("PlaybackFinished %+v, want finished", fin[0])
		}
		// A file of the media directory.
		toAlice.ResetReceived()
		api.call("POST", "/v1/calls/"+a+"/play", map[string]any{"file": "prompts/beep.wav"}, http.StatusAccepted)
		pcm, err = toAlice.WaitAudio(ctx, 4000)
		if err != nil {
			t.Fatal(err)
		}
		if f := restDominant(pcm[800:]); math.Abs(f-600) > 20 {
			t.Errorf("alice hears %.0f Hz, want the file's 600 Hz", f)
		}
		if fin := waitApp[*events.PlaybackFinished](t, ws, a, 2); fin[1].Reason != "finished" || fin[1].File != "prompts/beep.wav" {
			t.Errorf("PlaybackFinished %+v, want prompts/beep.wav finished", fin[1])
		}
		// A long clip, stopped by DELETE.
		api.call("POST", "/v1/calls/"+a+"/play", map[string]any{"url": srv.URL + "/long.wav", "loop": 1}, http.StatusAccepted)
		api.call("DELETE", "/v1/calls/"+a+"/play", nil, http.StatusAccepted)
		if fin := waitApp[*events.PlaybackFinished](t, ws, a, 3); fin[2].Reason != "stopped" {
			t.Errorf("third PlaybackFinished %+v, want stopped", fin[2])
		}
		resp, raw := api.do(specValid, "DELETE", "/v1/calls/"+a+"/play", nil, nil)
		wantRESTProblem(t, resp, raw, http.StatusConflict, callcore.CodeInvalidState, "")
	})

	t.Run("record", func(t *testing.T) {
		c := api.call("POST", "/v1/calls/"+b+"/record", map[string]any{"max_duration_s": 30}, http.StatusAccepted)
		if c.State != callcore.StateActive {
			t.Errorf("recording call %+v", c)
		}
		tone := make([]int16, 4800) // 0.6 s at 1000 Hz; SendAudio paces it and returns once sent
		for i := range tone {
			tone[i] = int16(12000 * math.Sin(2*math.Pi*1000*float64(i)/8000))
		}
		if err := toBob.SendAudio(ctx, tone); err != nil {
			t.Fatal(err)
		}
		api.call("DELETE", "/v1/calls/"+b+"/record", nil, http.StatusAccepted)
		fin := waitApp[*events.RecordingFinished](t, ws, b, 1)[0]
		got := api.waitCall(b, "its recording id", func(c callcore.Call) bool { return c.RecordingID == fin.RecordingID })
		if got.RecordingID == "" {
			t.Fatalf("call %+v names no recording", got)
		}

		var rec httpapi.Recording
		bustest.CheckFor(t, 10*time.Second, func() error {
			l := getJSON[httpapi.RecordingList](api, "/v1/recordings")
			for _, r := range l.Recordings {
				if r.ID == fin.RecordingID {
					rec = r
					return nil
				}
			}
			return fmt.Errorf("GET /v1/recordings = %+v, want %s", l, fin.RecordingID)
		})
		if rec.CallID != b || rec.Format != "wav" || rec.DurationMS < 400 {
			t.Errorf("recording %+v", rec)
		}
		resp, wav := api.do(specValid, "GET", rec.AudioURL, nil, nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "audio/wav" {
			t.Fatalf("GET %s = %d %q", rec.AudioURL, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		chans, format, err := audio.ReadWAVChannels(bytes.NewReader(wav))
		if err != nil {
			t.Fatalf("the recording is not a WAV: %v", err)
		}
		heard := false
		for _, ch := range chans {
			for i := 0; i+1600 <= len(ch); i += 800 {
				if math.Abs(restDominant(ch[i:i+1600])-1000) < 20 && audio.RMS(ch[i:i+1600]) > 1000 {
					heard = true
				}
			}
		}
		if !heard {
			t.Errorf("the recording (%+v, %d channels) does not hold bob's 1000 Hz tone", format, len(chans))
		}
		resp, part := api.do(specValid, "GET", rec.AudioURL, nil, http.Header{"Range": {"bytes=0-43"}})
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, wav[:44]) {
			t.Errorf("Range 0-43 = %d, %d bytes", resp.StatusCode, len(part))
		}
		resp, raw := api.do(specValid, "DELETE", "/v1/recordings/"+rec.ID, nil, nil)
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("DELETE = %d %s", resp.StatusCode, raw)
		}
		resp, raw = api.do(specValid, "GET", rec.AudioURL, nil, nil)
		wantRESTProblem(t, resp, raw, http.StatusNotFound, callcore.CodeNotFound, "")
	})

	t.Run("bridge", func(t *testing.T) {
		c := api.call("POST", "/v1/calls/"+a+"/bridge", map[string]any{"call_id": b}, http.StatusAccepted)
		if c.ID != a {
			t.Errorf("bridge answered %+v", c)
		}
		waitApp[*events.CallBridged](t, ws, a, 1)
		waitApp[*events.CallBridged](t, ws, b, 1)
		if got := api.waitCall(b, "bridged_with", func(c callcore.Call) bool { return c.BridgedWith == a }); got.BridgedWith != a {
			t.Errorf("call b %+v", got)
		}
		toBob.ResetReceived()
		if err := toAlice.StartTone(700); err != nil {
			t.Fatal(err)
		}
		pcm, err := toBob.WaitAudio(ctx, 4000)
		toAlice.StopTone()
		if err != nil {
			t.Fatal(err)
		}
		if f := restDominant(pcm[1600:]); math.Abs(f-700) > 20 {
			t.Errorf("bob hears %.0f Hz through the bridge, want alice's 700 Hz", f)
		}
		resp, raw := api.do(specValid, "POST", "/v1/calls/"+a+"/bridge", map[string]any{"call_id": b}, nil)
		wantRESTProblem(t, resp, raw, http.StatusConflict, callcore.CodeInvalidState, "")
	})

	for _, id := range []string{a, b} {
		api.call("DELETE", "/v1/calls/"+id, nil, http.StatusAccepted)
		api.inState(id, callcore.StateTerminated)
	}
	n.rec.wait(t, "both calls ended", func(recs []bus.Record) bool {
		return count(appEvents(recs, a), "CallEnded") == 1 && count(appEvents(recs, b), "CallEnded") == 1
	})
}
