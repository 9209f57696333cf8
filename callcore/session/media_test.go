package session

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

func TestPlayback(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredInbound()

	h.ok(&events.CmdPlayAudio{SessionRef: sref(id), File: "welcome.wav", LoopCount: 2}, callcore.StateActive)
	if p := expectEv[*events.PlayAudio](h, id, "media:PlayAudio"); p.FilePath != "welcome.wav" || p.LoopCount != 2 {
		t.Fatalf("PlayAudio = %+v", p)
	}
	h.publish(&events.AudioPlaybackFinished{SessionRef: sref(id)})
	if f := expectEv[*events.PlaybackFinished](h, id, "app:PlaybackFinished"); f.File != "welcome.wav" || f.Reason != "finished" {
		t.Fatalf("PlaybackFinished = %+v", f)
	}
	h.refused(&events.CmdStopAudio{SessionRef: sref(id)}, callcore.CodeInvalidState, "")

	// A second play replaces the first; each finish is reported in order.
	h.ok(&events.CmdPlayAudio{SessionRef: sref(id), File: "a.wav"}, callcore.StateActive)
	h.expect(id, "media:PlayAudio")
	h.ok(&events.CmdPlayAudio{SessionRef: sref(id), URL: "https://media.test/b.wav"}, callcore.StateActive)
	h.expect(id, "media:StopAudio", "media:PlayAudio")
	h.ok(&events.CmdStopAudio{SessionRef: sref(id)}, callcore.StateActive)
	h.expect(id, "media:StopAudio")
	h.publish(&events.AudioPlaybackFinished{SessionRef: sref(id)})
	h.publish(&events.AudioPlaybackFinished{SessionRef: sref(id)})
	got := h.expect(id, "app:PlaybackFinished", "app:PlaybackFinished")
	if f := got[0].ev.(*events.PlaybackFinished); f.File != "a.wav" || f.Reason != "stopped" {
		t.Fatalf("first PlaybackFinished = %+v", f)
	}
	if f := got[1].ev.(*events.PlaybackFinished); f.File != "https://media.test/b.wav" || f.Reason != "stopped" {
		t.Fatalf("second PlaybackFinished = %+v", f)
	}

	// A playback media cannot play.
	h.ok(&events.CmdPlayAudio{SessionRef: sref(id), File: "missing.wav"}, callcore.StateActive)
	h.expect(id, "media:PlayAudio")
	h.publish(&events.MediaError{SessionRef: sref(id), Error: "no such file", ErrorCode: "playback_failed"})
	if f := expectEv[*events.PlaybackFinished](h, id, "app:PlaybackFinished"); f.File != "missing.wav" || f.Reason != "failed" {
		t.Fatalf("PlaybackFinished = %+v", f)
	}
	if c := h.call(id); c.State != callcore.StateActive {
		t.Fatalf("a failed playback ended the call: %s", c.State)
	}
}

func TestPlaybackRefused(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredInbound()
	for _, tc := range []struct {
		name  string
		cmd   events.CmdPlayAudio
		field string
	}{
		{"file=none", events.CmdPlayAudio{}, "file"},
		{"file=and-url", events.CmdPlayAudio{File: "a.wav", URL: "https://x.test/a.wav"}, "file"},
		{"url=ftp", events.CmdPlayAudio{URL: "ftp://x.test/a.wav"}, "url"},
		{"file=newline", events.CmdPlayAudio{File: "a\n.wav"}, "file"},
		{"loop_count=-1", events.CmdPlayAudio{File: "a.wav", LoopCount: -1}, "loop_count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := tc.cmd
			cmd.SessionID = id
			h.refused(&cmd, callcore.CodeValidationFailed, tc.field)
		})
	}
	r := h.incoming("sip:bob@callbus.test")
	h.expect(r, "app:CallCreated")
	h.refused(&events.CmdPlayAudio{SessionRef: sref(r), File: "a.wav"}, callcore.CodeInvalidState, "")
	h.refused(&events.CmdStopAudio{SessionRef: sref(r)}, callcore.CodeInvalidState, "")
}

func TestRecording(t *testing.T) {
	h := newHarness(t, Config{RecordingDir: "/var/rec"})
	id := h.answeredInbound()
	h.ok(&events.CmdStartRecording{SessionRef: sref(id)}, callcore.StateActive)
	start := expectEv[*events.StartRecording](h, id, "media:StartRecording")
	c := h.call(id)
	if !strings.HasPrefix(c.RecordingID, "rec_") || start.FilePath != filepath.Join("/var/rec", c.RecordingID+".wav") || start.Format != "wav" {
		t.Fatalf("StartRecording = %+v, recording id %q", start, c.RecordingID)
	}
	h.refused(&events.CmdStartRecording{SessionRef: sref(id)}, callcore.CodeInvalidState, "")
	h.publish(&events.RecordingStarted{SessionRef: sref(id), FilePath: start.FilePath})
	h.ok(&events.CmdStopRecording{SessionRef: sref(id)}, callcore.StateActive)
	h.expect(id, "media:StopRecording")
	h.refused(&events.CmdStopRecording{SessionRef: sref(id)}, callcore.CodeInvalidState, "")
	h.publish(&events.RecordingStopped{SessionRef: sref(id), FilePath: start.FilePath, DurationMS: 1234})
	fin := expectEv[*events.RecordingFinished](h, id, "app:RecordingFinished")
	if fin.RecordingID != c.RecordingID || fin.FilePath != start.FilePath || fin.DurationMS != 1234 {
		t.Fatalf("RecordingFinished = %+v", fin)
	}
	if got := h.call(id).RecordingID; got != c.RecordingID {
		t.Fatalf("recording id %q after the recording, want the last one %q", got, c.RecordingID)
	}
	h.refused(&events.CmdStopRecording{SessionRef: sref(id)}, callcore.CodeInvalidState, "")
	h.refused(&events.CmdStartRecording{SessionRef: sref(id), MaxDurationS: -1}, callcore.CodeValidationFailed, "max_duration_s")
}

// A recording stops by itself at max_duration_s, and with the call.
func TestRecordingStops(t *testing.T) {
	t.Run("by=max_duration_s", func(t *testing.T) {
		h := newHarness(t, Config{})
		id := h.answeredInbound()
		h.ok(&events.CmdStartRecording{SessionRef: sref(id), MaxDurationS: 1}, callcore.StateActive)
		h.expect(id, "media:StartRecording")
		begun := time.Now()
		stop := h.expect(id, "media:StopRecording")[0]
		if d := time.Since(begun); d < 900*time.Millisecond {
			t.Fatalf("stopped after %v, want about 1s", d)
		}
		if cause, want := stop.env.Cause, h.input(id, "StartRecording").ID; cause != want {
			t.Fatalf("StopRecording cause = %v, want the StartRecording command %v", cause, want)
		}
	})
	t.Run("by=hangup", func(t *testing.T) {
		h := newHarness(t, Config{})
		id := h.answeredInbound()
		h.ok(&events.CmdStartRecording{SessionRef: sref(id)}, callcore.StateActive)
		path := expectEv[*events.StartRecording](h, id, "media:StartRecording").FilePath
		h.publish(&events.CallTerminated{SessionRef: sref(id), Reason: "remote_hangup"})
		h.expect(id, "media:StopRecording", "media:StopMediaStream")
		h.publish(&events.RecordingStopped{SessionRef: sref(id), FilePath: path, DurationMS: 10})
		h.publish(&events.MediaStreamStopped{SessionRef: sref(id)})
		h.expect(id, "app:RecordingFinished", "app:CallEnded")
	})
}

func TestBridge(t *testing.T) {
	h := newHarness(t, Config{})
	a := h.answeredInbound()
	b := h.answeredOutbound()
	h.ok(&events.CmdBridgeCalls{SessionRef: sref(a), PeerSessionID: b}, callcore.StateActive)
	got := h.expect(a, "media:BridgeMedia", "app:CallBridged")
	if bm := got[0].ev.(*events.BridgeMedia); bm.PeerSessionID != b {
		t.Fatalf("BridgeMedia = %+v", bm)
	}
	if cb := expectEv[*events.CallBridged](h, b, "app:CallBridged"); cb.PeerSessionID != a {
		t.Fatalf("peer's CallBridged = %+v", cb)
	}
	if ca, cb := h.call(a), h.call(b); ca.BridgedWith != b || cb.BridgedWith != a {
		t.Fatalf("bridged_with: %q, %q", ca.BridgedWith, cb.BridgedWith)
	}
	// The peer's feed shows the bridge too, although its own handler did
	// nothing: a's step published b's CallUpdated.
	h.waitUpdate(b, func(c callcore.Call) bool { return c.BridgedWith == a })
	c := h.answeredInbound()
	h.refused(&events.CmdBridgeCalls{SessionRef: sref(c), PeerSessionID: a}, callcore.CodeInvalidState, "")
	h.refused(&events.CmdBridgeCalls{SessionRef: sref(a), PeerSessionID: c}, callcore.CodeInvalidState, "")

	// One leg hangs up: the bridge ends.
	h.publish(&events.CallTerminated{SessionRef: sref(a), Reason: "remote_hangup"})
	h.expect(a, "media:UnbridgeMedia", "media:StopMediaStream")
	h.publish(&events.MediaStreamStopped{SessionRef: sref(a)})
	h.expect(a, "app:CallEnded")
	if cb := h.call(b); cb.BridgedWith != "" {
		t.Fatalf("bridged_with %q after the peer ended", cb.BridgedWith)
	}
	h.waitUpdate(b, func(c callcore.Call) bool { return c.BridgedWith == "" })
	h.ok(&events.CmdBridgeCalls{SessionRef: sref(b), PeerSessionID: c}, callcore.StateActive)
	h.expect(b, "media:BridgeMedia", "app:CallBridged")
	h.expect(c, "app:CallBridged")
}

func TestBridgeRefused(t *testing.T) {
	h := newHarness(t, Config{})
	a := h.answeredInbound()
	r := h.incoming("sip:bob@callbus.test")
	h.expect(r, "app:CallCreated")
	for _, tc := range []struct {
		name  string
		id    string
		peer  string
		code  callcore.Code
		field string
	}{
		{"peer=empty", a, "", callcore.CodeValidationFailed, "peer_session_id"},
		{"peer=self", a, a, callcore.CodeValidationFailed, "peer_session_id"},
		{"peer=unknown", a, newID(), callcore.CodeValidationFailed, "peer_session_id"},
		{"peer=ringing", a, r, callcore.CodeInvalidState, ""},
		{"call=ringing", r, a, callcore.CodeInvalidState, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.refused(&events.CmdBridgeCalls{SessionRef: sref(tc.id), PeerSessionID: tc.peer}, tc.code, tc.field)
		})
	}
}

func TestMediaQualityKept(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredInbound()
	if q := h.call(id).Media.Quality; q != nil {
		t.Fatalf("quality before any report: %+v", q)
	}
	h.publish(&events.MediaQualityUpdate{SessionRef: sref(id),
		QualityMetrics: events.QualityMetrics{MOS: 4.3, PacketLossPct: 0.5, JitterMS: 3.25, RttMS: 40}})
	bustest.CheckFor(t, waitTimeout, func() error {
		q := h.call(id).Media.Quality
		if q == nil || q.MOS != 4.3 || q.PacketLossPct != 0.5 || q.JitterMS != 3.25 || q.RttMS != 40 {
			return fmt.Errorf("quality %+v", q)
		}
		return nil
	})
}
