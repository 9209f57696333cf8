package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// clientTx is a request we sent in a client transaction, kept under its
// transaction id until sipgo terminates the transaction.
type clientTx struct {
	id      string
	req     *sip.Request
	branch  string
	network string
	cancel  chan struct{} // a CANCEL was asked for
	// provisional is signalled when a provisional response was read off
	// the wire (see wire), which allows a pending CANCEL.
	provisional chan struct{}
	// ctx carries the cause of the responses: the event that sent the
	// request.
	ctx context.Context

	mu    sync.Mutex
	final bool // a final response arrived
}

func (ct *clientTx) setFinal() {
	ct.mu.Lock()
	ct.final = true
	ct.mu.Unlock()
}

func (ct *clientTx) hasFinal() bool {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return ct.final
}

type clientTable struct {
	mu       sync.Mutex
	byID     map[string]*clientTx
	byBranch map[string]*clientTx
}

func (c *clientTable) init() {
	c.byID = make(map[string]*clientTx)
	c.byBranch = make(map[string]*clientTx)
}

// add reserves ct's id; it reports false when the id is in use.
func (c *clientTable) add(ct *clientTx) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byID[ct.id]; ok {
		return false
	}
	c.byID[ct.id] = ct
	if ct.branch != "" {
		c.byBranch[ct.branch] = ct
	}
	return true
}

// ofBranch returns the transaction whose request's top Via has branch.
func (c *clientTable) ofBranch(branch string) *clientTx {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byBranch[branch]
}

func (c *clientTable) get(id string) *clientTx {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[id]
}

func (c *clientTable) drop(ct *clientTx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID[ct.id] == ct {
		delete(c.byID, ct.id)
	}
	if c.byBranch[ct.branch] == ct {
		delete(c.byBranch, ct.branch)
	}
}

// prebuilt tells sipgo the request is complete: without an option sipgo
// would add its own From, To, Call-ID and CSeq where missing.
func prebuilt(*sipgo.Client, *sip.Request) error { return nil }

// sendMessage executes SendSipMessage.
func (t *Hub) sendMessage(ctx context.Context, ev *events.SendSipMessage) {
	method := strings.ToUpper(strings.TrimSpace(ev.Method))
	switch {
	case method == string(sip.ACK):
		t.sendAck(ctx, ev)
	case method == string(sip.CANCEL) && ev.TransactionID != "":
		t.requestCancel(ctx, ev.TransactionID)
	default:
		t.startClientTx(ctx, ev, method)
	}
}

// sendAck sends the ACK of a 2xx: statelessly, as RFC 3261 §13.2.2.4 makes
// it a transaction of its own that no response answers.
func (t *Hub) sendAck(ctx context.Context, ev *events.SendSipMessage) {
	req, network, err := t.buildRequest(string(sip.ACK), ev.Destination, ev.Headers, ev.Body)
	if err == nil {
		err = t.clients[network].WriteRequest(req, prebuilt)
		if err != nil {
			err = describeSendError(err, req)
		}
	}
	if err != nil {
		t.publishError(ctx, ev.TransactionID, fmt.Errorf("call %s: send ACK to %s: %w", ev.Headers.Get("Call-ID"), ev.Destination, err))
	}
}

// startClientTx sends a request in a client transaction and starts the
// goroutine that publishes its responses. A request without a transaction
// id gets one (ct_…) so its responses can still be published.
func (t *Hub) startClientTx(ctx context.Context, ev *events.SendSipMessage, method string) {
	id := ev.TransactionID
	if id == "" {
		id = callcore.NewID("ct_")
	}
	req, network, err := t.buildRequest(method, ev.Destination, ev.Headers, ev.Body)
	if err != nil {
		t.publishError(ctx, id, fmt.Errorf("transaction %s: send %s to %s: %w", id, method, ev.Destination, err))
		return
	}
	ct := &clientTx{id: id, req: req, network: network, cancel: make(chan struct{}, 1),
		provisional: make(chan struct{}, 1), ctx: ctx}
	if via := req.Via(); via != nil && req.IsInvite() && network == "udp" {
		ct.branch, _ = via.Params.Get("branch") // see wire
	}
	if !t.clientT.add(ct) {
		t.publishError(ctx, id, fmt.Errorf("transaction %s: send %s: %w: transaction id already in use", id, method, ErrBadMessage))
		return
	}
	tx, err := t.clients[network].TransactionRequest(t.ctx, req, prebuilt)
	if err != nil {
		t.clientT.drop(ct)
		t.publishError(ctx, id, fmt.Errorf("transaction %s: send %s to %s: %w", id, method, ev.Destination, describeSendError(err, req)))
		return
	}
	if !tx.OnTerminate(func(string, error) { t.clientT.drop(ct) }) {
		t.clientT.drop(ct)
	}
	if req.IsInvite() {
		// A 2xx retransmitted after the first reaches only this hook
		// (RFC 6026 Accepted state): publish it again so that the dialog
		// layer ACKs it again (sipgo issue #120).
		tx.OnRetransmission(func(res *sip.Response) {
			if res.IsSuccess() {
				t.g.Do("retransmission hook", func(context.Context) { t.publish(ctx, responseEvent(res, id)) })
			}
		})
	}
	if !t.g.Go("response reader", func(context.Context) { t.readResponses(ctx, ct, tx) }) {
		tx.Terminate()
	}
}

// readResponses publishes every response of ct until the final one, or
// the transaction's failure; it also sends the CANCEL asked for, once a
// provisional response allows it (RFC 3261 §9.1).
func (t *Hub) readResponses(ctx context.Context, ct *clientTx, tx sip.ClientTransaction) {
	provisional, cancelWanted := false, false
	for {
		select {
		case res := <-tx.Responses():
			if !res.IsProvisional() || ct.branch == "" {
				// An INVITE's provisional responses were published off the
				// wire, in order (onWireProvisional).
				t.publish(ctx, responseEvent(res, ct.id))
			}
			if !res.IsProvisional() {
				ct.setFinal()
				return
			}
			provisional = true
			if cancelWanted {
				cancelWanted = false
				t.sendCancel(ctx, ct)
			}
		case <-ct.provisional:
			provisional = true
			if cancelWanted {
				cancelWanted = false
				t.sendCancel(ctx, ct)
			}
		case <-ct.cancel:
			if provisional {
				t.sendCancel(ctx, ct)
			} else {
				cancelWanted = true
			}
		case <-tx.Done():
			err := tx.Err()
			if err == nil {
				err = sip.ErrTransactionTerminated
			}
			t.publishError(ctx, ct.id, fmt.Errorf("transaction %s: %s %s: %w",
				ct.id, ct.req.Method, ct.req.Recipient.String(), describeSendError(err, ct.req)))
			return
		case <-t.ctx.Done():
			tx.Terminate()
			return
		}
	}
}

// requestCancel asks the INVITE transaction id to be cancelled.
func (t *Hub) requestCancel(ctx context.Context, id string) {
	ct := t.clientT.get(id)
	switch {
	case ct == nil:
		t.publishError(ctx, id, fmt.Errorf("transaction %s: send CANCEL: %w", id, ErrUnknownTransaction))
	case !ct.req.IsInvite():
		t.publishError(ctx, id, fmt.Errorf("transaction %s: send CANCEL: %w: %s cannot be cancelled", id, ErrBadMessage, ct.req.Method))
	case ct.hasFinal():
		// The final response crossed the CANCEL; the dialog has it.
		t.log.Debug("CANCEL after the final response dropped", "transaction_id", id)
	default:
		select {
		case ct.cancel <- struct{}{}:
		default: // already asked
		}
	}
}

// sendCancel sends the CANCEL of ct's INVITE: same Request-URI, top Via
// (so the same branch), Route, From, To, Call-ID and CSeq number (RFC 3261
// §9.1). Its own responses are logged, not published: the INVITE ends with
// its 487 as usual.
func (t *Hub) sendCancel(ctx context.Context, ct *clientTx) {
	inv := ct.req
	req := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	req.AppendHeader(inv.Via().Clone())
	for _, h := range inv.GetHeaders("Route") {
		req.AppendHeader(sip.HeaderClone(h))
	}
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	for _, h := range []sip.Header{inv.From(), inv.To(), inv.CallID()} {
		req.AppendHeader(sip.HeaderClone(h))
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	req.AppendHeader(sip.NewHeader("User-Agent", t.cfg.UserAgent))
	req.SetBody(nil)
	req.SetTransport(inv.Transport())
	req.SetDestination(inv.Destination())
	req.Laddr = inv.Laddr

	tx, err := t.clients[ct.network].TransactionRequest(t.ctx, req, prebuilt)
	if err != nil {
		t.log.Warn("send CANCEL failed", "transaction_id", ct.id, "error", describeSendError(err, req))
		return
	}
	t.g.Go("cancel reader", func(context.Context) {
		defer tx.Terminate()
		for {
			select {
			case res := <-tx.Responses():
				if !res.IsProvisional() {
					t.log.Debug("CANCEL answered", "transaction_id", ct.id, "status", res.StatusCode)
					return
				}
			case <-tx.Done():
				t.log.Info("CANCEL got no answer", "transaction_id", ct.id, "error", tx.Err())
				return
			case <-t.ctx.Done():
				return
			}
		}
	})
}

// buildRequest turns the dialog's request into a sipgo request ready to
// send, and names the network ("udp" or "tcp") it goes over. The next hop
// is the first Route's URI, else the Request-URI; its transport parameter
// picks TCP. The transport adds Via (with a fresh branch and rport),
// Content-Length, and Max-Forwards and User-Agent unless given; Via and
// Content-Length headers of the event are ignored.
func (t *Hub) buildRequest(method, dest string, hs events.Headers, body string) (*sip.Request, string, error) {
	if !validHeaderName(method) {
		return nil, "", fmt.Errorf("%w: method %q", ErrBadMessage, method)
	}
	var ruri sip.Uri
	if err := sip.ParseUri(strings.Trim(strings.TrimSpace(dest), "<>"), &ruri); err != nil {
		return nil, "", fmt.Errorf("%w: request URI %q: %v", ErrBadMessage, dest, err)
	}
	parsed, err := parseHeaders(hs)
	if err != nil {
		return nil, "", err
	}
	req := sip.NewRequest(sip.RequestMethod(method), ruri)
	for _, h := range parsed {
		switch canonicalName(h.Name()) {
		case "Via", "Content-Length":
			continue
		}
		req.AppendHeader(h)
	}
	switch {
	case req.CallID() == nil:
		return nil, "", fmt.Errorf("%w: missing Call-ID", ErrBadMessage)
	case req.From() == nil:
		return nil, "", fmt.Errorf("%w: missing From", ErrBadMessage)
	case req.To() == nil:
		return nil, "", fmt.Errorf("%w: missing To", ErrBadMessage)
	case req.CSeq() == nil:
		return nil, "", fmt.Errorf("%w: missing CSeq", ErrBadMessage)
	case req.CSeq().MethodName != req.Method:
		return nil, "", fmt.Errorf("%w: CSeq method %s does not match %s", ErrBadMessage, req.CSeq().MethodName, req.Method)
	}

	hop := ruri
	if r := req.Route(); r != nil {
		hop = r.Address
	}
	network, err := hopNetwork(hop)
	if err != nil {
		return nil, "", err
	}
	port := hop.Port
	if port == 0 {
		port = sip.DefaultPort(network)
	}

	via := &sip.ViaHeader{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       strings.ToUpper(network),
		Params:          sip.NewParams(),
	}
	if a, ok := t.viaAddr(network); ok {
		via.Host, via.Port = uriHost(a.Hostname), a.Port
	}
	via.Params.Add("branch", sip.GenerateBranchN(16))
	via.Params.Add("rport", "")
	req.PrependHeader(via)
	if req.MaxForwards() == nil {
		maxFwd := sip.MaxForwardsHeader(70)
		req.AppendHeader(&maxFwd)
	}
	if req.GetHeader("User-Agent") == nil {
		req.AppendHeader(sip.NewHeader("User-Agent", t.cfg.UserAgent))
	}
	if body != "" {
		req.SetBody([]byte(body))
	} else {
		req.SetBody(nil)
	}
	req.SetTransport(strings.ToUpper(network))
	req.SetDestination(net.JoinHostPort(strings.Trim(hop.Host, "[]"), strconv.Itoa(port)))
	if network == "udp" {
		// Send from the listening socket, so that the far end's responses
		// and requests come back to the port our Via names.
		if laddr, ok := t.udpLocal(); ok {
			req.Laddr = laddr
		}
	}
	return req, network, nil
}

// hopNetwork returns the network a next hop asks for: "udp" unless its
// transport parameter says "tcp".
func hopNetwork(hop sip.Uri) (string, error) {
	if hop.IsEncrypted() {
		return "", fmt.Errorf("%w: %s (sips)", ErrUnsupportedTransport, hop.String())
	}
	tp, _ := hop.UriParams.Get("transport")
	switch strings.ToLower(tp) {
	case "", "udp":
		return "udp", nil
	case "tcp":
		return "tcp", nil
	}
	return "", fmt.Errorf("%w: transport=%s in %s", ErrUnsupportedTransport, tp, hop.String())
}

// viaAddr returns the sent-by of our Via for network, when we listen on it.
func (t *Hub) viaAddr(network string) (sip.Addr, bool) {
	t.life.Lock()
	defer t.life.Unlock()
	a, ok := t.via[network]
	return a, ok
}

// udpLocal returns the UDP listener's address as sipgo's connection pool
// keys it.
func (t *Hub) udpLocal() (sip.Addr, bool) {
	t.life.Lock()
	addr := t.bound["udp"]
	t.life.Unlock()
	if addr == "" {
		return sip.Addr{}, false
	}
	host, port, err := sip.ParseAddr(addr)
	if err != nil {
		return sip.Addr{}, false
	}
	return sip.Addr{IP: net.ParseIP(host), Port: port, Hostname: host}, true
}

// describeSendError makes sipgo's refusal of a large UDP message say what
// happened and what to do; other errors are returned as they are.
func describeSendError(err error, msg sip.Message) error {
	if errors.Is(err, sip.ErrUDPMTUCongestion) {
		return fmt.Errorf("%w: the message is %d bytes, over the %d bytes allowed over UDP (RFC 3261 §18.1.1); send it over TCP (;transport=tcp on the Request-URI or first Route)",
			ErrMessageTooLarge, len(msg.String()), sip.UDPMTUSize-200)
	}
	return err
}

// onWireProvisional publishes a provisional response to one of our INVITEs
// as it is read off the wire (see wire), so that it comes before the final
// response that may follow at once.
func (t *Hub) onWireProvisional(res *sip.Response) {
	via := res.Via()
	if via == nil {
		return
	}
	branch, _ := via.Params.Get("branch")
	ct := t.clientT.ofBranch(branch)
	if ct == nil || ct.hasFinal() {
		return
	}
	t.publish(ct.ctx, responseEvent(res, ct.id))
	select {
	case ct.provisional <- struct{}{}:
	default:
	}
}
