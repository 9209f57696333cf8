package rtp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	pionrtp "github.com/pion/rtp"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

func start(session string, port int) *events.StartRtpStream {
	return &events.StartRtpStream{SessionRef: ref(session), LocalPort: port,
		RemoteAddress: "127.0.0.1", RemotePort: 40000, PayloadType: 0, Codec: "PCMU"}
}

// sendTo sends b to 127.0.0.1:port from a fresh socket.
func sendTo(t *testing.T, port int, b []byte) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// canBind reports whether the test itself can bind port on 127.0.0.1,
// which proves the hub closed its socket.
func canBind(port int) error {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return err
	}
	return c.Close()
}

func TestStreamBindsCountsAndStops(t *testing.T) {
	b := newBus(t)
	ports := freePairs(t, 4)
	h := newHub(t, b, ports)
	rec := record(t, b, events.ChannelRTPToMedia)

	publish(t, b, start("s1", 0))
	started := waitFor[*events.RtpStreamStarted](t, rec, "s1")
	port := started.LocalPort
	if port%2 != 0 || port < ports[0] || port+1 > ports[1] {
		t.Fatalf("local_port %d: want an even port whose pair is in %v", port, ports)
	}
	if err := canBind(port); err == nil {
		t.Fatalf("port %d is not bound by the stream", port)
	}
	if err := canBind(port + 1); err == nil {
		t.Fatalf("RTCP port %d is not bound by the stream", port+1)
	}

	pkt, err := (&pionrtp.Packet{Header: pionrtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 7,
		Timestamp: 160, SSRC: 1}, Payload: make([]byte, 160)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	far := udp(t, 0) // one far end: packets from another source would be foreign
	write(t, far, port, pkt)
	pkt[3]++ // sequence number 8
	write(t, far, port, pkt)
	write(t, far, port, []byte{1, 2}) // not RTP
	rr, err := (&rtcp.ReceiverReport{SSRC: 1}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sendTo(t, port+1, rr)
	bustest.CheckFor(t, 5e9, func() error {
		info, ok := h.Stream("s1")
		if !ok {
			return errors.New("no stream")
		}
		if info.PacketsReceived != 2 || info.OctetsReceived != 320 || info.Malformed != 1 || info.RTCPReceived != 1 {
			return fmt.Errorf("counters %+v: want 2 packets, 320 octets, 1 malformed, 1 RTCP", info)
		}
		return nil
	})
	if h.PortsInUse() != 1 {
		t.Fatalf("PortsInUse = %d, want 1", h.PortsInUse())
	}

	publish(t, b, &events.StopRtpStream{SessionRef: ref("s1")})
	stopped := waitFor[*events.RtpStreamStopped](t, rec, "s1")
	if stopped.Reason != events.StopReasonStopped {
		t.Fatalf("reason %q, want %q", stopped.Reason, events.StopReasonStopped)
	}
	for _, p := range []int{port, port + 1} {
		if err := canBind(p); err != nil {
			t.Fatalf("port %d still bound after stop: %v", p, err)
		}
	}
	if _, ok := h.Stream("s1"); ok || h.PortsInUse() != 0 {
		t.Fatalf("stream still known after stop (ports in use %d)", h.PortsInUse())
	}
}

func TestPortExhaustion(t *testing.T) {
	b := newBus(t)
	ports := freePairs(t, 2)
	h := newHub(t, b, ports)
	rec := record(t, b, events.ChannelRTPToMedia)

	seen := map[int]bool{}
	for _, s := range []string{"a", "b"} {
		publish(t, b, start(s, 0))
		p := waitFor[*events.RtpStreamStarted](t, rec, s).LocalPort
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	publish(t, b, start("c", 0))
	wantRtpError(t, waitFor[*events.RtpError](t, rec, "c"), events.RtpErrNoPort)
	if len(all[*events.RtpStreamStarted](rec, "c")) != 0 || h.PortsInUse() != 2 {
		t.Fatalf("exhausted pool started a stream (ports in use %d)", h.PortsInUse())
	}

	// Releasing a pair makes room again.
	publish(t, b, &events.StopRtpStream{SessionRef: ref("a")})
	waitFor[*events.RtpStreamStopped](t, rec, "a")
	publish(t, b, start("d", 0))
	waitFor[*events.RtpStreamStarted](t, rec, "d")
}

// Starting and stopping many streams over a small range works only if
// every stop closes the sockets and releases the pair.
func TestStopReleasesPorts(t *testing.T) {
	b := newBus(t)
	h := newHub(t, b, freePairs(t, 3))
	rec := record(t, b, events.ChannelRTPToMedia)

	for i := range 60 {
		s := fmt.Sprintf("s%d", i)
		publish(t, b, start(s, 0))
		waitFor[*events.RtpStreamStarted](t, rec, s)
		if i%3 == 2 { // three streams at once, then stop them
			for j := i - 2; j <= i; j++ {
				publish(t, b, &events.StopRtpStream{SessionRef: ref(fmt.Sprintf("s%d", j))})
				waitFor[*events.RtpStreamStopped](t, rec, fmt.Sprintf("s%d", j))
			}
		}
	}
	if n := h.PortsInUse(); n != 0 {
		t.Fatalf("PortsInUse = %d after every stream stopped", n)
	}
}

func TestPortHeldElsewhereIsSkipped(t *testing.T) {
	b := newBus(t)
	ports := freePairs(t, 2)
	h := newHub(t, b, ports)
	rec := record(t, b, events.ChannelRTPToMedia)

	// Another process holds the first pair's RTCP port.
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ports[0] + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	publish(t, b, start("a", 0))
	if p := waitFor[*events.RtpStreamStarted](t, rec, "a").LocalPort; p != ports[0]+2 {
		t.Fatalf("local_port %d, want %d (the first pair is held elsewhere)", p, ports[0]+2)
	}
	publish(t, b, start("b", 0))
	wantRtpError(t, waitFor[*events.RtpError](t, rec, "b"), events.RtpErrNoPort)
	if err := canBind(ports[0]); err != nil {
		t.Fatalf("the half-bound pair's RTP port was left open: %v", err)
	}
	if h.PortsInUse() != 1 {
		t.Fatalf("PortsInUse = %d, want 1", h.PortsInUse())
	}
}

func TestRequestedPort(t *testing.T) {
	b := newBus(t)
	ports := freePairs(t, 3)
	newHub(t, b, ports)
	rec := record(t, b, events.ChannelRTPToMedia)
	want := ports[0] + 4

	cases := []struct {
		name, session string
		port          int
		wantPort      int
		wantErr       events.RtpErrorCode
	}{
		{"port=in-range", "a", want, want, ""},
		{"port=busy", "b", want, 0, events.RtpErrNoPort},
		{"port=odd", "c", ports[0] + 1, 0, events.RtpErrNoPort},
		{"port=below-range", "d", ports[0] - 2, 0, events.RtpErrNoPort},
		{"port=above-range", "e", ports[1] + 1, 0, events.RtpErrNoPort},
		{"port=negative", "f", -2, 0, events.RtpErrBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			publish(t, b, start(c.session, c.port))
			if c.wantErr != "" {
				wantRtpError(t, waitFor[*events.RtpError](t, rec, c.session), c.wantErr)
				return
			}
			if p := waitFor[*events.RtpStreamStarted](t, rec, c.session).LocalPort; p != c.wantPort {
				t.Fatalf("local_port %d, want %d", p, c.wantPort)
			}
		})
	}
}

func TestReconfigure(t *testing.T) {
	b := newBus(t)
	h := newHub(t, b, freePairs(t, 2))
	rec := record(t, b, events.ChannelRTPToMedia)

	publish(t, b, start("s", 0))
	port := waitFor[*events.RtpStreamStarted](t, rec, "s").LocalPort

	re := &events.StartRtpStream{SessionRef: ref("s"), LocalPort: port, RemoteAddress: "192.0.2.7",
		RemotePort: 5004, PayloadType: 8, Codec: "PCMA"}
	publish(t, b, re)
	bustest.CheckFor(t, 5e9, func() error {
		if n := len(all[*events.RtpStreamStarted](rec, "s")); n != 2 {
			return fmt.Errorf("%d RtpStreamStarted, want 2", n)
		}
		return nil
	})
	if p := all[*events.RtpStreamStarted](rec, "s")[1].LocalPort; p != port {
		t.Fatalf("reconfigured stream moved from %d to %d", port, p)
	}
	info, _ := h.Stream("s")
	if info.Codec != "PCMA" || info.PayloadType != 8 || info.RemoteAddress != "192.0.2.7" || info.RemotePort != 5004 {
		t.Fatalf("after reconfigure: %+v", info)
	}
	if h.PortsInUse() != 1 {
		t.Fatalf("PortsInUse = %d, want 1", h.PortsInUse())
	}

	publish(t, b, start("s", port+2))
	wantRtpError(t, waitFor[*events.RtpError](t, rec, "s"), events.RtpErrBadRequest)
}

func TestUpdate(t *testing.T) {
	b := newBus(t)
	h := newHub(t, b, freePairs(t, 1))
	rec := record(t, b, events.ChannelRTPToMedia)

	publish(t, b, start("s", 0))
	waitFor[*events.RtpStreamStarted](t, rec, "s")
	publish(t, b, &events.UpdateRtpStream{SessionRef: ref("s"), RemoteAddress: "198.51.100.9", RemotePort: 7078})
	bustest.CheckFor(t, 5e9, func() error {
		info, _ := h.Stream("s")
		if info.RemoteAddress != "198.51.100.9" || info.RemotePort != 7078 {
			return fmt.Errorf("remote %s:%d", info.RemoteAddress, info.RemotePort)
		}
		return nil
	})

	publish(t, b, &events.UpdateRtpStream{SessionRef: ref("s"), RemoteAddress: "198.51.100.9", RemotePort: 70000})
	wantRtpError(t, waitFor[*events.RtpError](t, rec, "s"), events.RtpErrBadRequest)
	publish(t, b, &events.UpdateRtpStream{SessionRef: ref("nobody"), RemoteAddress: "198.51.100.9", RemotePort: 7078})
	wantRtpError(t, waitFor[*events.RtpError](t, rec, "nobody"), events.RtpErrNoStream)
}

func TestStopUnknownIsAnswered(t *testing.T) {
	b := newBus(t)
	newHub(t, b, freePairs(t, 1))
	rec := record(t, b, events.ChannelRTPToMedia)

	publish(t, b, &events.StopRtpStream{SessionRef: ref("nobody")})
	if r := waitFor[*events.RtpStreamStopped](t, rec, "nobody").Reason; r != events.StopReasonNoStream {
		t.Fatalf("reason %q, want %q", r, events.StopReasonNoStream)
	}
}

func TestCloseStopsStreams(t *testing.T) {
	b := newBus(t)
	ports := freePairs(t, 2)
	h, err := New(Config{Host: loopback, Ports: ports}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := h.Open(t.Context()); err == nil {
		t.Fatal("second Open succeeded")
	}
	rec := record(t, b, events.ChannelRTPToMedia)
	publish(t, b, start("a", 0))
	pa := waitFor[*events.RtpStreamStarted](t, rec, "a").LocalPort
	publish(t, b, start("b", 0))
	pb := waitFor[*events.RtpStreamStarted](t, rec, "b").LocalPort

	if err := h.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, p := range []int{pa, pa + 1, pb, pb + 1} {
		if err := canBind(p); err != nil {
			t.Fatalf("port %d still bound after Close: %v", p, err)
		}
	}
	if h.PortsInUse() != 0 {
		t.Fatalf("PortsInUse = %d after Close", h.PortsInUse())
	}
	if err := h.Open(t.Context()); err == nil {
		t.Fatal("Open after Close succeeded")
	}
}

// A Close whose deadline has already passed drains nothing but still
// closes every stream at once: the ports are free when it returns.
func TestCloseAtTheDeadlineStillClosesStreams(t *testing.T) {
	b := newBus(t)
	h, err := New(Config{Host: loopback, Ports: freePairs(t, 2)}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec := record(t, b, events.ChannelRTPToMedia)
	publish(t, b, start("a", 0))
	pa := waitFor[*events.RtpStreamStarted](t, rec, "a").LocalPort
	publish(t, b, start("b", 0))
	pb := waitFor[*events.RtpStreamStarted](t, rec, "b").LocalPort

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	begin := time.Now()
	first := h.Close(ctx) // may name readers not yet returned
	if took := time.Since(begin); took > time.Second {
		t.Errorf("Close with an ended ctx took %v", took)
	}
	for _, p := range []int{pa, pa + 1, pb, pb + 1} {
		if err := canBind(p); err != nil {
			t.Fatalf("port %d still bound after Close: %v", p, err)
		}
	}
	if second := h.Close(t.Context()); second != first {
		t.Fatalf("second Close = %v, want the first's %v", second, first)
	}
}

// Close on a hub whose bus has already closed returns rather than hangs.
// (The memory bus's Unsubscribe then waits for its ctx to end, so Close
// takes its whole deadline, a short one here.)
func TestCloseAfterBusClosed(t *testing.T) {
	b, err := bus.New(bus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Host: loopback, Ports: freePairs(t, 1)}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_ = h.Close(ctx) // may report the bus's error; must return
}

func TestConfig(t *testing.T) {
	b := newBus(t)
	cases := []struct {
		name    string
		cfg     Config
		wantErr bool
		pairs   int
	}{
		{"ports=default", Config{}, false, (DefaultPortHi - DefaultPortLo + 1) / 2},
		{"ports=odd-lo", Config{Ports: [2]int{20001, 20006}}, false, 2},
		{"ports=one-pair", Config{Ports: [2]int{20000, 20001}}, false, 1},
		{"ports=no-pair", Config{Ports: [2]int{20001, 20002}}, true, 0},
		{"ports=reversed", Config{Ports: [2]int{20010, 20000}}, true, 0},
		{"ports=above-65535", Config{Ports: [2]int{65534, 65536}}, true, 0},
		{"ports=zero-lo", Config{Ports: [2]int{0, 10}}, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := New(c.cfg, b, nil)
			if (err != nil) != c.wantErr {
				t.Fatalf("New: err %v, want error %v", err, c.wantErr)
			}
			if err == nil && h.pool.size() != c.pairs {
				t.Fatalf("pool holds %d pairs, want %d", h.pool.size(), c.pairs)
			}
		})
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Fatal("New with a nil bus succeeded")
	}
}

func TestOpenRefusesForeignHost(t *testing.T) {
	b := newBus(t)
	h, err := New(Config{Host: netip.MustParseAddr("192.0.2.1"), Ports: [2]int{20000, 20001}}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Open(t.Context()); err == nil {
		h.Close(t.Context())
		t.Fatal("Open on an address that is not this machine's succeeded")
	}
	if err := h.Close(t.Context()); err != nil {
		t.Fatalf("Close after a failed Open: %v", err)
	}
}

// wantRtpError fails unless e is classified code and its text starts with
// the code and a colon, as the package doc promises readers of the text.
func wantRtpError(t *testing.T, e *events.RtpError, code events.RtpErrorCode) {
	t.Helper()
	if e.ErrorCode != code || !strings.HasPrefix(e.Error, string(code)+": ") {
		t.Fatalf("RtpError{%q, %q}, want code %s", e.ErrorCode, e.Error, code)
	}
}
