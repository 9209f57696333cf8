package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/goleak"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

func TestMain(m *testing.M) {
	// sipgo's timers are package globals: set them once, before any test
	// starts a goroutine. T1 = 25ms makes Timer B/F/H/J/L/M 1.6s, so that
	// timeouts are tested in seconds.
	sip.SetTimers(25*time.Millisecond, 200*time.Millisecond, 250*time.Millisecond)
	// sipgo logs some connection bookkeeping through its default logger.
	sip.SetDefaultLogger(testLogger())
	goleak.VerifyTestMain(m)
}

const waitTotal = 10 * time.Second

// testLogger discards logs unless TRANSPORT_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("TRANSPORT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newBus returns an in-memory bus closed at the end of the test.
func newBus(t *testing.T) *bus.Memory { return bustest.NewBus(t, bus.Config{Logger: testLogger()}) }

// newTransport opens a transport on 127.0.0.1:0 (UDP and TCP), closed at
// the end of the test.
func newTransport(t *testing.T, b bus.Bus, cfg Config) *Hub {
	t.Helper()
	if cfg.UDPAddr == "" && cfg.TCPAddr == "" {
		cfg.UDPAddr, cfg.TCPAddr = "127.0.0.1:0", "127.0.0.1:0"
	}
	tr, err := New(cfg, b, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bustest.Close(t, "transport", tr.Close) })
	return tr
}

// recorder is the test's dialog layer: it records every
// transport_to_dialog event.
type recorder = bustest.Recorder

func record(t *testing.T, b bus.Bus) *recorder {
	return bustest.Record(t, b, events.ChannelTransportToDialog)
}

// matching returns the recorded events of type T that match.
func matching[T events.Event](r *recorder, match func(T) bool) []T {
	var out []T
	for _, ev := range r.Events() {
		if e, ok := ev.(T); ok && (match == nil || match(e)) {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent polls until an event of type T matching match was recorded.
func waitEvent[T events.Event](t *testing.T, r *recorder, what string, match func(T) bool) T {
	t.Helper()
	var found T
	bustest.CheckFor(t, waitTotal, func() error {
		if m := matching(r, match); len(m) > 0 {
			found = m[0]
			return nil
		}
		return fmt.Errorf("no %s among %s", what, describe(r.Events()))
	})
	return found
}

func describe(evs []events.Event) string {
	var parts []string
	for _, ev := range evs {
		switch e := ev.(type) {
		case *events.SipMessageReceived:
			parts = append(parts, "SipMessageReceived("+e.Method+" "+e.TransactionID+")")
		case *events.SipResponseReceived:
			parts = append(parts, fmt.Sprintf("SipResponseReceived(%d %s)", e.StatusCode, e.TransactionID))
		case *events.TransportError:
			parts = append(parts, "TransportError("+e.TransactionID+": "+e.Error+")")
		case *events.RegistrationStatusUpdate:
			parts = append(parts, "RegistrationStatusUpdate("+string(e.Status)+" "+e.Error+")")
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// publish publishes ev as the dialog layer would.
func publish(t *testing.T, b bus.Bus, ev events.Event) { bustest.Publish(t, b, ev) }

// recv receives from ch, failing the test after waitTotal.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTotal):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// peer is a plain sipgo user agent on 127.0.0.1:0 (UDP and TCP) standing
// for the far end: a phone, a registrar.
type peer struct {
	ua       *sipgo.UserAgent
	srv      *sipgo.Server
	cli      *sipgo.Client
	udp, tcp string
}

// newPeer starts a peer; setup registers its request handlers.
func newPeer(t *testing.T, setup func(srv *sipgo.Server)) *peer {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("peer"),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(testLogger())),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(testLogger())))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = srv.ServeUDP(pc) }()
	go func() { defer wg.Done(); _ = srv.ServeTCP(ln) }()
	t.Cleanup(func() {
		_ = pc.Close()
		_ = ln.Close()
		_ = ua.Close()
		wg.Wait()
	})
	return &peer{ua: ua, srv: srv, cli: cli, udp: pc.LocalAddr().String(), tcp: ln.Addr().String()}
}

// addr returns the peer's address for network.
func (p *peer) addr(network string) string {
	if network == "tcp" {
		return p.tcp
	}
	return p.udp
}

// sipURI returns a SIP URI for user at addr over network.
func sipURI(user, addr, network string) string {
	u := "sip:" + user + "@" + addr
	if network == "tcp" {
		u += ";transport=tcp"
	}
	return u
}

// deadAddr returns an address on which nothing listens for network.
func deadAddr(t *testing.T, network string) string {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := c.LocalAddr().String()
		_ = c.Close()
		return addr
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		return addr
	}
}

func TestOpenAddrClose(t *testing.T) {
	b := newBus(t)
	tr, err := New(Config{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0"}, b, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Addr("udp"); got != "" {
		t.Errorf("Addr before Open = %q, want \"\"", got)
	}
	if err := tr.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"udp", "tcp"} {
		addr := tr.Addr(network)
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" || port == "0" {
			t.Errorf("Addr(%s) = %q, want 127.0.0.1 and a real port", network, addr)
		}
		if got := tr.AdvertisedAddr(network); got != addr {
			t.Errorf("AdvertisedAddr(%s) = %q, want %q", network, got, addr)
		}
	}
	if err := tr.Open(context.Background()); !errors.Is(err, ErrOpen) {
		t.Errorf("second Open = %v, want ErrOpen", err)
	}
	if err := tr.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(t.Context()); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := tr.Open(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close = %v, want ErrClosed", err)
	}
	// The ports are free again.
	for network, addr := range map[string]string{"udp": tr.bound["udp"], "tcp": tr.bound["tcp"]} {
		var lc net.ListenConfig
		var c io.Closer
		var err error
		if network == "udp" {
			c, err = lc.ListenPacket(context.Background(), network, addr)
		} else {
			c, err = lc.Listen(context.Background(), network, addr)
		}
		if err != nil {
			t.Errorf("rebind %s %s after Close: %v", network, addr, err)
			continue
		}
		_ = c.Close()
	}
}

func TestOpenFailsOnBusyPort(t *testing.T) {
	b := newBus(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tr, err := New(Config{UDPAddr: "127.0.0.1:0", TCPAddr: l.Addr().String()}, b, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Open(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listen tcp") {
		t.Fatalf("Open on a busy port = %v, want a listen tcp error", err)
	}
	if err := tr.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}
