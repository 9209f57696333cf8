package rtp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// Every accepted packet reaches media with its exact fields, and with a
// payload of its own (the reader's buffer is reused for the next packet).
func TestReceivePath(t *testing.T) {
	b := newBus(t)
	h := newHubWith(t, b, quiet, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	far := udp(t, 0)
	port := startStream(t, b, rec, "s", portOf(far))

	type pkt struct {
		seq     uint16
		ts      uint32
		pt      uint8
		marker  bool
		payload []byte
	}
	sent := []pkt{
		{100, 8000, 0, true, bytes.Repeat([]byte{0xff}, 160)},
		{101, 8160, 0, false, bytes.Repeat([]byte{0x7f}, 160)},
		{102, 8160, 101, true, []byte{1, 0x0a, 0, 0xa0}},
	}
	for _, p := range sent {
		write(t, far, port, rtpPacket(t, 0xabcdef01, p.seq, p.ts, p.pt, p.marker, p.payload))
	}
	got := waitPackets(t, rec, "s", len(sent))
	for i, want := range sent {
		g := got[i]
		if g.SequenceNumber != want.seq || g.Timestamp != want.ts || g.PayloadType != want.pt ||
			g.Marker != want.marker || !bytes.Equal(g.Payload, want.payload) {
			t.Fatalf("event %d = {seq %d ts %d pt %d marker %v payload % x}, want %+v", i,
				g.SequenceNumber, g.Timestamp, g.PayloadType, g.Marker, g.Payload, want)
		}
	}
	i := info(t, h, "s")
	if i.PacketsReceived != 3 || i.OctetsReceived != 324 || i.RemoteSSRC != 0xabcdef01 || i.Latched != addrOf(far) {
		t.Fatalf("info %+v: want 3 packets, 324 octets, remote SSRC abcdef01, latched %v", i, addrOf(far))
	}
}

func waitPackets(t *testing.T, r *recorder, session string, n int) []*events.RtpPacketReceived {
	t.Helper()
	var got []*events.RtpPacketReceived
	bustest.CheckFor(t, 5*time.Second, func() error {
		if got = all[*events.RtpPacketReceived](r, session); len(got) >= n {
			return nil
		}
		return fmt.Errorf("%d RtpPacketReceived, want %d", len(got), n)
	})
	return got
}

// Symmetric RTP: the stream sends to the signalled address until the far
// end's first packet shows where it really is, then there; UpdateRtpStream
// forgets the latch.
func TestSymmetricLatch(t *testing.T) {
	b := newBus(t)
	h := newHubWith(t, b, quiet, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	signalled, nat, moved := udp(t, 0), udp(t, 0), udp(t, 0)
	port := startStream(t, b, rec, "s", portOf(signalled))

	send := func(seq uint16) {
		publish(t, b, &events.SendRtpPacket{SessionRef: ref("s"), Payload: []byte{byte(seq)}, SequenceNumber: seq})
	}
	send(1)
	if p, _, _ := readRTP(t, signalled); p.SequenceNumber != 1 {
		t.Fatalf("signalled address got seq %d, want 1", p.SequenceNumber)
	}

	// The phone sends from another port than its SDP says (a NAT).
	write(t, nat, port, rtpPacket(t, 5, 1, 0, 0, false, []byte{1}))
	waitFor[*events.RtpPacketReceived](t, rec, "s")
	if l := info(t, h, "s").Latched; l != addrOf(nat) {
		t.Fatalf("latched %v, want %v", l, addrOf(nat))
	}
	// Each packet is sent once: its arrival at the NAT address proves it
	// did not go to the signalled one.
	send(2)
	if p, _, _ := readRTP(t, nat); p.SequenceNumber != 2 {
		t.Fatalf("latched address got seq %d, want 2", p.SequenceNumber)
	}

	publish(t, b, &events.UpdateRtpStream{SessionRef: ref("s"), RemoteAddress: "127.0.0.1", RemotePort: portOf(moved)})
	bustest.CheckFor(t, 5*time.Second, func() error {
		if i := info(t, h, "s"); i.Latched.IsValid() || i.RemotePort != portOf(moved) {
			return fmt.Errorf("after update: latched %v, remote port %d", i.Latched, i.RemotePort)
		}
		return nil
	})
	send(3)
	if p, _, _ := readRTP(t, moved); p.SequenceNumber != 3 {
		t.Fatalf("updated address got seq %d, want 3", p.SequenceNumber)
	}
	// After an update any source may latch again.
	write(t, nat, port, rtpPacket(t, 5, 2, 160, 0, false, []byte{2}))
	waitPackets(t, rec, "s", 2)
	send(4)
	if p, _, _ := readRTP(t, nat); p.SequenceNumber != 4 {
		t.Fatalf("re-latched address got seq %d, want 4", p.SequenceNumber)
	}
}

// Once latched, other sources are dropped until the latched one has been
// silent for longer than RelatchAfter (a NAT rebinding). The arrival clock
// is driven by hand, so the boundary is exact.
func TestForeignSourceAndRelatch(t *testing.T) {
	b := newBus(t)
	clock := &fakeClock{}
	const relatch = 2 * time.Second
	cfg := quiet
	cfg.RelatchAfter = relatch
	h := newHubWith(t, b, cfg, clock)
	rec := record(t, b, events.ChannelRTPToMedia)
	first, second := udp(t, 0), udp(t, 0)
	port := startStream(t, b, rec, "s", 40000)

	var seq uint16
	sendFrom := func(c *net.UDPConn, wantReceived, wantForeign uint64) {
		t.Helper()
		seq++
		write(t, c, port, rtpPacket(t, 5, seq, uint32(seq)*160, 0, false, []byte{byte(seq)}))
		bustest.CheckFor(t, 5*time.Second, func() error {
			i := info(t, h, "s")
			if i.PacketsReceived != wantReceived || i.ForeignSource != wantForeign {
				return fmt.Errorf("received %d, foreign %d: want %d, %d", i.PacketsReceived, i.ForeignSource,
					wantReceived, wantForeign)
			}
			return nil
		})
	}
	sendFrom(first, 1, 0)
	clock.advance(relatch / 2)
	sendFrom(second, 1, 1) // the latched source spoke just now
	clock.advance(relatch / 2)
	sendFrom(second, 1, 2) // silent for exactly RelatchAfter: not yet
	if l := info(t, h, "s").Latched; l != addrOf(first) {
		t.Fatalf("latched %v, want still %v", l, addrOf(first))
	}
	clock.advance(time.Millisecond)
	sendFrom(second, 2, 2) // silent for longer: the new source takes over
	if l := info(t, h, "s").Latched; l != addrOf(second) {
		t.Fatalf("latched %v, want %v", l, addrOf(second))
	}
	sendFrom(first, 2, 3) // and the old one is foreign now

	publish(t, b, &events.SendRtpPacket{SessionRef: ref("s"), Payload: []byte{1}, SequenceNumber: 77})
	if p, _, _ := readRTP(t, second); p.SequenceNumber != 77 {
		t.Fatalf("re-latched source got seq %d, want 77", p.SequenceNumber)
	}
	if n := len(waitPackets(t, rec, "s", 2)); n != 2 {
		t.Fatalf("%d RtpPacketReceived, want 2 (foreign packets are dropped)", n)
	}
}

// A foreign SSRC mid-call is dropped until two of its packets arrive in
// sequence; then it is the remote source, its statistics start afresh,
// and the old SSRC is foreign.
func TestForeignSSRC(t *testing.T) {
	b := newBus(t)
	h := newHubWith(t, b, quiet, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	far := udp(t, 0)
	port := startStream(t, b, rec, "s", portOf(far))

	const oldSSRC, newSSRC = 0x1111, 0x2222
	steps := []struct {
		ssrc      uint32
		seq       uint16
		delivered bool
	}{
		{oldSSRC, 1, true},
		{oldSSRC, 2, true},
		{oldSSRC, 4, true}, // seq 3 lost
		{newSSRC, 50000, false},
		{oldSSRC, 5, true},      // the old source is still the source
		{newSSRC, 50002, false}, // not in sequence: probation starts over
		{newSSRC, 50003, true},  // in sequence: adopted
		{oldSSRC, 6, false},     // now foreign
		{newSSRC, 50004, true},
	}
	var wantSeqs []uint16
	for n, s := range steps {
		write(t, far, port, rtpPacket(t, s.ssrc, s.seq, uint32(s.seq)*160, 0, false, []byte{byte(n)}))
		if s.delivered {
			wantSeqs = append(wantSeqs, s.seq)
		}
		bustest.CheckFor(t, 5*time.Second, func() error {
			i := info(t, h, "s")
			if got := i.PacketsReceived + i.ForeignSSRC; got != uint64(n+1) {
				return fmt.Errorf("%d packets handled, want %d", got, n+1)
			}
			return nil
		})
	}
	got := waitPackets(t, rec, "s", len(wantSeqs))
	if len(got) != len(wantSeqs) {
		t.Fatalf("%d packets delivered, want %d", len(got), len(wantSeqs))
	}
	for i, ev := range got {
		if ev.SequenceNumber != wantSeqs[i] {
			t.Fatalf("delivered seq %d at %d, want %d", ev.SequenceNumber, i, wantSeqs[i])
		}
	}
	i := info(t, h, "s")
	if i.RemoteSSRC != newSSRC || i.ForeignSSRC != 3 {
		t.Fatalf("remote SSRC %#x, foreign %d: want %#x, 3", i.RemoteSSRC, i.ForeignSSRC, newSSRC)
	}
	// The old source lost one packet; the new one none. Counted from the
	// old source's numbering, the jump to 50003 would be thousands lost.
	if i.PacketsLost != 1 {
		t.Fatalf("packets lost %d, want 1", i.PacketsLost)
	}
}

// Every kind of datagram that is not RTP is counted, relayed to no one,
// and latches nothing.
func TestMalformedRTP(t *testing.T) {
	valid := rtpPacket(t, 9, 1, 0, 0, false, []byte{1, 2, 3, 4})
	with := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	cases := []struct {
		name string
		b    []byte
	}{
		{"kind=empty", []byte{}},
		{"kind=short", valid[:11]},
		{"kind=version-1", with(func(b []byte) []byte { b[0] = 0x40; return b })},
		{"kind=version-0", with(func(b []byte) []byte { b[0] = 0x00; return b })},
		{"kind=csrc-beyond-end", with(func(b []byte) []byte { b[0] |= 0x0f; return b })},
		{"kind=extension-header-beyond-end", with(func(b []byte) []byte { b[0] |= 0x10; return b[:13] })},
		{"kind=extension-beyond-end", with(func(b []byte) []byte {
			b[0] |= 0x10
			return append(b[:12], 0xbe, 0xde, 0, 9, 1, 2, 3, 4)
		})},
		{"kind=padding-beyond-end", with(func(b []byte) []byte { b[0] |= 0x20; b[len(b)-1] = 200; return b })},
		{"kind=padding-zero", with(func(b []byte) []byte { b[0] |= 0x20; b[len(b)-1] = 0; return b })},
		{"kind=padding-eats-payload", with(func(b []byte) []byte { b[0] |= 0x20; b[len(b)-1] = 4; return b })},
		{"kind=no-payload", valid[:12]},
		{"kind=rtcp-payload-type", with(func(b []byte) []byte { b[1] = 0xc8; return b })},
		{"kind=oversize", append(bytes.Clone(valid), make([]byte, maxDatagram)...)},
	}
	b := newBus(t)
	h := newHubWith(t, b, quiet, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	garbage, good := udp(t, 0), udp(t, 0)
	port := startStream(t, b, rec, "s", 40000)
	for n, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			write(t, garbage, port, c.b)
			bustest.CheckFor(t, 5*time.Second, func() error {
				if m := info(t, h, "s").Malformed; m != uint64(n+1) {
					return fmt.Errorf("malformed %d, want %d", m, n+1)
				}
				return nil
			})
		})
	}
	write(t, good, port, valid)
	waitFor[*events.RtpPacketReceived](t, rec, "s")
	i := info(t, h, "s")
	if i.PacketsReceived != 1 || i.Latched != addrOf(good) || i.Malformed != uint64(len(cases)) {
		t.Fatalf("info %+v: want 1 packet, latched %v, %d malformed", i, addrOf(good), len(cases))
	}
	if n := len(all[*events.RtpPacketReceived](rec, "s")); n != 1 {
		t.Fatalf("%d RtpPacketReceived, want 1", n)
	}
}

// The sequence and loss rules of RFC 3550 A.1 and A.3, on the receiver
// alone.
func TestSeqStats(t *testing.T) {
	cases := []struct {
		name         string
		seqs         []uint16
		wantLost     int64
		wantExtended uint32
		wantDropped  int
	}{
		{"seq=in-order", []uint16{10, 11, 12, 13}, 0, 13, 0},
		{"seq=loss", []uint16{10, 11, 14, 15}, 2, 15, 0},
		{"seq=duplicates", []uint16{10, 11, 11, 12, 12}, -2, 12, 0},
		{"seq=reordered", []uint16{10, 12, 11, 13}, 0, 13, 0},
		{"seq=wrap", []uint16{65534, 65535, 0, 1}, 0, 65536 + 1, 0},
		{"seq=wrap-with-loss", []uint16{65534, 1, 2}, 2, 65536 + 2, 0},
		{"seq=one-jump-dropped", []uint16{10, 11, 20000, 12}, 0, 12, 1},
		{"seq=jump-resyncs", []uint16{10, 11, 20000, 20001, 20003}, 1, 20003, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := receiver{relatchAfter: time.Second}
			dropped := 0
			for _, seq := range c.seqs {
				h := header(1, seq, 0, 0)
				if v, _ := r.receive(&h, 1, src1, 0); v != accepted {
					dropped++
				}
			}
			if got := r.stats.totalLost(); got != c.wantLost {
				t.Errorf("lost %d, want %d", got, c.wantLost)
			}
			if got := r.stats.extendedMax(); got != c.wantExtended {
				t.Errorf("extended highest %d, want %d", got, c.wantExtended)
			}
			if dropped != c.wantDropped || r.badSeq != uint64(c.wantDropped) {
				t.Errorf("dropped %d (badSeq %d), want %d", dropped, r.badSeq, c.wantDropped)
			}
		})
	}
}

// The fraction lost covers the packets since the last report only.
func TestFractionLostPerInterval(t *testing.T) {
	r := receiver{relatchAfter: time.Second}
	feed := func(seqs ...uint16) {
		for _, seq := range seqs {
			h := header(1, seq, 0, 0)
			r.receive(&h, 1, src1, 0)
		}
	}
	feed(1, 2, 3, 4, 5, 6, 7, 8) // expected 8, received 8
	if f := r.stats.interval(); f != 0 {
		t.Fatalf("fraction %d, want 0", f)
	}
	feed(10, 12, 13, 16) // expected 8 (9-16), received 4
	if f := r.stats.interval(); f != 128 {
		t.Fatalf("fraction %d, want 128 (half lost)", f)
	}
	if f := r.stats.interval(); f != 0 {
		t.Fatalf("fraction of an empty interval %d, want 0", f)
	}
	feed(16, 16, 17) // duplicates outnumber: lost in the interval is negative
	if f := r.stats.interval(); f != 0 {
		t.Fatalf("fraction with duplicates %d, want 0", f)
	}
	if l := r.stats.totalLost(); l != 4-2 {
		t.Fatalf("cumulative lost %d, want 2", l)
	}
}

func TestClamp24(t *testing.T) {
	cases := []struct {
		lost int64
		want uint32
	}{
		{0, 0}, {5, 5}, {-1, 0xffffff}, {0x7fffff, 0x7fffff}, {0x800000, 0x7fffff},
		{-0x800000, 0x800000}, {-0x900000, 0x800000},
	}
	for _, c := range cases {
		if got := clamp24(c.lost); got != c.want {
			t.Errorf("clamp24(%d) = %#x, want %#x", c.lost, got, c.want)
		}
	}
}

func TestNTPTime(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	ntp := ntpTime(at)
	if secs := ntp >> 32; secs != uint64(at.Unix())+2208988800 {
		t.Fatalf("NTP seconds %d", secs)
	}
	if frac := uint32(ntp); frac != 1<<31 {
		t.Fatalf("NTP fraction %#x, want half a second", frac)
	}
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, ntp)
	if m := ntpMiddle(ntp); m != binary.BigEndian.Uint32(b[2:6]) {
		t.Fatalf("middle %#x, want %#x", m, binary.BigEndian.Uint32(b[2:6]))
	}
}

// Bound on every interface (a dual-stack socket), a stream sees IPv4 far
// ends as 4-in-6 addresses; it latches and answers them as plain IPv4.
func TestLatchOnDualStackSocket(t *testing.T) {
	b := newBus(t)
	h, err := New(Config{Ports: freePairs(t, 1), RTCPInterval: time.Hour, StatsInterval: time.Hour}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bustest.Close(t, "hub", h.Close) })
	rec := record(t, b, events.ChannelRTPToMedia)
	far := udp(t, 0)
	port := startStream(t, b, rec, "s", 0) // nothing signalled: only the latch can help
	write(t, far, port, rtpPacket(t, 1, 1, 0, 0, false, []byte{1}))
	waitFor[*events.RtpPacketReceived](t, rec, "s")
	if l := info(t, h, "s").Latched; l != addrOf(far) {
		t.Fatalf("latched %v, want %v", l, addrOf(far))
	}
	publish(t, b, &events.SendRtpPacket{SessionRef: ref("s"), Payload: []byte{1}, SequenceNumber: 3})
	if p, _, _ := readRTP(t, far); p.SequenceNumber != 3 {
		t.Fatalf("far end got seq %d, want 3", p.SequenceNumber)
	}
}
