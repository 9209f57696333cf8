package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/events"
)

// Media interop with peers we did not write: sipp echoing our RTP, and the
// baresip softphone calling the echo number.

// sipp calls sip:tone@ with -rtp_echo: it sends back every RTP packet it
// receives, so callbus receives its own tone. The call's recording holds
// that tone on the far-end channel, and the final quality report counts
// packets both ways.
func TestSippRTPEcho(t *testing.T) {
	requireTool(t, "sipp")
	n := openMediaNode(t, env{"CALLBUS_INBOUND": "answer"})
	ctx := flowCtx(t)
	done := make(chan sippResult, 1)
	go func() {
		res, err := sipp(ctx, requireToolPath("sipp"), t.TempDir(), "-sn", "uac", "-s", "tone", "-rtp_echo",
			"-mp", strconv.Itoa(freeUDPPort(t)), n.sipTarget("udp"),
			"-i", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t)), "-m", "1", "-d", "3000")
		if err != nil {
			res.failed, res.out = -1, err.Error()
		}
		done <- res
	}()

	answered := appEvent(t, n, "", func(*events.CallAnswered) bool { return true })
	id := answered.SessionID
	command(t, n, &events.CmdStartRecording{SessionRef: sessionRef(id)})
	res := <-done
	if res.ok != 1 || res.failed != 0 {
		t.Fatalf("sipp: %d successful, %d failed\n%s", res.ok, res.failed, tail(res.out, 30))
	}
	rec := appEvent(t, n, id, func(*events.RecordingFinished) bool { return true })
	far := farEnd(t, rec.FilePath)
	if len(far) < audio.SampleRate/2 {
		t.Fatalf("the far-end channel holds %d voiced samples; sipp echoed less than 0.5 s of our tone", len(far))
	}
	// The tone built-in plays 350 + 440 Hz: both must come back.
	for _, f := range []float64{350, 440} {
		if p, q := audio.Goertzel(far, audio.SampleRate, f), audio.Goertzel(far, audio.SampleRate, 1000); p < 20*q {
			t.Errorf("the echoed audio has %.4f power at %.0f Hz against %.4f at 1000 Hz: not our tone", p, f, q)
		}
	}
	q := lastQuality(t, n, id)
	if q.PacketsSent == 0 || q.PacketsReceived == 0 || q.PacketsReceived > q.PacketsSent {
		t.Errorf("final quality %+v: want packets both ways, no more received than sent (sipp echoes)", q)
	}
}

// baresip, a real softphone, calls sip:echo@ playing an 880 Hz tone from a
// file, and records what it hears: its own tone, sent back by callbus.
func TestBaresipCallsEchoAndHearsItself(t *testing.T) {
	bin := requireTool(t, "baresip")
	n := openMediaNode(t, nil)
	dir := t.TempDir()
	toneFile := filepath.Join(dir, "tone.wav")
	if err := os.WriteFile(toneFile, toneWAV(t, audio.SampleRate, 1, 880, 12), 0o644); err != nil {
		t.Fatal(err)
	}
	dumps := filepath.Join(dir, "dump")
	if err := os.Mkdir(dumps, 0o755); err != nil {
		t.Fatal(err)
	}
	// aufile plays the tone, aubridge is a player that plays nowhere, and
	// sndfile dumps what baresip decodes to dump-…-dec.wav.
	config := strings.Join([]string{
		"poll_method poll",
		"sip_listen 127.0.0.1:" + strconv.Itoa(freeUDPPort(t)),
		"audio_source aufile," + toneFile,
		"audio_player aubridge,nil",
		"audio_alert aubridge,nil",
		"audio_srate 8000",
		"audio_channels 1",
		"rtp_ports 40000-40998",
		"module_path /usr/lib/baresip/modules",
		"module g711.so",
		"module aufile.so",
		"module aubridge.so",
		"module sndfile.so",
		"module_app account.so",
		"module_app menu.so",
		"snd_path " + dumps,
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte("<sip:baresip@127.0.0.1>;regint=0\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(flowCtx(t), 30*time.Second)
	defer cancel()
	// -n 127.0.0.1 keeps baresip's SDP on loopback; -t quits (hanging up)
	// after that many seconds.
	cmd := exec.CommandContext(ctx, bin, "-f", dir, "-n", "127.0.0.1",
		"-e", "/dial sip:echo@"+n.sipTarget("udp"), "-t", "5")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("baresip: %v\n%s", err, tail(string(out), 40))
	}

	answered := appEvent(t, n, "", func(*events.CallAnswered) bool { return true })
	e := appEvent(t, n, answered.SessionID, func(*events.CallEnded) bool { return true })
	if e.Reason != string(callcore.EndRemoteHangup) {
		t.Errorf("the call ended %q, want remote_hangup (baresip hung up)", e.Reason)
	}
	decoded, err := filepath.Glob(filepath.Join(dumps, "dump-*-dec.wav"))
	if err != nil || len(decoded) != 1 {
		t.Fatalf("baresip's dump of what it heard: %v %v\n%s", decoded, err, tail(string(out), 40))
	}
	f, err := os.Open(decoded[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	heard, format, err := audio.ReadWAV(f)
	if err != nil {
		t.Fatalf("%s: %v", decoded[0], err)
	}
	heard = voiced(audio.PCMU, heard)
	if len(heard) < audio.SampleRate {
		t.Fatalf("baresip heard %d voiced samples (%+v), want 1 s of its echo at least\n%s",
			len(heard), format, tail(string(out), 40))
	}
	if got := dominant(heard); math.Abs(got-880) > 9 {
		t.Fatalf("baresip hears %.1f Hz, want its own 880 Hz", got)
	}
}

// farEnd returns the voiced samples of the far-end (left) channel of a
// recording.
func farEnd(t *testing.T, path string) []int16 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ch, format, err := audio.ReadWAVChannels(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 2 || format.SampleRate != audio.SampleRate {
		t.Fatalf("%s: %d channels at %d Hz, want stereo at 8 kHz", path, len(ch), format.SampleRate)
	}
	return voiced(audio.PCMU, ch[0])
}

// lastQuality returns the last MediaQualityUpdate of session id, waiting
// for the call to end first (the final one precedes MediaStreamStopped).
func lastQuality(t *testing.T, n *node, id string) events.QualityMetrics {
	t.Helper()
	appEvent(t, n, id, func(*events.CallEnded) bool { return true })
	var q *events.QualityMetrics
	for _, r := range n.rec.all() {
		if e, ok := r.Event.(*events.MediaQualityUpdate); ok && e.SessionID == id {
			q = &e.QualityMetrics
		}
	}
	if q == nil {
		t.Fatalf("no MediaQualityUpdate for %s; the bus saw:\n%s", id, describe(n.rec.all()))
	}
	return *q
}

// requireToolPath is the path of a tool requireTool already vouched for.
func requireToolPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		panic(fmt.Sprintf("%s vanished: %v", name, err))
	}
	return p
}
