package rtp

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	pionrtp "github.com/pion/rtp"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// fakeClock drives the hub's RTP arrival clock by hand, so that jitter and
// latch silence are exact in tests.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Duration      { return time.Duration(c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// newHubWith returns an open hub on 127.0.0.1 with cfg (Host forced to
// loopback, Ports taken from the test range when zero) and, when clock is
// not nil, that arrival clock. It is closed at the end of the test.
func newHubWith(t testing.TB, b bus.Bus, cfg Config, clock *fakeClock) *Hub {
	t.Helper()
	cfg.Host = loopback
	if cfg.Ports == [2]int{} {
		cfg.Ports = freePairs(t, 2)
	}
	h, err := New(cfg, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if clock != nil {
		h.rtpClock = clock.now
	}
	if err := h.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bustest.Close(t, "hub", h.Close) })
	return h
}

// quiet is a Config whose timer sends nothing during a test: reports are
// forced with forceReport.
var quiet = Config{RTCPInterval: time.Hour, StatsInterval: time.Hour}

// forceReport makes the stream of session send its RTCP report now.
func forceReport(t *testing.T, h *Hub, session string) {
	t.Helper()
	st := h.lookup(session)
	if st == nil {
		t.Fatalf("no stream for %s", session)
	}
	st.reportMu.Lock()
	defer st.reportMu.Unlock()
	h.sendReport(st, time.Now(), false)
}

// udp binds a socket on 127.0.0.1:port (0: any), closed with the test.
func udp(t testing.TB, port int) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func portOf(c *net.UDPConn) int { return c.LocalAddr().(*net.UDPAddr).Port }

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// peer is a far end: an RTP socket on an even port and its RTCP socket
// on the port above.
type peer struct {
	rtp, rtcp *net.UDPConn
	port      int
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	p := freePairs(t, 1)[0]
	return &peer{rtp: udp(t, p), rtcp: udp(t, p+1), port: p}
}

// startTo is a StartRtpStream sending to 127.0.0.1:port.
func startTo(session string, port int) *events.StartRtpStream {
	return &events.StartRtpStream{SessionRef: ref(session), RemoteAddress: "127.0.0.1", RemotePort: port,
		PayloadType: 0, Codec: "PCMU"}
}

// startStream starts the stream of session sending to 127.0.0.1:port and
// returns its local port.
func startStream(t testing.TB, b bus.Bus, rec *recorder, session string, port int) int {
	t.Helper()
	publish(t, b, startTo(session, port))
	return waitFor[*events.RtpStreamStarted](t, rec, session).LocalPort
}

// rtpPacket marshals an RTP packet.
func rtpPacket(t testing.TB, ssrc uint32, seq uint16, ts uint32, pt uint8, marker bool, payload []byte) []byte {
	t.Helper()
	b, err := (&pionrtp.Packet{Header: pionrtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq,
		Timestamp: ts, SSRC: ssrc, Marker: marker}, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// write sends b from c to 127.0.0.1:port.
func write(t *testing.T, c *net.UDPConn, port int, b []byte) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, netip.AddrPortFrom(loopback, uint16(port))); err != nil {
		t.Fatal(err)
	}
}

// readRTP reads one RTP packet on c, failing the test after five seconds.
func readRTP(t *testing.T, c *net.UDPConn) (pionrtp.Packet, []byte, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("read RTP on %v: %v", c.LocalAddr(), err)
	}
	var p pionrtp.Packet
	if err := p.Unmarshal(buf[:n]); err != nil {
		t.Fatalf("hub sent a datagram that is not RTP: %v (% x)", err, buf[:n])
	}
	return p, buf[:n], from
}

// readRTCP reads one compound RTCP packet on c, failing the test after
// five seconds.
func readRTCP(t *testing.T, c *net.UDPConn) []rtcp.Packet {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("read RTCP on %v: %v", c.LocalAddr(), err)
	}
	pkts, err := rtcp.Unmarshal(buf[:n])
	if err != nil {
		t.Fatalf("hub sent a datagram that is not RTCP: %v (% x)", err, buf[:n])
	}
	return pkts
}

// info returns the snapshot of session's stream, failing the test when
// there is none.
func info(t testing.TB, h *Hub, session string) StreamInfo {
	t.Helper()
	i, ok := h.Stream(session)
	if !ok {
		t.Fatalf("no stream for %s", session)
	}
	return i
}

// src1 is a far end's address for tests that drive a receiver directly.
var src1 = netip.MustParseAddrPort("192.0.2.1:5004")

// header is a valid RTP header.
func header(ssrc uint32, seq uint16, ts uint32, pt uint8) pionrtp.Header {
	return pionrtp.Header{Version: 2, SSRC: ssrc, SequenceNumber: seq, Timestamp: ts, PayloadType: pt}
}
