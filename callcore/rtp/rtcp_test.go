package rtp

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

func marshalRTCP(t *testing.T, pkts ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// report finds the one SR or RR of a compound packet, with its reports.
func report(t *testing.T, pkts []rtcp.Packet) (sr *rtcp.SenderReport, rr *rtcp.ReceiverReport, sdes *rtcp.SourceDescription, bye *rtcp.Goodbye) {
	t.Helper()
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.SenderReport:
			sr = p
		case *rtcp.ReceiverReport:
			rr = p
		case *rtcp.SourceDescription:
			sdes = p
		case *rtcp.Goodbye:
			bye = p
		}
	}
	if (sr == nil) == (rr == nil) {
		t.Fatalf("compound RTCP %v: want exactly one SR or RR", pkts)
	}
	if _, first := pkts[0].(*rtcp.SourceDescription); first {
		t.Fatalf("compound RTCP starts with SDES, want SR or RR first")
	}
	return sr, rr, sdes, bye
}

// Garbage on the RTCP port is counted and changes nothing: the stream
// still parses RTCP and relays RTP.
func TestRTCPGarbage(t *testing.T) {
	b := newBus(t)
	h := newHubWith(t, b, quiet, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	far := udp(t, 0)
	port := startStream(t, b, rec, "s", portOf(far))

	garbage := [][]byte{
		{},
		{0x80},
		{0x80, 0xc8, 0, 6},                   // an SR header claiming 28 octets
		{0x40, 0xc9, 0, 1, 0, 0, 0, 1},       // version 1
		{0x81, 0xc9, 0, 1, 0, 0, 0, 1},       // an RR announcing a report it lacks
		{0x80, 0xc9, 0, 0xff, 1, 2, 3, 4},    // length beyond the datagram
		make([]byte, maxDatagram+10),         // oversize
		[]byte("INVITE sip:bob SIP/2.0\r\n"), // not RTCP at all
	}
	for _, g := range garbage {
		write(t, far, port+1, g)
	}
	bustest.CheckFor(t, 5*time.Second, func() error {
		if m := info(t, h, "s").MalformedRTCP; m != uint64(len(garbage)) {
			return fmt.Errorf("malformed RTCP %d, want %d", m, len(garbage))
		}
		return nil
	})
	write(t, far, port+1, marshalRTCP(t, &rtcp.ReceiverReport{SSRC: 3}, rtcp.NewCNAMESourceDescription(3, "far")))
	write(t, far, port, rtpPacket(t, 3, 1, 0, 0, false, []byte{1}))
	waitFor[*events.RtpPacketReceived](t, rec, "s")
	bustest.CheckFor(t, 5*time.Second, func() error {
		if i := info(t, h, "s"); i.RTCPReceived != 1 || i.MalformedRTCP != uint64(len(garbage)) {
			return fmt.Errorf("RTCP received %d, malformed %d: want 1, %d", i.RTCPReceived, i.MalformedRTCP, len(garbage))
		}
		return nil
	})
}

// The reports a stream sends: an RR while it has sent nothing, an SR once
// it has, each with a reception report about the far end (loss, fraction
// per interval, extended highest sequence number, LSR/DLSR) and a CNAME.
func TestRTCPReports(t *testing.T) {
	b := newBus(t)
	h := newHubWith(t, b, quiet, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	far := newPeer(t)
	port := startStream(t, b, rec, "s", far.port)
	const farSSRC = 0xfeed

	// Before any RTP: an RR without report blocks, to remote_port+1.
	forceReport(t, h, "s")
	ssrc := info(t, h, "s").SSRC
	_, rr, sdes, _ := report(t, readRTCP(t, far.rtcp))
	if rr == nil || rr.SSRC != ssrc || len(rr.Reports) != 0 {
		t.Fatalf("first report %+v: want an RR from %#x without blocks", rr, ssrc)
	}
	if sdes == nil || len(sdes.Chunks) != 1 || sdes.Chunks[0].Source != ssrc ||
		len(sdes.Chunks[0].Items) != 1 || sdes.Chunks[0].Items[0].Type != rtcp.SDESCNAME || sdes.Chunks[0].Items[0].Text == "" {
		t.Fatalf("SDES %+v: want one CNAME for %#x", sdes, ssrc)
	}

	// Six packets sent, the fourth lost.
	for _, seq := range []uint16{1, 2, 3, 5, 6} {
		write(t, far.rtp, port, rtpPacket(t, farSSRC, seq, uint32(seq)*160, 0, false, make([]byte, 160)))
	}
	waitPackets(t, rec, "s", 5)
	forceReport(t, h, "s")
	_, rr, _, _ = report(t, readRTCP(t, far.rtcp))
	if rr == nil || len(rr.Reports) != 1 {
		t.Fatalf("report %+v: want an RR with one block", rr)
	}
	if r := rr.Reports[0]; r.SSRC != farSSRC || r.FractionLost != 256/6 || r.TotalLost != 1 ||
		r.LastSequenceNumber != 6 || r.LastSenderReport != 0 || r.Delay != 0 {
		t.Fatalf("reception report %+v: want SSRC %#x, fraction %d, lost 1, highest 6, no LSR", r, farSSRC, 256/6)
	}

	// Once the stream sends: an SR with its counts. The far end's SR is
	// echoed as LSR, with the time held as DLSR.
	for i := range 2 {
		publish(t, b, &events.SendRtpPacket{SessionRef: ref("s"), Payload: make([]byte, 160),
			Timestamp: 8000 + uint32(i)*160, SequenceNumber: uint16(i)})
		readRTP(t, far.rtp)
	}
	waitSent(t, h, "s", 2)
	farNTP := ntpTime(time.Now().Add(-time.Hour)) // any NTP time: only echoed
	sentSR := time.Now()
	write(t, far.rtcp, port+1, marshalRTCP(t, &rtcp.SenderReport{SSRC: farSSRC, NTPTime: farNTP,
		RTPTime: 1, PacketCount: 6, OctetCount: 960}))
	bustest.CheckFor(t, 5*time.Second, func() error {
		if n := info(t, h, "s").RTCPReceived; n != 1 {
			return fmt.Errorf("RTCP received %d, want 1", n)
		}
		return nil
	})
	forceReport(t, h, "s")
	sr, _, _, _ := report(t, readRTCP(t, far.rtcp))
	held := time.Since(sentSR)
	if sr == nil || sr.SSRC != ssrc || sr.PacketCount != 2 || sr.OctetCount != 320 {
		t.Fatalf("report %+v: want an SR from %#x with 2 packets, 320 octets", sr, ssrc)
	}
	// The RTP time is extrapolated forward from the last packet's.
	if d := int32(sr.RTPTime - (8000 + 160)); d < 0 {
		t.Fatalf("SR RTP time %d is before the last packet's %d", sr.RTPTime, 8000+160)
	}
	if len(sr.Reports) != 1 {
		t.Fatalf("SR has %d report blocks, want 1", len(sr.Reports))
	}
	r := sr.Reports[0]
	if r.FractionLost != 0 || r.TotalLost != 1 || r.LastSenderReport != ntpMiddle(farNTP) {
		t.Fatalf("reception report %+v: want fraction 0 (nothing lost since), lost 1, LSR %#x", r, ntpMiddle(farNTP))
	}
	// DLSR cannot exceed the time between sending the SR and reading the
	// report (1/65536 s units).
	if limit := uint32(held.Seconds()*65536) + 1; r.Delay > limit {
		t.Fatalf("DLSR %d exceeds the %d units the SR was held at most", r.Delay, limit)
	}
	if i := info(t, h, "s"); i.RTCPSent != 3 || i.FractionLost != 0 {
		t.Fatalf("RTCP sent %d, fraction %d: want 3, 0", i.RTCPSent, i.FractionLost)
	}
}

// The round-trip time comes from reception reports about the stream's
// own SSRC: arrival − LSR − DLSR. The far end here claims its SR was
// sent 100 ms before it really was, so the RTT is at least 100 ms
// whatever the machine's speed; reports without LSR, about another SSRC,
// or giving a negative RTT are ignored.
func TestRTT(t *testing.T) {
	b := newBus(t)
	h := newHubWith(t, b, quiet, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	far := newPeer(t)
	port := startStream(t, b, rec, "s", far.port)
	publish(t, b, &events.SendRtpPacket{SessionRef: ref("s"), Payload: []byte{1}})
	readRTP(t, far.rtp)
	waitSent(t, h, "s", 1)
	forceReport(t, h, "s")
	sr, _, _, _ := report(t, readRTCP(t, far.rtcp))
	if sr == nil {
		t.Fatal("no SR after sending RTP")
	}
	lsr := ntpMiddle(sr.NTPTime)
	const tenth = 65536 / 10

	rtcpIn := uint64(0)
	answer := func(rep rtcp.ReceptionReport) float64 {
		t.Helper()
		write(t, far.rtcp, port+1, marshalRTCP(t, &rtcp.ReceiverReport{SSRC: 0xfa, Reports: []rtcp.ReceptionReport{rep}}))
		rtcpIn++
		var rtt float64
		bustest.CheckFor(t, 5*time.Second, func() error {
			i := info(t, h, "s")
			if i.RTCPReceived != rtcpIn {
				return fmt.Errorf("RTCP received %d, want %d", i.RTCPReceived, rtcpIn)
			}
			rtt = i.RttMS
			return nil
		})
		return rtt
	}
	if rtt := answer(rtcp.ReceptionReport{SSRC: sr.SSRC, LastSenderReport: 0}); rtt != 0 {
		t.Fatalf("RTT %v ms from a report without LSR, want none", rtt)
	}
	if rtt := answer(rtcp.ReceptionReport{SSRC: sr.SSRC + 1, LastSenderReport: lsr - tenth}); rtt != 0 {
		t.Fatalf("RTT %v ms from a report about another SSRC, want none", rtt)
	}
	if rtt := answer(rtcp.ReceptionReport{SSRC: sr.SSRC, LastSenderReport: lsr, Delay: 100 * 65536}); rtt != 0 {
		t.Fatalf("RTT %v ms from a report held 100 s, want none (negative)", rtt)
	}
	if rtt := answer(rtcp.ReceptionReport{SSRC: sr.SSRC, LastSenderReport: lsr - tenth}); rtt < 100 {
		t.Fatalf("RTT %v ms, want at least 100", rtt)
	}
}

// Two streams of a hub talking to each other exchange SRs on their own
// timer and each measures a positive RTT from the other's reports.
func TestRTCPBetweenStreams(t *testing.T) {
	b := newBus(t)
	h := newHubWith(t, b, Config{RTCPInterval: 20 * time.Millisecond, StatsInterval: time.Hour}, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	pa := startStream(t, b, rec, "a", 0)
	pb := startStream(t, b, rec, "b", 0)
	publish(t, b, &events.UpdateRtpStream{SessionRef: ref("a"), RemoteAddress: "127.0.0.1", RemotePort: pb})
	publish(t, b, &events.UpdateRtpStream{SessionRef: ref("b"), RemoteAddress: "127.0.0.1", RemotePort: pa})

	var seq uint16
	bustest.CheckFor(t, 10*time.Second, func() error {
		seq++
		for _, s := range []string{"a", "b"} {
			publish(t, b, &events.SendRtpPacket{SessionRef: ref(s), Payload: make([]byte, 160),
				Timestamp: uint32(seq) * 160, SequenceNumber: seq})
		}
		ia, ib := info(t, h, "a"), info(t, h, "b")
		for _, c := range []struct{ me, other StreamInfo }{{ia, ib}, {ib, ia}} {
			if c.me.RemoteSSRC != c.other.SSRC || c.me.RTCPReceived == 0 || c.me.RTCPSent == 0 || c.me.RttMS <= 0 {
				return fmt.Errorf("%s: remote SSRC %#x (want %#x), RTCP sent %d received %d, RTT %v",
					c.me.SessionID, c.me.RemoteSSRC, c.other.SSRC, c.me.RTCPSent, c.me.RTCPReceived, c.me.RttMS)
			}
		}
		return nil
	})
}

// Stopping a stream says goodbye on RTCP.
func TestRTCPByeOnStop(t *testing.T) {
	b := newBus(t)
	h := newHubWith(t, b, quiet, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	far := newPeer(t)
	startStream(t, b, rec, "s", far.port)
	ssrc := info(t, h, "s").SSRC
	publish(t, b, &events.StopRtpStream{SessionRef: ref("s")})
	_, rr, sdes, bye := report(t, readRTCP(t, far.rtcp))
	if rr == nil || sdes == nil || bye == nil || len(bye.Sources) != 1 || bye.Sources[0] != ssrc {
		t.Fatalf("goodbye compound: RR %+v, SDES %+v, BYE %+v: want all three, BYE for %#x", rr, sdes, bye, ssrc)
	}
}

// waitSent waits until the stream of session has counted n packets sent:
// the counter moves just after the write the far end may already have read.
func waitSent(t *testing.T, h *Hub, session string, n uint64) {
	t.Helper()
	bustest.CheckFor(t, 5*time.Second, func() error {
		if sent := info(t, h, session).PacketsSent; sent != n {
			return fmt.Errorf("%d packets sent, want %d", sent, n)
		}
		return nil
	})
}
