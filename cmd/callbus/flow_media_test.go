package main

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/calltest"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// The media flows end to end: calltest phones send and receive real RTP
// with a whole node, and the tests check the audio itself — sample-exact
// where G.711 allows it, by dominant frequency where a resampler or a
// tone is involved — as well as the RTP stream callbus sends and the
// events it reports.

// openMediaNode is openFlowNode with CALLBUS_MEDIA_DIR set to a fresh
// temporary directory unless extra names one: media opens the directory
// at start, and the default ./media does not exist where tests run.
func openMediaNode(t *testing.T, extra env) *node {
	t.Helper()
	e := env{"CALLBUS_MEDIA_DIR": t.TempDir()}
	for k, v := range extra {
		e[k] = v
	}
	return openFlowNode(t, e)
}

// mediaCodecs are the codecs the phone offers alone in codec=… cases.
var mediaCodecs = []audio.Codec{audio.PCMU, audio.PCMA}

// offerOnly makes a phone's call offer codec alone (and telephone-event).
func offerOnly(codec audio.Codec) calltest.CallOption {
	return calltest.WithCodecs(codec.Name(), "telephone-event")
}

// mediaPattern is a known signal over G.711's whole range, 1000 samples
// (6¼ frames: the phone pads the last with silence).
func mediaPattern() []int16 {
	pcm := make([]int16, 1000)
	for i := range pcm {
		v := int16(-32767 + i*65)
		if i%2 == 1 {
			v = -v
		}
		pcm[i] = v
	}
	return pcm
}

// voiced returns the 20 ms frames of received audio that are not the
// codec's silence, joined: callbus sends silence whenever it has nothing
// else to send, and its clock may put a silent frame between two frames
// of a signal when a packet arrives just after a tick.
func voiced(codec audio.Codec, pcm []int16) []int16 {
	silence := codec.Decode(nil, []byte{codec.Silence()})[0]
	var out []int16
	for off := 0; off+audio.FrameSamples <= len(pcm); off += audio.FrameSamples {
		f := pcm[off : off+audio.FrameSamples]
		if slices.ContainsFunc(f, func(s int16) bool { return s != silence }) {
			out = append(out, f...)
		}
	}
	return out
}

// indexOf returns where want starts in got, or -1.
func indexOf(got, want []int16) int {
	for i := 0; i+len(want) <= len(got); i++ {
		if slices.Equal(got[i:i+len(want)], want) {
			return i
		}
	}
	return -1
}

// dominant returns the dominant frequency of samples between 100 and
// 3900 Hz.
func dominant(samples []int16) float64 {
	return audio.DominantFrequency(samples, audio.SampleRate, 100, 3900)
}

// hears waits until c received at least n voiced samples (past skip of
// them) and checks that their dominant frequency is want, within 1 %.
func hears(t *testing.T, who string, c *calltest.Call, n int, want float64) {
	t.Helper()
	var got []int16
	bustest.CheckFor(t, 10*time.Second, func() error {
		got = voiced(c.Codec(), c.ReceivedAudio())
		if len(got) < n {
			return fmt.Errorf("%s heard %d voiced samples of %d", who, len(got), n)
		}
		return nil
	})
	got = got[len(got)-n:]
	if f := dominant(got); math.Abs(f-want) > want/100 {
		t.Fatalf("%s hears %.1f Hz, want %.0f Hz (RMS %.0f)", who, f, want, audio.RMS(got))
	}
}

// toneWAV encodes seconds of a sine at freq Hz as a 16-bit WAV at rate
// with channels identical channels.
func toneWAV(t *testing.T, rate, channels int, freq, seconds float64) []byte {
	t.Helper()
	ch := make([]int16, int(float64(rate)*seconds))
	for i := range ch {
		ch[i] = int16(12000 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	all := make([][]int16, channels)
	for i := range all {
		all[i] = ch
	}
	var b bytes.Buffer
	if err := audio.EncodeWAV(&b, rate, all); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// serveWAV serves wav over HTTP on loopback and returns its URL.
func serveWAV(t *testing.T, wav []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "audio/wav")
		_, _ = w.Write(wav)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/tone.wav"
}

// appEvent waits for the first session_to_app event of type T of session
// id for which ok holds, and returns it.
func appEvent[T events.Event](t *testing.T, n *node, id string, ok func(T) bool) T {
	t.Helper()
	var found T
	var zero T
	n.rec.wait(t, fmt.Sprintf("%T of %s", zero, id), func(recs []bus.Record) bool {
		for _, ev := range appEvents(recs, id) {
			if e, is := ev.(T); is && ok(e) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// rtpDigits returns the digits of the CallDtmfReceived(rfc4733) events of
// session id, joined, and fails on any other DTMF method.
func rtpDigits(t *testing.T, recs []bus.Record, id string) string {
	t.Helper()
	var got string
	for _, ev := range appEvents(recs, id) {
		if e, ok := ev.(*events.CallDtmfReceived); ok {
			if e.Method != events.DtmfMethodRFC4733 {
				t.Errorf("DtmfReceived %+v, want method rfc4733", *e)
			}
			got += e.Digits
		}
	}
	return got
}

// hangup ends the phone's call and waits for the node's CallEnded.
func hangup(t *testing.T, n *node, id string, c *calltest.Call) {
	t.Helper()
	if err := c.Hangup(flowCtx(t)); err != nil {
		t.Fatal(err)
	}
	ended(t, n, id)
}

// (a) sip:echo sends back what it gets: the phone's pattern returns
// sample-exact, as G.711 left it.
func TestFlowMediaEcho(t *testing.T) {
	for _, codec := range mediaCodecs {
		t.Run("codec="+codec.Name(), func(t *testing.T) {
			ctx := flowCtx(t)
			n := openMediaNode(t, nil)
			alice := calltest.StartPhone(t, calltest.WithUser("alice"))
			id, c := callNode(t, n, alice, "echo", offerOnly(codec))
			if c.Codec() != codec {
				t.Fatalf("negotiated %s, want %s", c.Codec(), codec)
			}
			pcm := mediaPattern()
			padded := append(slices.Clone(pcm), make([]int16, 7*audio.FrameSamples-len(pcm))...)
			want := codec.Decode(nil, codec.Encode(nil, padded))
			c.ResetReceived()
			if err := c.SendAudio(ctx, pcm); err != nil {
				t.Fatal(err)
			}
			bustest.CheckFor(t, 10*time.Second, func() error {
				if got := voiced(codec, c.ReceivedAudio()); indexOf(got, want) < 0 {
					return fmt.Errorf("the pattern did not come back whole: %d voiced samples of %d", len(got), len(want))
				}
				return nil
			})
			if got := voiced(codec, c.ReceivedAudio()); len(got) != len(want) {
				t.Errorf("%d voiced samples came back, want exactly the %d sent", len(got), len(want))
			}
			packets := c.RTPPackets()
			for _, p := range packets {
				if p.PayloadType != codec.PayloadType() || p.SSRC != packets[0].SSRC || p.From != c.RemoteRTP() {
					t.Fatalf("echo packet PT %d SSRC %x from %s; want PT %d, SSRC %x, from %s (symmetric)",
						p.PayloadType, p.SSRC, p.From, codec.PayloadType(), packets[0].SSRC, c.RemoteRTP())
				}
			}
			hangup(t, n, id, c)
		})
	}
}

// continuity checks callbus's RTP stream as the phone got it: one SSRC,
// sequence numbers contiguous, timestamps +160 a packet except after a
// pause in sending, where the marker is set and the timestamp jumped by
// whole frames. It returns how many pauses it saw.
func continuity(t *testing.T, packets []calltest.RTPPacket) int {
	t.Helper()
	if len(packets) < 2 {
		t.Fatalf("%d packets", len(packets))
	}
	pauses := 0
	for i := 1; i < len(packets); i++ {
		p, q := packets[i-1], packets[i]
		jump := q.Timestamp - p.Timestamp
		switch {
		case q.SSRC != p.SSRC:
			t.Fatalf("packet %d: SSRC %x after %x", i, q.SSRC, p.SSRC)
		case q.Seq != p.Seq+1:
			t.Fatalf("packet %d: seq %d after %d", i, q.Seq, p.Seq)
		case jump == 160 && q.Marker:
			t.Fatalf("packet %d (seq %d): marker in the middle of a talkspurt", i, q.Seq)
		case jump == 160:
		case jump%160 != 0 || int32(jump) < 0 || !q.Marker:
			t.Fatalf("packet %d (seq %d): timestamp %d after %d (jump %d), marker %v", i, q.Seq, q.Timestamp, p.Timestamp, jump, q.Marker)
		default:
			pauses++
		}
	}
	return pauses
}

// (b) callbus's stream stays one stream across a hold and a resume by
// bus command and a playback: sequence numbers run on, timestamps follow
// wall time.
func TestFlowMediaContinuity(t *testing.T) {
	ctx := flowCtx(t)
	n := openMediaNode(t, env{"CALLBUS_INBOUND": "answer"})
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	id, c := callNode(t, n, alice, "bob")
	audioOf := func() []calltest.RTPPacket {
		var out []calltest.RTPPacket
		for _, p := range c.RTPPackets() {
			if p.PayloadType == audio.PCMU.PayloadType() {
				out = append(out, p)
			}
		}
		return out
	}
	waitMore := func(what string, k int) {
		t.Helper()
		before := len(audioOf())
		bustest.CheckFor(t, 10*time.Second, func() error {
			if got := len(audioOf()) - before; got < k {
				return fmt.Errorf("%s: %d more packets, want %d", what, got, k)
			}
			return nil
		})
	}
	waitMore("before the hold", 10)

	command(t, n, &events.CmdHoldCall{SessionRef: sessionRef(id)})
	appEvent(t, n, id, func(*events.CallHeld) bool { return true })
	if err := c.WaitState(ctx, callcore.StateOnHold); err != nil {
		t.Fatal(err)
	}
	held := len(audioOf())
	time.Sleep(200 * time.Millisecond) // a pause on hold long enough to show in the timestamps
	command(t, n, &events.CmdResumeCall{SessionRef: sessionRef(id)})
	appEvent(t, n, id, func(*events.CallResumed) bool { return true })
	waitMore("after the resume", 10)

	url := serveWAV(t, toneWAV(t, audio.SampleRate, 1, 1000, 0.3))
	command(t, n, &events.CmdPlayAudio{SessionRef: sessionRef(id), URL: url})
	if e := appEvent(t, n, id, func(*events.PlaybackFinished) bool { return true }); e.Reason != "finished" {
		t.Fatalf("PlaybackFinished %+v", *e)
	}
	waitMore("after the playback", 5)

	packets := audioOf()
	// Held (a=sendonly offered), callbus sends nothing: one pause, with
	// its marker after it, and no other gap.
	if pauses := continuity(t, packets); pauses != 1 {
		t.Errorf("%d pauses in callbus's stream, want the hold's alone (%d packets before it)", pauses, held)
	}
	if !packets[0].Marker {
		t.Error("the stream's first packet has no marker")
	}
	if f := dominant(voiced(audio.PCMU, c.ReceivedAudio())); math.Abs(f-1000) > 10 {
		t.Errorf("the playback sounds at %.1f Hz, want 1000", f)
	}
	hangup(t, n, id, c)
}

// (c) RFC 4733 both ways: callbus reports exactly the digits the phone
// sent, whatever the packets lost or repeated; the phone gets the digits
// of SendDtmf.
func TestFlowMediaDtmf(t *testing.T) {
	cases := []struct {
		name string
		opts calltest.DTMFOptions
	}{
		{"faults=none", calltest.DTMFOptions{}},
		{"faults=drop-start", calltest.DTMFOptions{DropStart: true}},
		{"faults=duplicate-ends-2", calltest.DTMFOptions{DuplicateEnds: 2}},
		{"faults=drop-ends-2", calltest.DTMFOptions{DropEnds: 2}},
		{"faults=drop-every-4", calltest.DTMFOptions{DropEvery: 4}},
	}
	ctx := flowCtx(t)
	n := openMediaNode(t, env{"CALLBUS_INBOUND": "answer"})
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	id, c := callNode(t, n, alice, "bob")
	sent := ""
	for _, tc := range cases {
		t.Run("from=phone/"+tc.name, func(t *testing.T) {
			const digits = "19#*"
			if err := c.SendRTPDTMF(ctx, digits, 100, tc.opts); err != nil {
				t.Fatal(err)
			}
			sent += digits
			recs := n.rec.wait(t, "DtmfReceived "+sent, func(recs []bus.Record) bool {
				return len(rtpDigits(t, recs, id)) >= len(sent)
			})
			if got := rtpDigits(t, recs, id); got != sent {
				t.Fatalf("callbus reported %q, want %q", got, sent)
			}
		})
	}
	// Every end packet lost: a digit ends when the next one starts.
	t.Run("from=phone/faults=drop-ends-3", func(t *testing.T) {
		if err := c.SendRTPDTMF(ctx, "AB", 100, calltest.DTMFOptions{DropEnds: 3}); err != nil {
			t.Fatal(err)
		}
		if err := c.SendRTPDTMF(ctx, "C", 100, calltest.DTMFOptions{}); err != nil {
			t.Fatal(err)
		}
		sent += "ABC"
		recs := n.rec.wait(t, "DtmfReceived "+sent, func(recs []bus.Record) bool {
			return len(rtpDigits(t, recs, id)) >= len(sent)
		})
		if got := rtpDigits(t, recs, id); got != sent {
			t.Fatalf("callbus reported %q, want %q", got, sent)
		}
	})
	t.Run("to=phone", func(t *testing.T) {
		const digits = "0123456789*#ABCD"
		command(t, n, &events.CmdSendDtmf{SessionRef: sessionRef(id), Digits: digits, DurationMS: 60})
		got, err := c.WaitRTPDigits(ctx, len(digits))
		if err != nil || got != digits {
			t.Fatalf("the phone got %q, %v; want %q", got, err, digits)
		}
		var audioSSRC uint32
		nEvents := 0
		for _, p := range c.RTPPackets() {
			switch p.PayloadType {
			case audio.PCMU.PayloadType():
				audioSSRC = p.SSRC
			case 101:
				nEvents++
				if audioSSRC != 0 && p.SSRC != audioSSRC {
					t.Fatalf("telephone-event SSRC %x, audio's %x", p.SSRC, audioSSRC)
				}
			}
		}
		if nEvents < len(digits)*4 { // 60 ms: 3 packets, then 3 end packets
			t.Errorf("%d telephone-event packets for %d digits", nEvents, len(digits))
		}
		if c.DTMF() != "" {
			t.Errorf("DTMF by SIP INFO too: %q", c.DTMF())
		}
	})
	hangup(t, n, id, c)
}

// (d) A 44.1 kHz stereo WAV plays at 8 kHz at its own pitch, from
// CALLBUS_MEDIA_DIR or from a URL.
func TestFlowMediaPlayback(t *testing.T) {
	wav := toneWAV(t, 44100, 2, 1000, 0.6)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tone.wav"), wav, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cmd  func(id string) *events.CmdPlayAudio
	}{
		{"source=media_dir", func(id string) *events.CmdPlayAudio {
			return &events.CmdPlayAudio{SessionRef: sessionRef(id), File: "tone.wav"}
		}},
		{"source=url", func(id string) *events.CmdPlayAudio {
			return &events.CmdPlayAudio{SessionRef: sessionRef(id), URL: serveWAV(t, wav)}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := openMediaNode(t, env{"CALLBUS_INBOUND": "answer", "CALLBUS_MEDIA_DIR": dir})
			alice := calltest.StartPhone(t, calltest.WithUser("alice"))
			id, c := callNode(t, n, alice, "bob")
			c.ResetReceived()
			command(t, n, tc.cmd(id))
			if e := appEvent(t, n, id, func(*events.PlaybackFinished) bool { return true }); e.Reason != "finished" {
				t.Fatalf("PlaybackFinished %+v; the bus saw:\n%s", *e, describe(n.rec.all()))
			}
			hears(t, "alice", c, 3200, 1000)
			got := voiced(c.Codec(), c.ReceivedAudio())
			// 0.6 s is 30 frames; the resampler's edges may add or
			// remove one.
			if frames := len(got) / audio.FrameSamples; frames < 29 || frames > 31 {
				t.Errorf("%d voiced frames, want the WAV's 30", frames)
			}
			hangup(t, n, id, c)
		})
	}
}

// (e) A recording keeps the far end on its left channel.
func TestFlowMediaRecording(t *testing.T) {
	n := openMediaNode(t, env{"CALLBUS_INBOUND": "answer"})
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	id, c := callNode(t, n, alice, "bob")
	command(t, n, &events.CmdStartRecording{SessionRef: sessionRef(id)})
	if err := c.StartTone(700); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // the length of the recording, not a wait for a result
	c.StopTone()
	command(t, n, &events.CmdStopRecording{SessionRef: sessionRef(id)})
	e := appEvent(t, n, id, func(*events.RecordingFinished) bool { return true })
	f, err := os.Open(e.FilePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ch, format, err := audio.ReadWAVChannels(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 2 || format.SampleRate != audio.SampleRate {
		t.Fatalf("recording has %d channels, format %+v; want stereo at 8 kHz", len(ch), format)
	}
	far, near := voiced(audio.PCMU, ch[0]), ch[1]
	if len(far) < 2400 {
		t.Fatalf("the far-end channel has %d voiced samples, want 0.3 s at least", len(far))
	}
	if f := dominant(far); math.Abs(f-700) > 7 {
		t.Errorf("the far-end channel sounds at %.1f Hz, want 700", f)
	}
	if rf, rn := audio.RMS(far), audio.RMS(near); rn*100 > rf {
		t.Errorf("the near-end channel (RMS %.0f) is not silent beside the far end's (RMS %.0f)", rn, rf)
	}
	if file := int64(len(ch[0]) * 1000 / audio.SampleRate); e.DurationMS <= 0 || math.Abs(float64(e.DurationMS-file)) > 20 {
		t.Errorf("RecordingFinished duration %d ms, the file holds %d ms", e.DurationMS, file)
	}
	hangup(t, n, id, c)
}

// (f) A bridge of a PCMU call and a PCMA call carries a tone each way,
// transcoded.
func TestFlowMediaBridge(t *testing.T) {
	n := openMediaNode(t, env{"CALLBUS_INBOUND": "answer"})
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	bob := calltest.StartPhone(t, calltest.WithUser("bob"))
	ida, a := callNode(t, n, alice, "carol", offerOnly(audio.PCMU))
	idb, b := callNode(t, n, bob, "dave", offerOnly(audio.PCMA))
	if a.Codec() != audio.PCMU || b.Codec() != audio.PCMA {
		t.Fatalf("codecs %s/%s, want PCMU/PCMA", a.Codec(), b.Codec())
	}
	command(t, n, &events.CmdBridgeCalls{SessionRef: sessionRef(ida), PeerSessionID: idb})
	appEvent(t, n, ida, func(*events.CallBridged) bool { return true })
	a.ResetReceived()
	b.ResetReceived()
	if err := a.StartTone(440); err != nil {
		t.Fatal(err)
	}
	if err := b.StartTone(1300); err != nil {
		t.Fatal(err)
	}
	hears(t, "bob", b, 3200, 440)
	hears(t, "alice", a, 3200, 1300)
	a.StopTone()
	b.StopTone()
	for _, x := range []struct {
		c  *calltest.Call
		pt uint8
	}{{a, 0}, {b, 8}} {
		for _, p := range x.c.RTPPackets() {
			if p.PayloadType != x.pt {
				t.Fatalf("%s got PT %d, want %d", x.c.ID(), p.PayloadType, x.pt)
			}
		}
	}
	hangup(t, n, ida, a)
	hangup(t, n, idb, b)
}

// Bad RTP in the middle of a call to sip:echo — garbage, truncated
// packets, a wrong payload type, a foreign SSRC, packets from an address
// that is not the phone's, garbage on the RTCP port — is dropped: the call
// goes on, and what comes back afterwards is exactly the phone's audio.
func TestFlowMediaBadRTP(t *testing.T) {
	ctx := flowCtx(t)
	n := openMediaNode(t, nil)
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	id, c := callNode(t, n, alice, "echo", offerOnly(audio.PCMU))
	// A first burst latches callbus's stream on the phone's address and
	// SSRC.
	if err := c.SendAudio(ctx, mediaPattern()); err != nil {
		t.Fatal(err)
	}
	hdr := func(pt uint8, seq uint16, ssrc uint32) []byte {
		return []byte{0x80, pt, byte(seq >> 8), byte(seq), 0, 0, 0x10, 0, byte(ssrc >> 24), byte(ssrc >> 16), byte(ssrc >> 8), byte(ssrc)}
	}
	loud := bytes.Repeat([]byte{0x10}, 160) // a loud PCMU frame
	other, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, b := range [][]byte{
		[]byte("not RTP at all, just text"),
		{0x80, 0, 1},                               // truncated header
		hdr(0, 9, c.SSRC()),                        // header only, no payload
		{0x8F, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4},    // 15 CSRCs announced, none there
		append(hdr(18, 40000, c.SSRC()), loud...),  // G.729 payload type, not negotiated
		append(hdr(0, 40001, 0xDEADBEEF), loud...), // a foreign SSRC
	} {
		if err := c.SendRTPRaw(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SendRTPRawFrom(other, append(hdr(0, 7, c.SSRC()), loud...)); err != nil { // another source address
		t.Fatal(err)
	}
	if err := c.SendRTCPRaw([]byte("garbage on the RTCP port")); err != nil {
		t.Fatal(err)
	}

	// None of the loud injected frames is echoed; then what came back so
	// far is forgotten and the pattern sent now comes back whole.
	time.Sleep(300 * time.Millisecond) // time for a wrongly accepted frame to be echoed; not a wait for a result
	for _, p := range c.RTPPackets() {
		if bytes.Equal(p.Payload, loud) {
			t.Fatalf("an injected packet was echoed back (seq %d): bad RTP reached the media", p.Seq)
		}
	}
	c.ResetReceived()
	pcm := mediaPattern()
	padded := append(slices.Clone(pcm), make([]int16, 7*audio.FrameSamples-len(pcm))...)
	want := audio.PCMU.Decode(nil, audio.PCMU.Encode(nil, padded))
	if err := c.SendAudio(ctx, pcm); err != nil {
		t.Fatal(err)
	}
	bustest.CheckFor(t, 10*time.Second, func() error {
		if got := voiced(audio.PCMU, c.ReceivedAudio()); indexOf(got, want) < 0 {
			return fmt.Errorf("the pattern did not come back whole after the bad RTP: %d voiced samples", len(got))
		}
		return nil
	})
	if got := voiced(audio.PCMU, c.ReceivedAudio()); len(got) != len(want) {
		t.Errorf("%d voiced samples came back, want exactly the %d sent: injected audio leaked", len(got), len(want))
	}
	if st := c.State(); st != callcore.StateActive {
		t.Fatalf("the call is %s after bad RTP, want active", st)
	}
	hangup(t, n, id, c)
}
