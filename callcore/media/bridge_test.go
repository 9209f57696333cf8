package media

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// A PCMU leg bridged with a PCMA leg: audio received on one goes out on
// the other transcoded (sample-exact: G.711 transcoding is decode then
// encode), DTMF received on one is sent on the other with its own
// telephone-event payload type, and unbridging ends both.
func TestBridge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	const a, b = "leg-u", "leg-a"
	e.start(t, a, offerPCMU, events.MediaConfig{}) // telephone-event 101
	e.start(t, b, offerPCMA, events.MediaConfig{}) // telephone-event 96
	e.publish(t, &events.BridgeMedia{SessionRef: ref(a), PeerSessionID: b})
	bustest.CheckFor(t, 5e9, func() error {
		ia, _ := e.media.Stream(a)
		ib, _ := e.media.Stream(b)
		if ia.BridgedWith != b || ib.BridgedWith != a {
			return fmt.Errorf("bridged with %q and %q", ia.BridgedWith, ib.BridgedWith)
		}
		return nil
	})

	relayed := func(from, to string, fromCodec, toCodec audio.Codec, freq float64) {
		t.Helper()
		in := toneFrames(fromCodec, freq, 15)
		before := len(decodeAudible(toCodec, e.sent(to))) / 160
		e.inject(t, from, fromCodec.PayloadType(), in)
		pkts := e.waitSent(t, to, before+len(in), audible(toCodec))
		var out [][]byte
		for _, p := range pkts {
			if audible(toCodec)(p) {
				out = append(out, p.Payload)
			}
		}
		out = out[before:]
		for i := range in {
			if want := audio.Transcode(nil, in[i], fromCodec, toCodec); !bytes.Equal(out[i], want) {
				t.Fatalf("%s→%s frame %d: sent % x…, want % x…", from, to, i, out[i][:6], want[:6])
			}
		}
		pcm := toCodec.Decode(nil, bytes.Join(out, nil))
		if f := audio.DominantFrequency(pcm, 8000, 100, 3900); !near(f, freq, 10) {
			t.Fatalf("%s→%s: %.1f Hz, want %.0f", from, to, f, freq)
		}
	}
	relayed(a, b, audio.PCMU, audio.PCMA, 1000)
	relayed(b, a, audio.PCMA, audio.PCMU, 600)

	// DTMF passthrough: a 7 received on the PCMU leg (101) is reported
	// there and sent on the PCMA leg (96) with its duration.
	e.injectDTMF(t, a, 101, 4000, dtmfPayloads(t, '7', 100))
	if d := waitFor[*events.DtmfDetected](t, e.rec, a); d.Digit != "7" || d.DurationMS != 100 {
		t.Fatalf("DtmfDetected %+v", d)
	}
	isDTMF := func(p *events.SendRtpPacket) bool { return p.PayloadType == 96 }
	var relayedDTMF []*events.SendRtpPacket
	for _, p := range e.waitSent(t, b, 8, isDTMF) {
		if isDTMF(p) {
			relayedDTMF = append(relayedDTMF, p)
		}
	}
	checkDigit(t, relayedDTMF, 7, 96, []uint16{160, 320, 480, 640, 800, 800, 800, 800})
	if n := len(all[*events.DtmfDetected](e.rec, b)); n != 0 {
		t.Fatal("the relayed digit was reported on the leg that sent it")
	}

	e.publish(t, &events.UnbridgeMedia{SessionRef: ref(b)})
	bustest.CheckFor(t, 5e9, func() error {
		ia, _ := e.media.Stream(a)
		ib, _ := e.media.Stream(b)
		if ia.BridgedWith != "" || ib.BridgedWith != "" {
			return fmt.Errorf("still bridged with %q and %q", ia.BridgedWith, ib.BridgedWith)
		}
		return nil
	})
	before := len(decodeAudible(audio.PCMA, e.sent(b)))
	e.inject(t, a, 0, toneFrames(audio.PCMU, 1000, 5))
	e.waitTicks(t, 3)
	if n := len(decodeAudible(audio.PCMA, e.sent(b))); n != before {
		t.Fatalf("%d samples relayed after UnbridgeMedia", n-before)
	}

	// A stop ends the bridge on the other side.
	e.publish(t, &events.BridgeMedia{SessionRef: ref(b), PeerSessionID: a})
	bustest.CheckFor(t, 5e9, func() error {
		if ia, _ := e.media.Stream(a); ia.BridgedWith != b {
			return fmt.Errorf("not bridged again")
		}
		return nil
	})
	e.stop(t, b)
	if ia, _ := e.media.Stream(a); ia.BridgedWith != "" {
		t.Fatalf("bridged with %q after its stop", ia.BridgedWith)
	}
}

func TestBridgeRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	e.start(t, "live", offerPCMU, events.MediaConfig{})
	e.publish(t, &events.StartMediaStream{SessionRef: ref("pending")})
	waitFor[*events.StartRtpStream](t, e.rec, "pending")
	cases := []struct {
		name, id, peer string
		code           events.MediaErrorCode
		text           string
	}{
		{"peer=unknown", "live", "ghost", events.MediaErrNoSession, "ghost"},
		{"peer=not-started", "live", "pending", events.MediaErrNoSession, "pending"},
		{"session=unknown", "ghost2", "live", events.MediaErrNoSession, "no started media stream"},
		{"peer=self", "live", "live", events.MediaErrInvalidRequest, "itself"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := len(all[*events.MediaError](e.rec, c.id))
			e.publish(t, &events.BridgeMedia{SessionRef: ref(c.id), PeerSessionID: c.peer})
			f := waitN[*events.MediaError](t, e.rec, c.id, n+1)[n]
			if f.ErrorCode != c.code || !strings.Contains(f.Error, c.text) {
				t.Fatalf("MediaError{%q, %q}, want %s with %q", f.ErrorCode, f.Error, c.code, c.text)
			}
		})
	}
	if mi, _ := e.media.Stream("live"); mi.BridgedWith != "" {
		t.Fatalf("bridged with %q", mi.BridgedWith)
	}
}
