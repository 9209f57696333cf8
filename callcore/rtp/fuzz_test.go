package rtp

import (
	"encoding/binary"
	"math"
	"net/netip"
	"testing"
	"time"

	pionrtp "github.com/pion/rtp"
)

var src2 = netip.MustParseAddrPort("198.51.100.2:6000")

// fuzzHub is a hub that is never opened: the fuzz targets drive a stream's
// receive paths directly, without sockets.
func fuzzHub(f *testing.F) *Hub {
	h, err := New(Config{}, newBus(f), nil)
	if err != nil {
		f.Fatal(err)
	}
	return h
}

// FuzzRTPReceive feeds a datagram to a stream that already has a remote
// source, from that source and from another one after the latch expired.
// Whatever the bytes, nothing panics, every datagram is counted exactly
// once, an accepted packet is well-formed RTP with a payload, and the
// stream can still build its RTCP report.
func FuzzRTPReceive(f *testing.F) {
	f.Add(rtpPacket(f, 1, 2, 160, 0, false, []byte{1, 2, 3}))
	f.Add(rtpPacket(f, 2, 1, 0, 101, true, []byte{1, 0x0a, 0, 0xa0}))
	f.Add([]byte{0x80, 0, 0, 1})
	f.Add([]byte{0xbf, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 9})
	h := fuzzHub(f)
	f.Fuzz(func(t *testing.T, datagram []byte) {
		st := newStream("f", pair{}, time.Second)
		var pkt pionrtp.Packet
		if h.receiveRTP(st, rtpPacket(t, 1, 1, 0, 0, false, []byte{1}), false, src1, 0, &pkt) == nil {
			t.Fatal("the first valid packet was not accepted")
		}
		for i, src := range []netip.AddrPort{src1, src2} {
			now := time.Duration(i) * 5 * time.Second
			ev := h.receiveRTP(st, datagram, false, src, now, &pkt)
			if ev == nil {
				continue
			}
			if len(datagram) < 12 || datagram[0]>>6 != 2 || len(ev.Payload) == 0 || len(ev.Payload) > len(datagram)-12 {
				t.Fatalf("accepted % x as RTP with a %d-octet payload", datagram, len(ev.Payload))
			}
			if ev.SequenceNumber != binary.BigEndian.Uint16(datagram[2:]) || ev.PayloadType != datagram[1]&0x7f {
				t.Fatalf("event %+v does not match the datagram % x", ev, datagram)
			}
		}
		i := st.info()
		if n := i.PacketsReceived + i.Malformed + i.ForeignSource + i.ForeignSSRC + i.BadSeq; n != 3 {
			t.Fatalf("%d datagrams counted, want 3: %+v", n, i)
		}
		if i.JitterMS < 0 || math.IsNaN(i.JitterMS) {
			t.Fatalf("jitter %v", i.JitterMS)
		}
		st.reportMu.Lock()
		defer st.reportMu.Unlock()
		if _, _, err := h.buildReport(st, time.Now(), true); err != nil {
			t.Fatalf("report after % x: %v", datagram, err)
		}
	})
}

// FuzzRTCP feeds a datagram to a stream's RTCP handling. Whatever the
// bytes, nothing panics, the datagram is counted as valid or malformed,
// the RTT stays a sane number, and the stream can still build its report.
func FuzzRTCP(f *testing.F) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Add([]byte{0x80, 0xc9, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{0x80, 0xc8, 0, 6})
	f.Add([]byte{0x81, 0xcb, 0, 1, 0, 0, 0, 1})
	h := fuzzHub(f)
	f.Fuzz(func(t *testing.T, datagram []byte) {
		st := newStream("f", pair{}, time.Second)
		st.ssrc = 0xfeed
		var pkt pionrtp.Packet
		h.receiveRTP(st, rtpPacket(t, 1, 1, 0, 0, false, []byte{1}), false, src1, 0, &pkt)
		ok := h.handleRTCP(st, datagram, false, src2, t0)
		i := st.info()
		if ok && (i.RTCPReceived != 1 || i.MalformedRTCP != 0) || !ok && (i.RTCPReceived != 0 || i.MalformedRTCP != 1) {
			t.Fatalf("valid %v but counted %d received, %d malformed", ok, i.RTCPReceived, i.MalformedRTCP)
		}
		if i.RttMS < 0 || i.RttMS > float64(math.MaxInt32)*1000/65536 || math.IsNaN(i.RttMS) {
			t.Fatalf("RTT %v ms", i.RttMS)
		}
		st.reportMu.Lock()
		defer st.reportMu.Unlock()
		if _, _, err := h.buildReport(st, t0.Add(time.Second), false); err != nil {
			t.Fatalf("report after % x: %v", datagram, err)
		}
	})
}
