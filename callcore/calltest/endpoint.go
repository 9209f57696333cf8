package calltest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// endpoint is the SIP machinery a Phone and a Registrar share: a sipgo user
// agent with its server and client, UDP and TCP listeners on loopback, and
// the goroutines that serve them (counted in serving). Every other
// goroutine it runs, and every sipgo handler that does real work, is
// counted in wg, so that close can wait for them before it tears the sipgo
// stack down: a send after that would make sipgo open a new socket.
type endpoint struct {
	name string
	host string
	log  *slog.Logger

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	udp    net.PacketConn
	tcp    net.Listener

	// ctx ends when the endpoint closes; work the endpoint starts itself
	// (retransmissions, BYE on a missing ACK, following a REFER) runs under it.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	state   int // stateNew, stateOpen, stateClosed
	wg      sync.WaitGroup
	serving sync.WaitGroup
}

const (
	stateNew = iota
	stateOpen
	stateClosed
)

func newEndpoint(name, host string, log *slog.Logger) endpoint {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithCancel(context.Background())
	return endpoint{name: name, host: host, log: log, ctx: ctx, cancel: cancel}
}

// open binds UDP and TCP on host:0, builds the sipgo stack (routes registers
// the request handlers, unhandled receives responses no transaction
// matched, filter sees the raw bytes read) and starts serving.
func (e *endpoint) open(ctx context.Context, routes func(*sipgo.Server), unhandled func(*sip.Response), filter sip.TransportReadFilter) (err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != stateNew {
		return ErrClosed
	}
	var lc net.ListenConfig
	addr := net.JoinHostPort(e.host, "0")
	if e.udp, err = lc.ListenPacket(ctx, "udp", addr); err != nil {
		return fmt.Errorf("calltest %s: listen udp: %w", e.name, err)
	}
	if e.tcp, err = lc.Listen(ctx, "tcp", addr); err != nil {
		e.udp.Close()
		return fmt.Errorf("calltest %s: listen tcp: %w", e.name, err)
	}
	defer func() {
		if err != nil {
			e.udp.Close()
			e.tcp.Close()
		}
	}()
	txOpts := []sip.TransactionLayerOption{sip.WithTransactionLayerLogger(e.log)}
	if unhandled != nil {
		txOpts = append(txOpts, sip.WithTransactionLayerUnhandledResponseHandler(unhandled))
	}
	tpOpts := []sip.TransportLayerOption{sip.WithTransportLayerLogger(e.log)}
	if filter != nil {
		tpOpts = append(tpOpts, sip.WithTransportLayerReadFilter(filter))
	}
	e.ua, err = sipgo.NewUA(
		sipgo.WithUserAgent(e.name),
		sipgo.WithUserAgentHostname(e.host),
		sipgo.WithUserAgentTransactionLayerOptions(txOpts...),
		sipgo.WithUserAgentTransportLayerOptions(tpOpts...),
	)
	if err != nil {
		return fmt.Errorf("calltest %s: user agent: %w", e.name, err)
	}
	if e.srv, err = sipgo.NewServer(e.ua, sipgo.WithServerLogger(e.log)); err == nil {
		e.client, err = sipgo.NewClient(e.ua, sipgo.WithClientLogger(e.log), sipgo.WithClientHostname(e.host))
	}
	if err != nil {
		e.ua.Close()
		return fmt.Errorf("calltest %s: sipgo: %w", e.name, err)
	}
	routes(e.srv)

	// ServeUDP puts the listener in the connection pool from its own
	// goroutine; put it there now so that a request sent right after Open
	// already leaves from the listening socket (see sendFrom).
	udpAddr := e.udp.LocalAddr().String()
	e.ua.TransportLayer().Pool("udp").Add(udpAddr, &sip.UDPConnection{PacketConn: e.udp, PacketAddr: udpAddr, Listener: true})

	e.state = stateOpen
	e.serving.Add(2)
	go func() {
		defer e.serving.Done()
		_ = e.srv.ServeUDP(e.udp) // returns when close closes the socket
	}()
	go func() {
		defer e.serving.Done()
		_ = e.srv.ServeTCP(e.tcp)
	}()
	return nil
}

// close stops the endpoint's own work (ending ctx makes every wait of it
// return), then stops serving, terminates every transaction, closes every
// connection and waits for the serving goroutines. It sends nothing of its
// own and may be called more than once.
func (e *endpoint) close() {
	e.mu.Lock()
	was := e.state
	e.state = stateClosed
	e.mu.Unlock()
	e.cancel()
	if was != stateOpen {
		return
	}
	e.wg.Wait()
	e.udp.Close()
	e.tcp.Close()
	e.ua.Close()
	e.serving.Wait()
}

// enter counts a unit of work (a handler, a goroutine, a send) in wg; it
// reports false once the endpoint is closed or not open, and then counts
// nothing.
func (e *endpoint) enter() bool { return e.begin() == nil }

// begin is enter that says why it failed: ErrNotOpen or ErrClosed.
func (e *endpoint) begin() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.state {
	case stateNew:
		return ErrNotOpen
	case stateClosed:
		return ErrClosed
	}
	e.wg.Add(1)
	return nil
}

func (e *endpoint) leave() { e.wg.Done() }

// refuse answers a request that arrived while the endpoint closes, then
// closes every connection in sipgo's pools again: a request read just
// before close is dispatched by sipgo in a goroutine of its own, which may
// open a new connection for its server transaction after close cleared
// the pools, and every such request ends up here.
func (e *endpoint) refuse(req *sip.Request, tx sip.ServerTransaction) {
	if !req.IsAck() {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil))
	}
	tp := e.ua.TransportLayer()
	_ = tp.Pool("udp").Clear()
	_ = tp.Pool("tcp").Clear()
}

// handle counts a sipgo handler as the endpoint's work, so close waits for
// it; once the endpoint is closing it refuses the request instead.
func (e *endpoint) handle(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if !e.enter() {
			e.refuse(req, tx)
			return
		}
		defer e.leave()
		h(req, tx)
	}
}

// goTracked runs f in a goroutine counted in wg, unless the endpoint is
// closed; it reports whether f was started.
func (e *endpoint) goTracked(f func()) bool {
	if !e.enter() {
		return false
	}
	go func() {
		defer e.leave()
		f()
	}()
	return true
}

func (e *endpoint) checkOpen() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.state {
	case stateNew:
		return ErrNotOpen
	case stateClosed:
		return ErrClosed
	}
	return nil
}

func (e *endpoint) udpPort() int { return e.udp.LocalAddr().(*net.UDPAddr).Port }
func (e *endpoint) tcpPort() int { return e.tcp.Addr().(*net.TCPAddr).Port }

// route sets a request's transport and top Via (unless it has one: a
// CANCEL or a repeated ACK), so the request is complete before it is sent
// and can be recorded as sent. The Via names the listening port of the
// transport; over UDP the request also leaves from the listening socket, so
// the far end sees one address for this peer.
func (e *endpoint) route(req *sip.Request, transport string) {
	req.SetTransport(transport)
	port := e.tcpPort()
	if transport == "UDP" {
		port = e.udpPort()
		req.Laddr = sip.Addr{IP: net.ParseIP(e.host), Port: port, Hostname: e.host}
	}
	if req.Via() == nil {
		via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: transport,
			Host: e.host, Port: port, Params: sip.HeaderParams{{K: "branch", V: sip.GenerateBranchN(16)}}}
		req.PrependHeader(via)
	}
}

// respond sends res on tx, logging a failure: the peer has no caller to
// return it to, and the test sees the missing response on the other side.
func (e *endpoint) respond(tx sip.ServerTransaction, res *sip.Response) bool {
	if err := tx.Respond(res); err != nil {
		e.log.Warn("calltest: respond", "status", res.StatusCode, "error", err)
		return false
	}
	return true
}
