package media

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// The audio tests play the rtp layer themselves: they answer
// StartRtpStream with RtpStreamStarted, read media's SendRtpPacket events
// and publish RtpPacketReceived. The sender clock is real (20 ms), so they
// wait for packets and ticks, never for time.

// Offers of a phone with telephone-event, and without.
var (
	offerPCMU       = phoneOffer("m=audio 49170 RTP/AVP 0 101", g711DTMF...)
	offerPCMA       = phoneOffer("m=audio 49172 RTP/AVP 8 96", "a=rtpmap:8 PCMA/8000", "a=rtpmap:96 telephone-event/8000")
	offerPCMUNoDTMF = phoneOffer("m=audio 49174 RTP/AVP 0")
)

// start starts a session that answers offer, playing rtp, and waits for
// MediaStreamStarted.
func (e *env) start(t *testing.T, id, offer string, cfg events.MediaConfig) {
	t.Helper()
	e.publish(t, &events.StartMediaStream{SessionRef: ref(id), RemoteSDP: offer, MediaConfig: cfg})
	waitFor[*events.StartRtpStream](t, e.rec, id)
	e.publish(t, &events.RtpStreamStarted{SessionRef: ref(id), LocalPort: 20000})
	waitFor[*events.MediaStreamStarted](t, e.rec, id)
}

// stop stops a session's stream, playing rtp, and waits for
// MediaStreamStopped.
func (e *env) stop(t *testing.T, id string) {
	t.Helper()
	e.publish(t, &events.StopMediaStream{SessionRef: ref(id)})
	waitFor[*events.StopRtpStream](t, e.rec, id)
	e.publish(t, &events.RtpStreamStopped{SessionRef: ref(id), Reason: "stopped"})
	waitFor[*events.MediaStreamStopped](t, e.rec, id)
}

// sent returns the packets media sent for id, in order.
func (e *env) sent(id string) []*events.SendRtpPacket { return all[*events.SendRtpPacket](e.rec, id) }

// waitSent waits until media has sent n packets for id that satisfy keep
// (nil: any) and returns all of id's packets.
func (e *env) waitSent(t *testing.T, id string, n int, keep func(*events.SendRtpPacket) bool) []*events.SendRtpPacket {
	t.Helper()
	var pkts []*events.SendRtpPacket
	bustest.CheckFor(t, 10*time.Second, func() error {
		pkts = e.sent(id)
		got := 0
		for _, p := range pkts {
			if keep == nil || keep(p) {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%s: %d matching packets of %d sent, want %d", id, got, len(pkts), n)
		}
		return nil
	})
	return pkts
}

// tickIndex is the clock's tick index: ticks run plus ticks skipped.
func (e *env) tickIndex() uint64 {
	p := e.media.Pacing()
	return p.Ticks + p.Skipped
}

// waitTicks waits until the clock has run n more ticks.
func (e *env) waitTicks(t *testing.T, n uint64) {
	t.Helper()
	start := e.media.Pacing().Ticks
	bustest.CheckFor(t, 10*time.Second, func() error {
		if got := e.media.Pacing().Ticks; got < start+n {
			return fmt.Errorf("%d ticks, want %d", got-start, n)
		}
		return nil
	})
}

// inject publishes the payloads as received packets of id, one per tick
// (so the receive queue never overflows), with consecutive sequence
// numbers and timestamps.
func (e *env) inject(t *testing.T, id string, pt uint8, payloads [][]byte) {
	t.Helper()
	for i, p := range payloads {
		e.publish(t, &events.RtpPacketReceived{SessionRef: ref(id), Payload: p, PayloadType: pt,
			SequenceNumber: uint16(1000 + i), Timestamp: uint32(5000 + 160*i)})
		e.waitTicks(t, 1)
	}
}

// injectDTMF publishes telephone-event payloads of one event (timestamp
// ts) as received packets of id, one per tick.
func (e *env) injectDTMF(t *testing.T, id string, pt uint8, ts uint32, payloads [][]byte) {
	t.Helper()
	for i, p := range payloads {
		e.publish(t, &events.RtpPacketReceived{SessionRef: ref(id), Payload: p, PayloadType: pt,
			SequenceNumber: uint16(2000 + i), Timestamp: ts, Marker: i == 0})
		e.waitTicks(t, 1)
	}
}

// dtmfPayloads returns the RFC 4733 payloads of one digit, as a phone
// sends them (audio.DTMFSender at 20 ms).
func dtmfPayloads(t *testing.T, digit byte, ms int) [][]byte {
	t.Helper()
	snd, err := audio.NewDTMFSender(digit, ms, 20)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		ev, _, done := snd.Next()
		out = append(out, ev.Marshal(nil))
		if done {
			return out
		}
	}
}

// toneFrames returns n 20 ms frames of a sine at freq, encoded with codec.
func toneFrames(codec audio.Codec, freq float64, n int) [][]byte {
	g := audio.NewTone(0.5, freq)
	var out [][]byte
	pcm := make([]int16, audio.FrameSamples)
	for range n {
		g.Fill(pcm)
		out = append(out, codec.Encode(nil, pcm))
	}
	return out
}

// silent reports whether a payload is all the codec's silence code.
func silent(codec audio.Codec, p []byte) bool {
	for _, b := range p {
		if b != codec.Silence() {
			return false
		}
	}
	return true
}

// audible reports whether an audio packet carries sound.
func audible(codec audio.Codec) func(*events.SendRtpPacket) bool {
	return func(p *events.SendRtpPacket) bool { return p.PayloadType == 0 && !silent(codec, p.Payload) }
}

// decodeAudible decodes the audible audio packets of pkts.
func decodeAudible(codec audio.Codec, pkts []*events.SendRtpPacket) []int16 {
	var pcm []int16
	for _, p := range pkts {
		if audible(codec)(p) {
			pcm = codec.Decode(pcm, p.Payload)
		}
	}
	return pcm
}

// sine returns seconds of a sine at freq sampled at rate, amplitude 0.5.
func sine(freq float64, rate int, seconds float64) []int16 {
	n := int(seconds * float64(rate))
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(0.5 * 32767 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return out
}

// writeWAV writes a WAV of the given channels at rate to dir/name.
func writeWAV(t *testing.T, dir, name string, rate int, channels ...[]int16) string {
	t.Helper()
	var b bytes.Buffer
	if err := audio.EncodeWAV(&b, rate, channels); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// near reports whether got is within tol of want.
func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }
