// Package transport is the SIP transport hub of callbus (docs/signalling.md,
// section "transport"): it listens for SIP over UDP and TCP with sipgo, keeps
// the server and client transactions, and is the only layer that touches the
// wire. Incoming requests and responses become transport_to_dialog events;
// dialog_to_transport events become SIP requests, responses and
// registrations.
//
// The transport knows nothing of dialogs or calls: it correlates messages by
// transaction id only (st_… for requests it receives, the dialog's ct_… for
// requests it sends).
package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
)

// DefaultAddr is where both listeners bind when Config names neither.
const DefaultAddr = "127.0.0.1:5060"

// Config configures a Hub. The zero value listens on DefaultAddr over
// UDP and TCP.
type Config struct {
	// UDPAddr and TCPAddr are the listen addresses ("host:port"; port 0
	// picks a free port, see Hub.Addr). An empty address disables that
	// transport, unless both are empty: then both listen on DefaultAddr.
	UDPAddr string
	TCPAddr string
	// ExternalHost is the host written in Via headers and in the default
	// Contact of a REGISTER. Empty takes the listeners' IP (or, for an
	// unspecified listen IP, the first non-loopback IPv4 address).
	ExternalHost string
	// UserAgent is the User-Agent header added to requests that lack one.
	// Default "callbus".
	UserAgent string
	// InviteTimeout bounds how long an incoming INVITE waits for a final
	// response from the dialog layer before the transport answers 408 itself
	// and publishes a TransportError. Default 5 minutes.
	InviteTimeout time.Duration
	// RegisterRetry is the delay before a registration that failed for a
	// transient reason (timeout, transport error, 5xx) is tried again; it
	// doubles after each failure, up to 10 minutes. Default 30 seconds.
	RegisterRetry time.Duration
	// DefaultExpires is the lifetime in seconds asked for by a REGISTER when
	// RegisterEndpoint gives none. Default 3600.
	DefaultExpires int
}

func (c Config) withDefaults() Config {
	if c.UDPAddr == "" && c.TCPAddr == "" {
		c.UDPAddr, c.TCPAddr = DefaultAddr, DefaultAddr
	}
	if c.UserAgent == "" {
		c.UserAgent = "callbus"
	}
	if c.InviteTimeout <= 0 {
		c.InviteTimeout = 5 * time.Minute
	}
	if c.RegisterRetry <= 0 {
		c.RegisterRetry = 30 * time.Second
	}
	if c.DefaultExpires <= 0 {
		c.DefaultExpires = 3600
	}
	return c
}

// The transport's sentinel errors.
var (
	// ErrClosed is returned by Open after Close.
	ErrClosed = errors.New("transport: closed")
	// ErrOpen is returned by a second Open.
	ErrOpen = errors.New("transport: already open")
	// ErrUnknownTransaction is reported for a transaction id the transport
	// does not know (never seen, or already terminated).
	ErrUnknownTransaction = errors.New("unknown or terminated transaction")
	// ErrUnsupportedTransport is reported for a next hop asking for a
	// transport other than UDP or TCP.
	ErrUnsupportedTransport = errors.New("unsupported transport")
	// ErrMessageTooLarge is reported for a message over the size UDP
	// allows (sipgo refuses it with sip.ErrUDPMTUCongestion).
	ErrMessageTooLarge = errors.New("message too large for UDP")
	// ErrBadMessage is reported for an event that cannot become a valid SIP
	// message (bad URI, bad header, missing mandatory header).
	ErrBadMessage = errors.New("bad message")

	// errNoFinalResponse ends a server transaction the dialog layer left
	// unanswered (see expire).
	errNoFinalResponse = errors.New("no final response")
)

const (
	stateNew = iota
	stateOpen
	stateDraining // unsubscribing: queued events are still handled
	stateClosed
)

// Hub is the SIP transport hub. Create it with New, start it with Open
// and stop it with Close.
type Hub struct {
	cfg Config
	bus bus.Bus
	log *slog.Logger

	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	clients map[string]*sipgo.Client // by network: "udp", "tcp"
	udpConn net.PacketConn
	tcpLn   net.Listener
	bound   map[string]string // network → bound host:port
	via     map[string]sip.Addr
	sub     bus.Subscription

	// g runs every goroutine the transport owns and counts the sipgo
	// callbacks it runs in. ctx, its context, ends when Close stops
	// draining; everything the transport publishes or waits for is
	// bounded by it.
	g   *callcore.Group
	ctx context.Context

	life     sync.Mutex
	state    int
	closed   chan struct{} // closed when Close has finished
	closeErr error         // Close's result, set before closed is

	lanes   laneSet
	servers serverTable
	clientT clientTable
	wire    *wire // provisional responses, in wire order
	regs    registrations
}

// New returns a Hub that publishes on b and logs to log (nil takes
// slog.Default()). It starts nothing; it returns an error when the sipgo
// user agent cannot be built.
func New(cfg Config, b bus.Bus, log *slog.Logger) (*Hub, error) {
	if b == nil {
		return nil, errors.New("transport: new: nil bus")
	}
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	t := &Hub{
		cfg:     cfg,
		bus:     b,
		log:     log.With("layer", "transport"),
		clients: make(map[string]*sipgo.Client),
		bound:   make(map[string]string),
		via:     make(map[string]sip.Addr),
		closed:  make(chan struct{}),
	}
	t.lanes.init(t)
	t.servers.init()
	t.clientT.init()
	t.wire = newWire(t.onWireProvisional, t.replyRaw)
	t.regs.init()
	t.g = callcore.NewGroup(context.Background(), "transport")
	t.ctx = t.g.Context()

	siplog := slog.New(parseFailures{Handler: t.log.With("lib", "sipgo").Handler(), w: t.wire})
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(cfg.UserAgent),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(siplog),
			sip.WithTransactionLayerUnhandledResponseHandler(t.onStrayResponse),
		),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(siplog),
			sip.WithTransportLayerReadFilter(t.wire.filter)),
	)
	if err != nil {
		return nil, fmt.Errorf("transport: new user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(siplog))
	if err != nil {
		_ = ua.Close()
		return nil, fmt.Errorf("transport: new server: %w", err)
	}
	// Every method reaches one handler: the dialog layer decides what is
	// allowed, not sipgo's default 405.
	srv.OnNoRoute(t.onRequest)
	t.ua, t.srv = ua, srv
	return t, nil
}

// Open binds the UDP and TCP listeners synchronously, subscribes to
// dialog_to_transport and starts serving. It returns ErrOpen or ErrClosed
// when called twice or after Close, and a wrapped net error when a listener
// cannot bind (nothing is left running then).
func (t *Hub) Open(ctx context.Context) (err error) {
	t.life.Lock()
	defer t.life.Unlock()
	switch t.state {
	case stateOpen, stateDraining:
		return ErrOpen
	case stateClosed:
		return ErrClosed
	}
	defer func() {
		if err != nil {
			_ = t.closeListeners()
		}
	}()
	var lc net.ListenConfig
	if t.cfg.UDPAddr != "" {
		c, err := lc.ListenPacket(ctx, "udp", t.cfg.UDPAddr)
		if err != nil {
			return fmt.Errorf("transport: listen udp %s: %w", t.cfg.UDPAddr, err)
		}
		t.udpConn = c
		t.bound["udp"] = c.LocalAddr().String()
		// ServeUDP puts the socket in sipgo's connection pool from its own
		// goroutine; put it there now, so that a request sent as soon as
		// Open returns leaves from the listener (sipgo would otherwise try
		// to bind the same address again and fail).
		t.ua.TransportLayer().Pool("udp").Add(t.bound["udp"],
			&sip.UDPConnection{PacketConn: c, PacketAddr: t.bound["udp"], Listener: true})
	}
	if t.cfg.TCPAddr != "" {
		l, err := lc.Listen(ctx, "tcp", t.cfg.TCPAddr)
		if err != nil {
			return fmt.Errorf("transport: listen tcp %s: %w", t.cfg.TCPAddr, err)
		}
		t.tcpLn = l
		t.bound["tcp"] = l.Addr().String()
	}
	for network, addr := range t.bound {
		via, err := t.advertise(addr)
		if err != nil {
			return fmt.Errorf("transport: listen %s %s: %w", network, addr, err)
		}
		t.via[network] = via
		c, err := sipgo.NewClient(t.ua,
			sipgo.WithClientHostname(uriHost(via.Hostname)),
			sipgo.WithClientPort(via.Port),
			sipgo.WithClientLogger(t.log.With("lib", "sipgo")))
		if err != nil {
			return fmt.Errorf("transport: new %s client: %w", network, err)
		}
		t.clients[network] = c
	}
	for _, network := range []string{"udp", "tcp"} {
		if t.clients[network] == nil {
			// Sending over a transport we do not listen on still works
			// (sipgo opens a connection); its Via is then filled from it.
			c, err := sipgo.NewClient(t.ua, sipgo.WithClientLogger(t.log.With("lib", "sipgo")))
			if err != nil {
				return fmt.Errorf("transport: new %s client: %w", network, err)
			}
			t.clients[network] = c
		}
	}

	sub, err := t.bus.Subscribe(bus.Subscriber{
		Name:     "transport",
		Channels: []string{events.ChannelDialogToTransport},
		Handle:   t.handle,
	})
	if err != nil {
		return fmt.Errorf("transport: subscribe %s: %w", events.ChannelDialogToTransport, err)
	}
	t.sub = sub
	t.state = stateOpen

	if t.udpConn != nil {
		t.g.Go("udp listener", func(context.Context) {
			if err := t.srv.ServeUDP(t.udpConn); err != nil && !errors.Is(err, net.ErrClosed) {
				t.log.Error("udp listener stopped", "addr", t.bound["udp"], "error", err)
			}
		})
	}
	if t.tcpLn != nil {
		t.g.Go("tcp listener", func(context.Context) {
			if err := t.srv.ServeTCP(t.tcpLn); err != nil && !errors.Is(err, net.ErrClosed) {
				t.log.Error("tcp listener stopped", "addr", t.bound["tcp"], "error", err)
			}
		})
	}
	t.log.Info("sip transport open", "udp", t.bound["udp"], "tcp", t.bound["tcp"])
	return nil
}

// advertise returns the host and port this transport puts in Via headers
// for a listener bound to addr.
func (t *Hub) advertise(addr string) (sip.Addr, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return sip.Addr{}, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return sip.Addr{}, err
	}
	a := sip.Addr{Hostname: host, Port: port, IP: net.ParseIP(host)}
	if t.cfg.ExternalHost != "" {
		a.Hostname = t.cfg.ExternalHost
	} else if a.IP == nil || a.IP.IsUnspecified() {
		a.Hostname = "127.0.0.1"
		if ip, _, err := sip.ResolveInterfacesIP("ip4", nil); err == nil && ip != nil {
			a.Hostname = ip.String()
		}
	}
	return a, nil
}

// uriHost writes host as a SIP URI or Via wants it: an IPv6 address in
// brackets.
func uriHost(host string) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		return "[" + host + "]"
	}
	return host
}

// Addr returns the address the listener of network ("udp" or "tcp") is
// bound to, e.g. "127.0.0.1:41234", or "" when it does not listen.
func (t *Hub) Addr(network string) string {
	t.life.Lock()
	defer t.life.Unlock()
	return t.bound[network]
}

// AdvertisedAddr returns the host:port this transport writes in its Via
// headers for network ("udp" or "tcp"): ExternalHost (or the bound IP) and
// the bound port. The dialog layer's Contact should name it. It returns ""
// when the transport does not listen on network.
func (t *Hub) AdvertisedAddr(network string) string {
	t.life.Lock()
	defer t.life.Unlock()
	a, ok := t.via[network]
	if !ok {
		return ""
	}
	return net.JoinHostPort(a.Hostname, strconv.Itoa(a.Port))
}

// Close unsubscribes from the bus (handling the events already queued and
// sending what they ask, until ctx ends), stops the listeners, terminates
// every transaction and registration refresh (without unregistering), and
// waits, until ctx ends, for every goroutine the transport runs. When ctx
// ends first the transport is closed all the same and the error says what
// was cut short: the bus's *bus.DrainError, the sends still queued, a
// *callcore.RunningError naming the goroutines still running. It also
// returns the errors met while closing a listener. Close is idempotent: a
// later call waits for the first and returns its result.
func (t *Hub) Close(ctx context.Context) error {
	t.life.Lock()
	if t.state == stateClosed || t.state == stateDraining {
		t.life.Unlock()
		<-t.closed
		return t.closeErr
	}
	wasOpen := t.state == stateOpen
	t.state = stateDraining
	t.life.Unlock()
	defer close(t.closed)
	t.closeErr = t.close(ctx, wasOpen)
	return t.closeErr
}

func (t *Hub) close(ctx context.Context, wasOpen bool) error {
	var errs []error
	if wasOpen {
		if err := t.sub.Unsubscribe(ctx); err != nil {
			errs = append(errs, fmt.Errorf("transport: close: unsubscribe: %w", err))
		}
		if idle := t.lanes.idleCh(); idle != nil {
			select {
			case <-idle:
			case <-ctx.Done():
				t.log.Warn("closing with sends still queued")
				errs = append(errs, fmt.Errorf("transport: close: sends still queued: %w", ctx.Err()))
			}
		}
	}

	t.life.Lock()
	t.state = stateClosed
	t.life.Unlock()

	t.g.Stop()
	t.regs.stopAll()
	if err := t.closeListeners(); err != nil {
		errs = append(errs, err)
	}
	// Terminates every sipgo transaction, which releases the request
	// handlers waiting on them, and closes the connections sipgo opened.
	if err := t.ua.Close(); err != nil {
		t.log.Debug("sipgo user agent close", "error", err)
	}
	t.sweepLateConnections(ctx)
	if err := t.g.Wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("transport: close: %w", err))
	}
	t.log.Info("sip transport closed")
	return errors.Join(errs...)
}

// replyRaw sends a datagram from the UDP listener; wire uses it for the
// 400s of requests sipgo cannot parse.
func (t *Hub) replyRaw(to net.Addr, data []byte) {
	if c := t.udpConn; c != nil {
		if _, err := c.WriteTo(data, to); err != nil {
			t.log.Debug("send 400 for an unparsable request failed", "to", to, "error", err)
		}
	}
}

// sweepLateConnections closes the sockets sipgo opened after ua.Close.
// sipgo serves each request it reads on a goroutine of its own; one that
// read its request just before the listeners closed finds its listener
// gone from the pool and opens a new UDP socket to answer from, which
// nothing would close (the flow tests saw one leak in a few closes). Those
// goroutines do no more than that and answer, so a few short rounds after
// the listeners closed find every such socket.
//
// Under load (the race detector, a busy CI machine) such a goroutine may
// run late, so the sweep goes on, up to lateSweepMax, until the pools have
// stayed empty for lateSweeps rounds in a row. When ctx ends first, one
// last sweep closes what the pools hold.
func (t *Hub) sweepLateConnections(ctx context.Context) {
	tp := t.srv.TransportLayer()
	deadline := time.Now().Add(lateSweepMax)
	tick := time.NewTicker(lateSweepEvery)
	defer tick.Stop()
	for empty := 0; empty < lateSweeps && time.Now().Before(deadline); {
		select {
		case <-tick.C:
		case <-ctx.Done():
			_ = tp.Close()
			return
		}
		if poolSize(tp, "udp")+poolSize(tp, "tcp") == 0 {
			empty++
			continue
		}
		empty = 0
		_ = tp.Close() // clears the connection pools; safe to repeat
	}
}

// poolSize returns how many connections sipgo holds for network.
func poolSize(tp *sip.TransportLayer, network string) int {
	if p := tp.Pool(network); p != nil {
		return p.Size()
	}
	return 0
}

const (
	lateSweeps     = 5
	lateSweepEvery = 10 * time.Millisecond
	lateSweepMax   = 2 * time.Second
)

func (t *Hub) closeListeners() error {
	var errs []error
	if t.udpConn != nil {
		if err := t.udpConn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("transport: close udp listener: %w", err))
		}
	}
	if t.tcpLn != nil {
		if err := t.tcpLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("transport: close tcp listener: %w", err))
		}
	}
	return errors.Join(errs...)
}

// handle is the bus handler for dialog_to_transport. It never waits for
// the network: sends run on the per-key lanes, in the order the events
// were published, and registrations on goroutines of their own.
func (t *Hub) handle(_ context.Context, env events.Envelope, ev events.Event) error {
	ctx := bus.WithCause(t.ctx, env.ID)
	switch e := ev.(type) {
	case *events.SendSipResponse:
		return t.lanes.run(e.Key(), func() { t.sendResponse(ctx, e) })
	case *events.SendSipMessage:
		return t.lanes.run(e.Key(), func() { t.sendMessage(ctx, e) })
	case *events.RegisterEndpoint:
		t.register(ctx, e)
		return nil
	case *events.UnregisterEndpoint:
		t.unregister(ctx, e)
		return nil
	default:
		return fmt.Errorf("transport: unexpected event %s/%s", ev.Channel(), ev.Type())
	}
}

// publish publishes ev, logging (not returning) a failure: the transport
// has no one to return it to.
func (t *Hub) publish(ctx context.Context, ev events.Event) {
	if err := t.bus.Publish(ctx, ev); err != nil {
		level := slog.LevelWarn
		if t.ctx.Err() != nil {
			level = slog.LevelDebug // closing: in-flight transactions end unheard
		}
		t.log.Log(context.Background(), level, "publish failed", "type", ev.Type(), "key", ev.Key(), "error", err)
	}
}

// publishError publishes a TransportError for txID (may be ""),
// classified by errorCode.
func (t *Hub) publishError(ctx context.Context, txID string, err error) {
	code := errorCode(err)
	t.log.Info("transport error", "transaction_id", txID, "error_code", code, "error", err)
	t.publish(ctx, &events.TransportError{Error: err.Error(), ErrorCode: code, TransactionID: txID})
}

// errorCode is the one table from the transport's errors to the codes of
// TransportError: by sentinel, never by text; any other failure is
// send_failed.
func errorCode(err error) events.TransportErrorCode {
	switch {
	case errors.Is(err, sip.ErrTransactionTimeout):
		return events.TransportErrTimeout
	case errors.Is(err, errNoFinalResponse):
		return events.TransportErrNoFinalResponse
	case errors.Is(err, ErrMessageTooLarge):
		return events.TransportErrTooLarge
	case errors.Is(err, ErrBadMessage):
		return events.TransportErrBadMessage
	case errors.Is(err, ErrUnsupportedTransport):
		return events.TransportErrUnsupportedTransport
	case errors.Is(err, ErrUnknownTransaction):
		return events.TransportErrUnknownTransaction
	default:
		return events.TransportErrSendFailed
	}
}

// onStrayResponse sees responses that match no client transaction, e.g. a
// 2xx retransmitted after the INVITE transaction ended. RFC 6026 keeps the
// transaction for 64·T1 to catch those, so one arriving later is dropped.
func (t *Hub) onStrayResponse(res *sip.Response) {
	t.log.Debug("stray response dropped", "status", res.StatusCode, "call_id", callIDOf(res))
}
