package calltest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/audio"
)

// codecCases are the G.711 codecs every media scenario runs with: the
// caller offers only that codec (and telephone-event).
var codecCases = []audio.Codec{audio.PCMU, audio.PCMA}

func offerOnly(c audio.Codec) CallOption { return WithCodecs(c.Name(), "telephone-event") }

// wantFrequency checks the dominant frequency of samples within 2 %.
func wantFrequency(t *testing.T, who string, samples []int16, want float64) {
	t.Helper()
	got := audio.DominantFrequency(samples, audio.SampleRate, 100, 3900)
	if math.Abs(got-want) > want*0.02 {
		t.Fatalf("%s hears %.1f Hz, want %.0f Hz (RMS %.0f over %d samples)", who, got, want, audio.RMS(samples), len(samples))
	}
}

// wantStream checks that packets are one stream of the codec from the
// far end's call: its SSRC, from its advertised RTP address, sequence
// numbers contiguous.
func wantStream(t *testing.T, packets []RTPPacket, from *Call, pt uint8) {
	t.Helper()
	if len(packets) == 0 {
		t.Fatal("no packets")
	}
	src := netip.MustParseAddrPort(from.RTPAddr())
	for i, p := range packets {
		if p.PayloadType != pt || p.SSRC != from.SSRC() || p.From != src || p.Arrival.IsZero() {
			t.Fatalf("packet %d: PT %d SSRC %x from %s, want PT %d SSRC %x from %s", i, p.PayloadType, p.SSRC, p.From, pt, from.SSRC(), src)
		}
		if i > 0 && p.Seq != packets[i-1].Seq+1 {
			t.Fatalf("packet %d: seq %d after %d", i, p.Seq, packets[i-1].Seq)
		}
	}
}

// Two phones send each other a continuous tone; each hears the other's.
func TestMediaToneBothWays(t *testing.T) {
	for _, codec := range codecCases {
		t.Run("codec="+codec.Name(), func(t *testing.T) {
			ctx := testCtx(t)
			alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob"))
			out, in := connect(t, ctx, alice, bob, "udp", offerOnly(codec))
			if out.Codec() != codec || in.Codec() != codec {
				t.Fatalf("codecs %s/%s, want %s", out.Codec(), in.Codec(), codec)
			}
			if out.RemoteRTP().String() != in.RTPAddr() || in.RemoteRTP().String() != out.RTPAddr() {
				t.Fatalf("remote RTP %s/%s, sockets %s/%s", out.RemoteRTP(), in.RemoteRTP(), out.RTPAddr(), in.RTPAddr())
			}
			if err := out.StartTone(440); err != nil {
				t.Fatal(err)
			}
			if err := in.StartTone(1000); err != nil {
				t.Fatal(err)
			}
			if err := out.StartTone(500); !errors.Is(err, ErrInvalidState) {
				t.Fatalf("second tone: %v", err)
			}
			if err := out.SendAudio(ctx, make([]int16, 160)); !errors.Is(err, ErrInvalidState) {
				t.Fatalf("SendAudio during a tone: %v", err)
			}
			heard, err := in.WaitAudio(ctx, 2400)
			if err != nil {
				t.Fatal(err)
			}
			wantFrequency(t, "bob", heard, 440)
			heard, err = out.WaitAudio(ctx, 2400)
			if err != nil {
				t.Fatal(err)
			}
			wantFrequency(t, "alice", heard, 1000)
			out.StopTone()
			in.StopTone()
			out.StopTone() // no tone: nothing to do
			wantStream(t, in.RTPPackets(), out, codec.PayloadType())
			wantStream(t, out.RTPPackets(), in, codec.PayloadType())

			// A stopped tone frees the sender; the tone ends with the call.
			if err := out.SendAudio(ctx, make([]int16, 160)); err != nil {
				t.Fatal(err)
			}
			if err := out.StartTone(300); err != nil {
				t.Fatal(err)
			}
			if err := out.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			if err := out.StartTone(300); !errors.Is(err, ErrCallEnded) {
				t.Fatalf("tone after the end: %v", err)
			}
		})
	}
}

// pattern is a known signal covering G.711's whole range: a sweep of
// amplitudes with both signs, 1000 samples (6¼ frames: the last is padded).
func pattern() []int16 {
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

// What arrives is exactly decode(encode(pcm)), padded with silence to
// whole frames, in packets of 160 samples, one talkspurt.
func TestMediaG711RoundTrip(t *testing.T) {
	for _, codec := range codecCases {
		t.Run("codec="+codec.Name(), func(t *testing.T) {
			ctx := testCtx(t)
			alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob"))
			out, in := connect(t, ctx, alice, bob, "udp", offerOnly(codec))
			pcm := pattern()
			padded := append(slices.Clone(pcm), make([]int16, 7*160-len(pcm))...)
			want := codec.Decode(nil, codec.Encode(nil, padded))
			if slices.Equal(want, padded) {
				t.Fatal("the pattern survives G.711 unchanged: it tests nothing")
			}
			if err := out.SendAudio(ctx, pcm); err != nil {
				t.Fatal(err)
			}
			got, err := in.WaitAudio(ctx, len(want))
			if err != nil {
				t.Fatal(err)
			}
			if i := firstDiff(got, want); i >= 0 {
				t.Fatalf("sample %d: got %d, want %d (sent %d)", i, got[i], want[i], padded[i])
			}
			packets := in.RTPPackets()
			if len(packets) != 7 {
				t.Fatalf("%d packets, want 7", len(packets))
			}
			wantStream(t, packets, out, codec.PayloadType())
			for i, p := range packets {
				if len(p.Payload) != 160 || p.Marker != (i == 0) {
					t.Fatalf("packet %d: %d bytes, marker %v", i, len(p.Payload), p.Marker)
				}
				if i > 0 && p.Timestamp != packets[i-1].Timestamp+160 {
					t.Fatalf("packet %d: timestamp %d after %d", i, p.Timestamp, packets[i-1].Timestamp)
				}
			}
			if tail := packets[6].Payload[1000-960:]; len(bytes.Trim(tail, string([]byte{codec.Silence()}))) != 0 {
				t.Fatalf("last frame padded with %x, want %x", tail, codec.Silence())
			}
			in.ResetReceived()
			if len(in.RTPPackets()) != 0 || len(in.ReceivedAudio()) != 0 {
				t.Fatal("ResetReceived kept something")
			}
		})
	}
}

func firstDiff(a, b []int16) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// Sequence numbers run on across SendAudio bursts; timestamps follow wall
// time: a burst after a pause is a talkspurt whose timestamp jumped by at
// least the pause.
func TestMediaBurstContinuity(t *testing.T) {
	cases := []struct {
		name  string
		pause time.Duration
	}{
		{"pause=none", 0},
		{"pause=200ms", 200 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob"))
			out, in := connect(t, ctx, alice, bob, "udp")
			if err := out.SendAudio(ctx, make([]int16, 3*160)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(tc.pause) // the silence between two talkspurts, not a wait for a result
			if err := out.SendAudio(ctx, make([]int16, 3*160)); err != nil {
				t.Fatal(err)
			}
			if _, err := in.WaitAudio(ctx, 6*160); err != nil {
				t.Fatal(err)
			}
			p := in.RTPPackets()
			wantStream(t, p, out, audio.PCMU.PayloadType())
			if !p[0].Marker || p[1].Marker || p[2].Marker || p[4].Marker || p[5].Marker {
				t.Fatalf("markers %v", markers(p))
			}
			jump := p[3].Timestamp - p[2].Timestamp
			switch {
			case jump%160 != 0 || jump == 0:
				t.Fatalf("timestamp jump %d: not whole frames", jump)
			case !p[3].Marker && jump != 160:
				t.Fatalf("burst continues without a marker but the timestamp jumps %d", jump)
			case tc.pause > 0 && (!p[3].Marker || jump < uint32(tc.pause/ptime)*160):
				t.Fatalf("after a %s pause: marker %v, timestamp jump %d", tc.pause, p[3].Marker, jump)
			}
		})
	}
}

func markers(ps []RTPPacket) []bool {
	out := make([]bool, len(ps))
	for i, p := range ps {
		out[i] = p.Marker
	}
	return out
}

// RFC 4733 digits arrive once each, whatever faults the sender injects;
// the packets on the wire show the faults.
func TestMediaRTPDTMF(t *testing.T) {
	const digits = "1#9A"
	// A 100 ms digit at 20 ms is 5 packets, then 3 end packets.
	cases := []struct {
		name    string
		opts    DTMFOptions
		packets int // on the wire, for the 4 digits
		markers int
	}{
		{"faults=none", DTMFOptions{}, 32, 4},
		{"faults=drop-start", DTMFOptions{DropStart: true}, 28, 0},
		{"faults=drop-ends-1", DTMFOptions{DropEnds: 1}, 28, 4},
		{"faults=drop-ends-3", DTMFOptions{DropEnds: 3}, 20, 4},
		{"faults=duplicate-ends-2", DTMFOptions{DuplicateEnds: 2}, 56, 4},
		{"faults=drop-every-3", DTMFOptions{DropEvery: 3}, 22, 3}, // drops 3, 6… 30; the markers are 1, 9, 17, 25
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each case is a second of paced packets
			ctx := testCtx(t)
			alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob"))
			out, in := connect(t, ctx, alice, bob, "udp")
			if err := out.SendRTPDTMF(ctx, strings.ToLower(digits), 100, tc.opts); err != nil {
				t.Fatal(err)
			}
			got, err := in.WaitRTPDigits(ctx, len(digits))
			if err != nil || got != digits {
				t.Fatalf("bob got %q, %v; want %q", got, err, digits)
			}
			pt := uint8(101)
			waitPackets(t, in, tc.packets)
			p := in.RTPPackets()
			if len(p) != tc.packets {
				t.Fatalf("%d packets on the wire, want %d", len(p), tc.packets)
			}
			nm, stamps := 0, map[uint32]bool{}
			for i, x := range p {
				if x.PayloadType != pt || x.SSRC != out.SSRC() {
					t.Fatalf("packet %d: PT %d SSRC %x", i, x.PayloadType, x.SSRC)
				}
				if x.Marker {
					nm++
				}
				stamps[x.Timestamp] = true
				if i > 0 && int16(x.Seq-p[i-1].Seq) < 0 {
					t.Fatalf("packet %d: seq %d after %d", i, x.Seq, p[i-1].Seq)
				}
			}
			if nm != tc.markers || len(stamps) != len(digits) {
				t.Fatalf("%d markers, %d event timestamps; want %d, %d", nm, len(stamps), tc.markers, len(digits))
			}
			if got := in.RTPDigits(); got != digits {
				t.Fatalf("bob has %q after the stream, want %q", got, digits)
			}
			if in.DTMF() != "" {
				t.Fatalf("RFC 4733 digits counted as INFO digits: %q", in.DTMF())
			}
		})
	}
}

func TestMediaRTPDTMFErrors(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob"))
	out, _ := connect(t, ctx, alice, bob, "udp", WithCodecs("PCMU"))
	if err := out.SendRTPDTMF(ctx, "1", 100, DTMFOptions{}); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("DTMF without telephone-event: %v", err)
	}
	for _, bad := range []struct {
		digits string
		ms     int
		opts   DTMFOptions
	}{{"1x", 100, DTMFOptions{}}, {"", 100, DTMFOptions{}}, {"1", 5, DTMFOptions{}}, {"1", 100, DTMFOptions{DropEnds: 4}}} {
		if err := out.SendRTPDTMF(ctx, bad.digits, bad.ms, bad.opts); err == nil || errors.Is(err, ErrInvalidState) {
			t.Errorf("SendRTPDTMF(%q, %d, %+v): %v", bad.digits, bad.ms, bad.opts, err)
		}
	}
}

// Hold changes who may send; a re-INVITE moving the far end's port moves
// where the audio goes.
func TestMediaFollowsReinvite(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob"))
	out, in := connect(t, ctx, alice, bob, "udp")
	if err := out.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.SendAudio(ctx, make([]int16, 160)); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("held (recvonly) bob sends: %v", err)
	}
	if err := out.SendAudio(ctx, make([]int16, 160)); err != nil { // sendonly
		t.Fatal(err)
	}
	if _, err := in.WaitAudio(ctx, 160); err != nil {
		t.Fatal(err)
	}
	if err := out.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitState(ctx, callcore.StateActive); err != nil {
		t.Fatal(err)
	}
	if err := in.SendAudio(ctx, make([]int16, 160)); err != nil {
		t.Fatal(err)
	}
	if _, err := out.WaitAudio(ctx, 160); err != nil {
		t.Fatal(err)
	}

	// Alice moves her audio to another socket.
	moved := listenUDP(t)
	port := moved.LocalAddr().(*net.UDPAddr).Port
	body := strings.Replace(out.LocalSDP(), fmt.Sprintf("m=audio %d ", portOf(out.RTPAddr())), fmt.Sprintf("m=audio %d ", port), 1)
	if _, err := out.Reinvite(ctx, body); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitState(ctx, callcore.StateActive); err != nil {
		t.Fatal(err)
	}
	if got := in.RemoteRTP().Port(); int(got) != port {
		t.Fatalf("bob sends to port %d, want %d", got, port)
	}
	if err := in.SendAudio(ctx, make([]int16, 160)); err != nil {
		t.Fatal(err)
	}
	if p := readRTP(t, moved); p.SSRC != in.SSRC() || p.PayloadType != 0 || len(p.Payload) != 160 {
		t.Fatalf("the moved socket got %v", p.Header)
	}
}

// waitPackets waits until c received at least n RTP packets.
func waitPackets(t *testing.T, c *Call, n int) {
	t.Helper()
	err := c.wait(testCtx(t), fmt.Sprintf("%d RTP packets", n), func() (bool, error) {
		return len(c.rx.packets) >= n, c.endedErrLocked()
	})
	if err != nil {
		t.Fatalf("%v (got %d)", err, len(c.RTPPackets()))
	}
}

func listenUDP(t *testing.T) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readRTP(t *testing.T, c net.PacketConn) rtp.Packet {
	t.Helper()
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	var p rtp.Packet
	if err := p.Unmarshal(buf[:n]); err != nil {
		t.Fatal(err)
	}
	return p
}

// Raw sends reach the far end as they are: garbage is counted, a foreign
// payload type is recorded but not decoded, another source shows as such,
// RTCP goes to the RTP port + 1.
func TestMediaRawSends(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob"))
	out, in := connect(t, ctx, alice, bob, "udp")

	if err := out.SendRTPRaw([]byte("not rtp")); err != nil {
		t.Fatal(err)
	}
	foreign, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 7, SSRC: 0xdecafbad}, Payload: make([]byte, 160)}).Marshal()
	if err := out.SendRTPRaw(foreign); err != nil {
		t.Fatal(err)
	}
	other := listenUDP(t)
	if err := out.SendRTPRawFrom(other, foreign); err != nil {
		t.Fatal(err)
	}
	waitPackets(t, in, 2)
	p := in.RTPPackets()
	if p[0].SSRC != 0xdecafbad || p[0].PayloadType != 96 || p[0].From.String() != out.RTPAddr() || p[1].From.String() != other.LocalAddr().String() {
		t.Fatalf("packets %+v", p)
	}
	if err := in.wait(ctx, "a bad datagram", func() (bool, error) { return in.rx.bad == 1, nil }); err != nil {
		t.Fatal(err)
	}
	if len(in.ReceivedAudio()) != 0 {
		t.Fatal("PT 96 decoded as audio")
	}

	// RTCP: alice moves her media to a pair of sockets of the test's.
	rtpConn, rtcpConn := listenPair(t)
	body := strings.Replace(out.LocalSDP(), fmt.Sprintf("m=audio %d ", portOf(out.RTPAddr())),
		fmt.Sprintf("m=audio %d ", rtpConn.LocalAddr().(*net.UDPAddr).Port), 1)
	if _, err := out.Reinvite(ctx, body); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitState(ctx, callcore.StateActive); err != nil {
		t.Fatal(err)
	}
	report := []byte{0x80, 201, 0, 1, 0xde, 0xca, 0xfb, 0xad} // an empty RR
	if err := in.SendRTCPRaw(report); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	_ = rtcpConn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := rtcpConn.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], report) || from.String() != in.RTPAddr() {
		t.Fatalf("RTCP port got %x from %v, %v", buf[:n], from, err)
	}

	if err := out.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := out.SendRTPRaw(foreign); !errors.Is(err, ErrCallEnded) {
		t.Fatalf("raw send after the end: %v", err)
	}
	if _, err := out.WaitAudio(ctx, 1); !errors.Is(err, ErrCallEnded) {
		t.Fatalf("WaitAudio after the end: %v", err)
	}
}

// listenPair binds two UDP sockets on consecutive ports, the first even.
func listenPair(t *testing.T) (net.PacketConn, net.PacketConn) {
	t.Helper()
	for range 50 {
		a := listenUDP(t)
		port := a.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 {
			continue
		}
		b, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port+1))
		if err != nil {
			continue
		}
		t.Cleanup(func() { b.Close() })
		return a, b
	}
	t.Fatal("no free pair of ports")
	return nil, nil
}

// A call's receive path takes any datagram: it is RTP or counted as bad,
// and only the negotiated payload types are decoded.
func FuzzRTPDatagram(f *testing.F) {
	audioPkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1}, Payload: []byte{1, 2, 3}}).Marshal()
	event, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, Marker: true}, Payload: []byte{5, 0x80, 3, 0x20}}).Marshal()
	f.Add(audioPkt)
	f.Add(event)
	f.Add([]byte{0x80})
	p := NewPhone(nil)
	defer p.Close()
	media := localMedia{host: "127.0.0.1", port: 4000, codecs: []Codec{knownCodecs["pcmu"], knownCodecs["telephone-event"]}, dir: SendRecv}
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4002}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := newCall(p, callcore.Inbound, "fuzz", "tag", "UDP", nil)
		c.localSDP, c.remoteSDP = media.render(), media.render()
		c.onDatagram(b, from, time.Now())
		c.onDatagram(b, from, time.Now())
		c.flushDTMF(time.Now().Add(time.Second))
		got := len(c.RTPPackets())
		if got+c.BadRTP() != 2 {
			t.Fatalf("%d packets + %d bad from 2 datagrams", got, c.BadRTP())
		}
		if got > 0 {
			pkt := c.RTPPackets()[0]
			wantPCM := 0
			if pkt.PayloadType == 0 {
				wantPCM = 2 * len(pkt.Payload)
			}
			if len(c.ReceivedAudio()) != wantPCM || len(c.RTPDigits()) > 1 {
				t.Fatalf("PT %d, %d payload bytes: %d samples, digits %q", pkt.PayloadType, len(pkt.Payload), len(c.ReceivedAudio()), c.RTPDigits())
			}
		}
	})
}
