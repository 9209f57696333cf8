package media

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// One stream through silence, a playback, a hold, a resume and a digit:
// the sequence number grows by one per packet, timestamps move in steps
// of 160 per tick (across the hold by at least the ticks it lasted; a
// digit's packets all carry the tick it started on), and markers are
// exactly on the stream's first packet, the first after the hold, the
// digit's first and the first audio packet after the digit.
func TestSendSequence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeWAV(t, dir, "short.wav", 8000, sine(400, 8000, 0.1)) // 800 samples: 5 packets
	e := newEnvCfg(t, 0, Config{MediaDir: dir})
	const id = "seq"
	e.start(t, id, offerPCMU, events.MediaConfig{})
	pcmu := audio.PCMU

	before := e.waitSent(t, id, 5, nil)
	for _, p := range before {
		if !silent(pcmu, p.Payload) || p.PayloadType != 0 || len(p.Payload) != 160 {
			t.Fatalf("before any source: packet %+v, want 160 bytes of PCMU silence", p)
		}
	}
	e.publish(t, &events.PlayAudio{SessionRef: ref(id), FilePath: "short.wav"})
	waitFor[*events.AudioPlaybackFinished](t, e.rec, id)

	e.publish(t, &events.HoldMedia{SessionRef: ref(id)})
	bustest.CheckFor(t, 5e9, func() error {
		if mi, _ := e.media.Stream(id); !mi.Held {
			return fmt.Errorf("not held yet")
		}
		return nil
	})
	// The clock reads the hold and counts packets under the session's
	// lock: nothing is sent after this snapshot until the resume.
	mi, _ := e.media.Stream(id)
	heldAt, sentAtHold := e.tickIndex(), int(mi.PacketsSent)
	e.waitTicks(t, 10)
	if mi, _ := e.media.Stream(id); mi.PacketsSent != uint64(sentAtHold) {
		t.Fatalf("%d packets sent while held", int(mi.PacketsSent)-sentAtHold)
	}
	heldTicks := e.tickIndex() - heldAt
	e.publish(t, &events.ResumeMedia{SessionRef: ref(id)})
	e.waitSent(t, id, sentAtHold+3, nil)

	e.publish(t, &events.MediaSendDtmf{SessionRef: ref(id), Tones: "1", DurationMS: 100})
	isDTMF := func(p *events.SendRtpPacket) bool { return p.PayloadType == 101 }
	pkts := e.waitSent(t, id, 8, isDTMF)
	n := len(pkts)
	e.waitSent(t, id, n+3, nil)
	// Held again, the counters stop: they match what was published.
	e.publish(t, &events.HoldMedia{SessionRef: ref(id)})
	bustest.CheckFor(t, 5e9, func() error {
		mi, _ := e.media.Stream(id)
		if n := len(e.sent(id)); !mi.Held || mi.PacketsSent != uint64(n) || mi.DTMFSent != 1 {
			return fmt.Errorf("held %v, counted %d packets, %d digits; recorded %d packets, 1 digit",
				mi.Held, mi.PacketsSent, mi.DTMFSent, n)
		}
		return nil
	})
	e.stop(t, id)
	pkts = e.sent(id)

	// Markers: on the first packet, on the first after every pause (the
	// hold; a tick the clock skipped under load shows as a pause too), on
	// a digit's first packet and on the first audio packet after a digit;
	// nowhere else.
	var dtmf []*events.SendRtpPacket
	var lastAudio *events.SendRtpPacket
	resumed := false
	for i, p := range pkts {
		if i > 0 && p.SequenceNumber != pkts[i-1].SequenceNumber+1 {
			t.Fatalf("packet %d: seq %d after %d", i, p.SequenceNumber, pkts[i-1].SequenceNumber)
		}
		if i == 0 {
			if !p.Marker {
				t.Fatal("the first packet has no marker")
			}
			lastAudio = p
			continue
		}
		prev := pkts[i-1]
		if isDTMF(p) {
			dtmf = append(dtmf, p)
			first := len(dtmf) == 1
			if p.Marker != first || p.Timestamp != dtmf[0].Timestamp {
				t.Fatalf("DTMF packet %d: marker %v, timestamp %d; the digit's is %d", i, p.Marker, p.Timestamp, dtmf[0].Timestamp)
			}
			if first && (step(prev.Timestamp, p.Timestamp) < 1 || (p.Timestamp-prev.Timestamp)%160 != 0) {
				t.Fatalf("the digit starts at %d, not a whole number of ticks after the audio at %d", p.Timestamp, prev.Timestamp)
			}
			continue
		}
		jump := p.Timestamp - lastAudio.Timestamp
		if jump%160 != 0 || int32(jump) <= 0 {
			t.Fatalf("packet %d: timestamp %d after %d", i, p.Timestamp, lastAudio.Timestamp)
		}
		switch {
		case isDTMF(prev):
			if !p.Marker || step(dtmf[0].Timestamp, p.Timestamp) < 8 {
				t.Fatalf("first audio after the digit: marker %v, %d ticks after its start (want ≥ 8)", p.Marker,
					step(dtmf[0].Timestamp, p.Timestamp))
			}
		case jump == 160 && p.Marker:
			t.Fatalf("packet %d: marker in the middle of the stream", i)
		case jump > 160 && !p.Marker:
			t.Fatalf("packet %d: timestamp jumps %d ticks without a marker", i, jump/160)
		}
		if i == sentAtHold {
			resumed = true
			if uint64(jump/160) < heldTicks {
				t.Fatalf("first packet after the hold: %d ticks later, the hold lasted %d", jump/160, heldTicks)
			}
		}
		lastAudio = p
	}
	if !resumed || !pkts[sentAtHold].Marker {
		t.Fatal("no marked packet after the hold")
	}
	if len(dtmf) != 8 {
		t.Fatalf("%d DTMF packets for a 100 ms digit, want 8 (5 + 3 end)", len(dtmf))
	}
	played := 0
	for _, p := range pkts {
		if audible(pcmu)(p) {
			played++
		}
	}
	if played != 5 {
		t.Fatalf("%d audible packets for an 800-sample file, want 5", played)
	}
}

// step returns how many ticks of 160 lie from a to b (negative if b is before a).
func step(a, b uint32) int32 { return int32(b-a) / 160 }

// Echo sends back exactly what was received: the same G.711 codes (a
// decode/encode round trip of G.711 is exact), in order, once each.
func TestEcho(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	const id = "echo"
	e.start(t, id, offerPCMU, events.MediaConfig{Builtin: events.BuiltinEcho})
	in := toneFrames(audio.PCMU, 700, 6)
	e.inject(t, id, 0, in)
	pkts := e.waitSent(t, id, len(in), audible(audio.PCMU))
	var out [][]byte
	for _, p := range pkts {
		if audible(audio.PCMU)(p) {
			out = append(out, p.Payload)
		}
	}
	if len(out) != len(in) {
		t.Fatalf("%d audible packets echoed, want %d", len(out), len(in))
	}
	for i := range in {
		roundTrip := audio.PCMU.Encode(nil, audio.PCMU.Decode(nil, in[i]))
		if !bytes.Equal(out[i], roundTrip) || !bytes.Equal(out[i], in[i]) {
			t.Fatalf("frame %d: echoed % x…, sent % x…", i, out[i][:8], in[i][:8])
		}
	}
	if mi, _ := e.media.Stream(id); mi.PacketsReceived != uint64(len(in)) || mi.QueueDropped != 0 || mi.Builtin != "echo" {
		t.Fatalf("stream %+v", mi)
	}
}

// The built-in tone sends 350 Hz + 440 Hz continuously.
func TestTone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	const id = "tone"
	e.start(t, id, offerPCMA, events.MediaConfig{Builtin: events.BuiltinTone})
	pkts := e.waitSent(t, id, 25, nil)
	pcm := decodeAudible(audio.PCMA, pkts)
	if len(pcm) != 160*len(pkts) {
		t.Fatalf("%d of %d packets audible", len(pcm)/160, len(pkts))
	}
	p350, p440 := audio.Goertzel(pcm, 8000, 350), audio.Goertzel(pcm, 8000, 440)
	p1k, p600 := audio.Goertzel(pcm, 8000, 1000), audio.Goertzel(pcm, 8000, 600)
	if p350 < 100*p1k || p440 < 100*p1k || p350 < 100*p600 || !near(p350/p440, 1, 0.2) {
		t.Fatalf("power 350 Hz %.3g, 440 Hz %.3g, 600 Hz %.3g, 1 kHz %.3g", p350, p440, p600, p1k)
	}
}

// Nothing is sent when our direction does not send, or the far end's
// address is unknown or 0.0.0.0; the stream is still served (received DTMF
// is reported).
func TestNotSending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	e.start(t, "recvonly", phoneOffer("m=audio 49170 RTP/AVP 0 101", append(g711DTMF, "a=sendonly")...), events.MediaConfig{})
	e.start(t, "zero-addr", sdpOf("v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "c=IN IP4 0.0.0.0", "t=0 0",
		"m=audio 4000 RTP/AVP 0"), events.MediaConfig{})
	e.publish(t, &events.StartMediaStream{SessionRef: ref("offerer")})
	waitFor[*events.StartRtpStream](t, e.rec, "offerer")
	e.publish(t, &events.RtpStreamStarted{SessionRef: ref("offerer"), LocalPort: 20002})
	waitFor[*events.MediaStreamStarted](t, e.rec, "offerer")
	e.start(t, "control", offerPCMU, events.MediaConfig{})

	e.injectDTMF(t, "recvonly", 101, 777, dtmfPayloads(t, '4', 60))
	waitFor[*events.DtmfDetected](t, e.rec, "recvonly")
	e.waitSent(t, "control", 10, nil)
	for _, id := range []string{"recvonly", "zero-addr", "offerer"} {
		if n := len(e.sent(id)); n != 0 {
			t.Errorf("%s: %d packets sent", id, n)
		}
	}
}
