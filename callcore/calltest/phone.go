package calltest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore"
)

// Phone is a SIP user agent on loopback: it places calls (Call, Dial),
// answers them according to its Policy (OnIncoming), and keeps every call it
// made or received for a test to drive and inspect. It is safe for
// concurrent use.
type Phone struct {
	ep     endpoint
	cfg    phoneConfig
	accept []Codec // codecs accepted when answering

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced when incoming grows
	policy   Policy
	refer    ReferPolicy
	calls    []*Call
	dialogs  map[dialogKey]*Call // by Call-ID and our tag
	byRemote map[dialogKey]*Call // inbound calls by Call-ID and the caller's tag
	incoming []*Call
	taken    int // incoming[:taken] were returned by Incoming
}

type dialogKey struct{ callID, localTag string }

type phoneConfig struct {
	user       string
	host       string
	log        *slog.Logger
	policy     Policy
	refer      ReferPolicy
	ackTimeout time.Duration
	codecs     []string
}

// Option configures a Phone.
type Option func(*phoneConfig)

// WithUser sets the user part of the phone's own URI (From, Contact);
// the default is "calltest".
func WithUser(user string) Option { return func(c *phoneConfig) { c.user = user } }

// WithHost sets the IP address the phone binds and advertises; the default
// is 127.0.0.1.
func WithHost(ip string) Option { return func(c *phoneConfig) { c.host = ip } }

// WithLogger sends the logs of the phone and of its sipgo stack to l; by
// default they are discarded.
func WithLogger(l *slog.Logger) Option { return func(c *phoneConfig) { c.log = l } }

// WithPolicy sets how incoming calls are handled (see OnIncoming); the
// default is AutoAnswer.
func WithPolicy(p Policy) Option { return func(c *phoneConfig) { c.policy = p } }

// WithReferPolicy sets how incoming REFERs are handled (see OnRefer); the
// default is ReferAccept.
func WithReferPolicy(r ReferPolicy) Option { return func(c *phoneConfig) { c.refer = r } }

// WithAckTimeout sets how long an answered incoming call waits for its ACK
// before the phone sends BYE and ends it as failed; the default is 64·T1
// (32 s with sipgo's default T1).
func WithAckTimeout(d time.Duration) Option { return func(c *phoneConfig) { c.ackTimeout = d } }

// WithAnswerCodecs sets the codecs the phone accepts when answering, and
// offers by default, by name: PCMU, PCMA, G722, G729, telephone-event. The
// default is PCMU, PCMA, telephone-event.
func WithAnswerCodecs(names ...string) Option { return func(c *phoneConfig) { c.codecs = names } }

// NewPhone returns a phone that is not open yet. When tb is not nil the
// phone is closed at the end of the test.
func NewPhone(tb testing.TB, opts ...Option) *Phone {
	cfg := phoneConfig{user: "calltest", policy: AutoAnswer(), codecs: defaultCodecs}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.ackTimeout <= 0 {
		cfg.ackTimeout = 64 * sip.T1
	}
	p := &Phone{
		ep:       newEndpoint("calltest-"+cfg.user, cfg.host, cfg.log),
		cfg:      cfg,
		changed:  make(chan struct{}),
		policy:   cfg.policy,
		refer:    cfg.refer,
		dialogs:  map[dialogKey]*Call{},
		byRemote: map[dialogKey]*Call{},
	}
	if tb != nil {
		tb.Cleanup(func() { _ = p.Close() })
	}
	return p
}

// StartPhone returns an open phone that is closed at the end of the test;
// it fails the test when the phone cannot open.
func StartPhone(tb testing.TB, opts ...Option) *Phone {
	tb.Helper()
	p := NewPhone(tb, opts...)
	if err := p.Open(context.Background()); err != nil {
		tb.Fatalf("calltest: open phone: %v", err)
	}
	return p
}

// Open binds UDP and TCP on the phone's host, port 0, and starts serving.
// It returns ErrClosed when the phone was opened or closed before, and an
// error for an unknown codec name or a socket that cannot be bound.
func (p *Phone) Open(ctx context.Context) error {
	accept, err := codecsByName(p.cfg.codecs)
	if err != nil {
		return err
	}
	p.accept = accept
	return p.ep.open(ctx, p.routes, p.onUnhandledResponse, newTap(p.onWire).filter)
}

// Close stops the phone: it ends every live call without sending anything
// (EndedBy reports failed), closes its sockets and waits for its
// goroutines. It is idempotent and always returns nil.
func (p *Phone) Close() error {
	p.ep.close()
	p.mu.Lock()
	calls := append([]*Call(nil), p.calls...)
	p.mu.Unlock()
	for _, c := range calls {
		c.end(callcore.EndFailed)
	}
	return nil
}

// User returns the phone's user (WithUser).
func (p *Phone) User() string { return p.cfg.user }

// Addr returns the UDP address the phone listens on, "127.0.0.1:port", or
// "" before Open.
func (p *Phone) Addr() string {
	if p.ep.checkOpen() == ErrNotOpen {
		return ""
	}
	return p.ep.udp.LocalAddr().String()
}

// TCPAddr returns the TCP address the phone listens on, or "" before Open.
func (p *Phone) TCPAddr() string {
	if p.ep.checkOpen() == ErrNotOpen {
		return ""
	}
	return p.ep.tcp.Addr().String()
}

// URI returns a SIP URI that reaches the phone over UDP, e.g.
// "sip:alice@127.0.0.1:40000". The phone answers for any user.
func (p *Phone) URI(user string) string { return "sip:" + user + "@" + p.Addr() }

// TCPURI returns a SIP URI that reaches the phone over TCP, e.g.
// "sip:alice@127.0.0.1:40001;transport=tcp".
func (p *Phone) TCPURI(user string) string {
	return "sip:" + user + "@" + p.TCPAddr() + ";transport=tcp"
}

// OnIncoming sets how calls arriving from now on are handled.
func (p *Phone) OnIncoming(policy Policy) {
	p.mu.Lock()
	p.policy = policy
	p.mu.Unlock()
}

// OnRefer sets how REFERs arriving from now on are handled.
func (p *Phone) OnRefer(policy ReferPolicy) {
	p.mu.Lock()
	p.refer = policy
	p.mu.Unlock()
}

// Incoming returns the next incoming call that Incoming has not returned
// yet, in arrival order, waiting for one if needed. It returns ctx's error
// when ctx ends first and ErrClosed when the phone closes.
func (p *Phone) Incoming(ctx context.Context) (*Call, error) {
	for {
		p.mu.Lock()
		if p.taken < len(p.incoming) {
			c := p.incoming[p.taken]
			p.taken++
			p.mu.Unlock()
			return c, nil
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("calltest %s: wait for incoming call: %w", p.cfg.user, ctx.Err())
		case <-p.ep.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// Calls returns every call of the phone, both directions, in the order they
// started.
func (p *Phone) Calls() []*Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*Call(nil), p.calls...)
}

// HangupAll hangs up every live call (Call.Hangup) and returns the first
// error other than ErrCallEnded.
func (p *Phone) HangupAll(ctx context.Context) error {
	var first error
	for _, c := range p.Calls() {
		if err := c.Hangup(ctx); err != nil && first == nil && !isEnded(err) {
			first = err
		}
	}
	return first
}

func (p *Phone) register(c *Call, incoming bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, c)
	p.dialogs[dialogKey{c.callID, c.localTag}] = c
	if incoming {
		p.byRemote[dialogKey{c.callID, c.remoteTag}] = c
		p.incoming = append(p.incoming, c)
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

func (p *Phone) lookup(callID, localTag string) *Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dialogs[dialogKey{callID, localTag}]
}

func (p *Phone) lookupRemote(callID, remoteTag string) *Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byRemote[dialogKey{callID, remoteTag}]
}

// localURI is the phone's address of record, used in From/To.
func (p *Phone) localURI() sip.Uri {
	return sip.Uri{Scheme: "sip", User: p.cfg.user, Host: p.ep.host}
}

// contact is the Contact header for a dialog over transport.
func (p *Phone) contact(transport string) *sip.ContactHeader {
	u := sip.Uri{Scheme: "sip", User: p.cfg.user, Host: p.ep.host, Port: p.ep.udpPort()}
	if transport == "TCP" {
		u.Port = p.ep.tcpPort()
		u.UriParams = sip.HeaderParams{{K: "transport", V: "tcp"}}
	}
	return &sip.ContactHeader{Address: u}
}

// bindRTP binds an even UDP port on the phone's host for a call's RTP
// (RFC 3550 keeps odd ports for RTCP).
func (p *Phone) bindRTP() (net.PacketConn, error) {
	var odd []net.PacketConn
	defer func() {
		for _, c := range odd {
			c.Close()
		}
	}()
	for range 16 {
		conn, err := net.ListenPacket("udp", net.JoinHostPort(p.ep.host, "0"))
		if err != nil {
			return nil, fmt.Errorf("calltest: bind rtp: %w", err)
		}
		if conn.LocalAddr().(*net.UDPAddr).Port%2 == 0 {
			return conn, nil
		}
		odd = append(odd, conn) // held so the next try gets another port
	}
	return nil, fmt.Errorf("calltest: bind rtp: no even port")
}

func (p *Phone) routes(s *sipgo.Server) {
	s.OnInvite(p.ep.handle(p.onInvite))
	s.OnAck(p.ep.handle(p.onAck))
	s.OnCancel(p.ep.handle(func(req *sip.Request, tx sip.ServerTransaction) {
		// A CANCEL that matched an INVITE was answered by sipgo (200, then
		// 487 to the INVITE); this one matched nothing.
		p.ep.respond(tx, sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
	}))
	s.OnBye(p.ep.handle(p.inDialog(false, (*Call).onBye)))
	s.OnInfo(p.ep.handle(p.inDialog(false, (*Call).onInfo)))
	s.OnRefer(p.ep.handle(p.inDialog(false, (*Call).onRefer)))
	s.OnNotify(p.ep.handle(p.inDialog(true, (*Call).onNotify)))
	s.OnOptions(p.ep.handle(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(sip.NewHeader("Allow", allowed))
		p.ep.respond(tx, res)
	}))
	s.OnNoRoute(p.ep.handle(func(req *sip.Request, tx sip.ServerTransaction) {
		p.ep.respond(tx, sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil))
	}))
}

const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY"

// inDialog routes an in-dialog request to its call, or
// answers 481 when there is no such dialog (or it ended, unless afterEnd).
func (p *Phone) inDialog(afterEnd bool, h func(*Call, *sip.Request, sip.ServerTransaction)) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		c := p.dialogOf(req)
		if c == nil || (!afterEnd && c.ended()) {
			p.ep.respond(tx, sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
		h(c, req, tx)
	}
}

// dialogOf returns the call an in-dialog request belongs to: its Call-ID
// and, as our tag, its To tag.
func (p *Phone) dialogOf(req *sip.Request) *Call {
	id, to := req.CallID(), req.To()
	if id == nil || to == nil {
		return nil
	}
	tag, _ := to.Params.Get("tag")
	return p.lookup(id.Value(), tag)
}

// onUnhandledResponse gets responses no client transaction matched: chiefly
// 2xx retransmissions to an INVITE whose transaction is gone, which must be
// ACKed again (sipgo issue #120).
func (p *Phone) onUnhandledResponse(res *sip.Response) {
	if !p.ep.enter() {
		return
	}
	defer p.ep.leave()
	id, from, cseq := res.CallID(), res.From(), res.CSeq()
	if id == nil || from == nil || cseq == nil {
		return
	}
	tag, _ := from.Params.Get("tag")
	c := p.lookup(id.Value(), tag)
	if c == nil {
		return
	}
	if res.IsSuccess() && cseq.MethodName == sip.INVITE {
		c.reAck(cseq.SeqNo)
	}
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
