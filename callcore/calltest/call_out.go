package calltest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore"
)

// CallOption configures one outgoing call.
type CallOption func(*callConfig)

type callConfig struct {
	transport       string // "UDP", "TCP", or "" to follow the URI
	headers         []Header
	sdp             *string // nil: generated offer; "": no body
	noACK           bool
	cancelAfter     time.Duration
	cancelOnRinging bool
	codecs          []string
	from            string
}

// WithTCP sends the call over TCP whatever the URI says.
func WithTCP() CallOption { return func(c *callConfig) { c.transport = "TCP" } }

// WithUDP sends the call over UDP whatever the URI says. Without WithTCP or
// WithUDP the URI decides: ";transport=tcp" means TCP, anything else UDP.
func WithUDP() CallOption { return func(c *callConfig) { c.transport = "UDP" } }

// WithHeader adds a header to the INVITE (e.g. X-Correlation, Replaces).
func WithHeader(name, value string) CallOption {
	return func(c *callConfig) { c.headers = append(c.headers, Header{Name: name, Value: value}) }
}

// WithSDP sends body as the INVITE's offer instead of the generated one, to
// test how the far end takes a bad or unusual offer; "" sends no body.
func WithSDP(body string) CallOption { return func(c *callConfig) { c.sdp = &body } }

// WithoutSDP sends the INVITE without a body (a late offer).
func WithoutSDP() CallOption { return WithSDP("") }

// WithoutACK never ACKs the 2xx of the INVITE, nor its retransmissions, to
// test the far end's handling of a missing ACK (callbus sends BYE after
// 64·T1). Re-INVITEs are still ACKed.
func WithoutACK() CallOption { return func(c *callConfig) { c.noACK = true } }

// CancelAfter makes Phone.Call send CANCEL d after the INVITE, or once a
// provisional response has arrived if that is later (RFC 3261 §9.1), unless
// the call was answered or failed first. A 2xx that crosses the CANCEL is
// ACKed and the call hung up at once; Call then returns no error.
func CancelAfter(d time.Duration) CallOption { return func(c *callConfig) { c.cancelAfter = d } }

// CancelOnRinging makes Phone.Call send CANCEL as soon as a 180 or 183
// arrives.
func CancelOnRinging() CallOption { return func(c *callConfig) { c.cancelOnRinging = true } }

// WithCodecs sets the codecs offered, by name (PCMU, PCMA, G722, G729,
// telephone-event); the default is the phone's WithAnswerCodecs list.
func WithCodecs(names ...string) CallOption { return func(c *callConfig) { c.codecs = names } }

// WithFrom sets the From URI (e.g. "sip:+15550100@example.com"); the
// default is sip:<user>@<phone host>.
func WithFrom(uri string) CallOption { return func(c *callConfig) { c.from = uri } }

// Call places a call to the SIP URI to and waits for its outcome: it
// returns once a 2xx arrived and was ACKed, or with a *StatusError carrying
// a non-2xx final status (486, 487 after a CANCEL…), or ErrNoAnswer when
// the INVITE timed out (sipgo's Timer B, 64·T1), or ctx's error. The *Call
// is returned with every outcome, so a failed call can be inspected too; it
// is nil only when the INVITE could not be sent. When ctx ends first the
// call is left as it is: Hangup cancels it.
func (p *Phone) Call(ctx context.Context, to string, opts ...CallOption) (*Call, error) {
	c, err := p.Dial(ctx, to, opts...)
	if err != nil {
		return nil, err
	}
	due := false
	switch {
	case c.cfg.cancelOnRinging:
		err := c.wait(ctx, "ringing", func() (bool, error) {
			return c.state == callcore.StateRinging || c.settled, nil
		})
		if err != nil {
			return c, err
		}
		due = true
	case c.cfg.cancelAfter > 0:
		t := time.NewTimer(c.cfg.cancelAfter)
		defer t.Stop()
		select {
		case <-t.C:
			due = true
		case <-c.outcome:
		case <-ctx.Done():
		}
	}
	if due {
		select {
		case <-c.outcome: // answered or failed before the CANCEL was due
		default:
			if err := c.Cancel(ctx); err != nil && !isEnded(err) {
				return c, err
			}
		}
	}
	return c, c.WaitAnswer(ctx)
}

// Dial sends an INVITE to the SIP URI to and returns the call at once,
// before any response; WaitAnswer, WaitState and Cancel follow it. It
// returns ErrNotOpen/ErrClosed for a phone that is not open, and an error
// for an unparsable URI, an unknown codec or a transport failure.
func (p *Phone) Dial(ctx context.Context, to string, opts ...CallOption) (*Call, error) {
	if err := p.ep.begin(); err != nil {
		return nil, err
	}
	defer p.ep.leave()
	cfg := callConfig{codecs: p.cfg.codecs}
	for _, o := range opts {
		o(&cfg)
	}
	var target sip.Uri
	if err := sip.ParseUri(to, &target); err != nil {
		return nil, fmt.Errorf("calltest: dial %q: %w", to, err)
	}
	transport := cfg.transport
	if transport == "" {
		transport = "UDP"
		if t, ok := target.UriParams.Get("transport"); ok && strings.EqualFold(t, "tcp") {
			transport = "TCP"
		}
	}
	from := p.localURI()
	if cfg.from != "" {
		if err := sip.ParseUri(cfg.from, &from); err != nil {
			return nil, fmt.Errorf("calltest: dial: from %q: %w", cfg.from, err)
		}
	}
	codecs, err := codecsByName(cfg.codecs)
	if err != nil {
		return nil, err
	}
	rtp, err := p.bindRTP()
	if err != nil {
		return nil, err
	}

	c := newCall(p, callcore.Outbound, sip.GenerateTagN(24)+"@calltest", sip.GenerateTagN(16), transport, rtp)
	c.cfg = cfg
	c.localAddr = from
	c.remoteAddr = sip.Uri{Scheme: target.Scheme, User: target.User, Host: target.Host, Port: target.Port}
	c.target = *target.Clone()
	c.media = localMedia{host: p.ep.host, port: portOf(c.RTPAddr()), codecs: codecs, dir: SendRecv, sessID: randID(), version: 1}
	body := c.media.render()
	if cfg.sdp != nil {
		body = *cfg.sdp
	}
	c.localSDP = body
	c.cseq, c.inviteCSeq = 1, 1

	req := sip.NewRequest(sip.INVITE, target)
	c.dialogHeadersLocked(req, 1, sip.INVITE)
	req.AppendHeader(p.contact(transport))
	req.AppendHeader(sip.NewHeader("Allow", allowed))
	req.AppendHeader(sip.NewHeader("Supported", "replaces"))
	for _, h := range cfg.headers {
		req.AppendHeader(sip.NewHeader(h.Name, h.Value))
	}
	if body != "" {
		ct := sip.ContentTypeHeader("application/sdp")
		req.AppendHeader(&ct)
		req.SetBody([]byte(body))
	} else {
		req.SetBody(nil)
	}
	p.ep.route(req, transport)
	c.invite = req
	p.register(c, false)

	c.record(false, requestMessage(req, req.Destination()))
	tx, err := p.ep.client.TransactionRequest(ctx, req, keepAsIs)
	if err != nil {
		c.end(callcore.EndFailed)
		return nil, fmt.Errorf("calltest: dial %s: send INVITE: %w", to, err)
	}
	tx.OnRetransmission(c.onRetransmission)
	if !p.ep.goTracked(func() { c.runInvite(tx) }) {
		tx.Terminate()
		c.end(callcore.EndFailed)
		return nil, ErrClosed
	}
	return c, nil
}

// runInvite follows the INVITE transaction to its final response.
func (c *Call) runInvite(tx sip.ClientTransaction) {
	for {
		select {
		case res := <-tx.Responses():
			switch {
			case res.IsProvisional():
				c.onProvisional(res)
			case res.IsSuccess():
				c.onAnswered(res)
				return
			default:
				// sipgo's transaction ACKs a non-2xx final response itself.
				c.mu.Lock()
				c.status = res.StatusCode
				c.mu.Unlock()
				c.settle(statusError(responseMessage(res, res.Source())))
				c.end(callcore.EndReasonForStatus(res.StatusCode))
				return
			}
		case <-tx.Done():
			c.settle(fmt.Errorf("calltest: call %s: INVITE: %w: %v", c.callID, ErrNoAnswer, tx.Err()))
			reason := callcore.EndFailed
			if errors.Is(tx.Err(), sip.ErrTransactionTimeout) {
				reason = callcore.EndTimeout
			}
			c.end(reason)
			return
		case <-c.ctx.Done():
			return
		}
	}
}

func (c *Call) onProvisional(res *sip.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.provisional:
	default:
		close(c.provisional)
	}
	if res.StatusCode > 100 && c.state == callcore.StateInitiating {
		c.state = callcore.StateRinging
	}
	if len(res.Body()) > 0 {
		c.remoteSDP = string(res.Body()) // early media
	}
	c.notifyLocked()
}

// onAnswered takes the dialog from the 2xx, ACKs it and settles the call.
func (c *Call) onAnswered(res *sip.Response) {
	c.mu.Lock()
	c.status = res.StatusCode
	if to := res.To(); to != nil {
		c.remoteTag, _ = to.Params.Get("tag")
	}
	if ct := res.Contact(); ct != nil {
		c.target = *ct.Address.Clone()
	}
	rr := res.GetHeaders("Record-Route")
	for i := len(rr) - 1; i >= 0; i-- {
		c.routes = append(c.routes, rr[i].Value())
	}
	if len(res.Body()) > 0 {
		c.remoteSDP = string(res.Body())
	}
	if c.state != callcore.StateTerminated {
		c.state = callcore.StateActive
	}
	c.notifyLocked()
	cancelling, noACK := c.cancelling, c.cfg.noACK
	var ack *sip.Request
	if !noACK {
		ack = c.ackLocked(res.CSeq().SeqNo)
		if c.localSDP == "" && c.remoteSDP != "" {
			// We sent no offer: the 2xx carries one, the ACK the answer.
			if answer, ok := c.answerLocked(); ok {
				c.localSDP = answer
				ct := sip.ContentTypeHeader("application/sdp")
				ack.AppendHeader(&ct)
				ack.SetBody([]byte(answer))
			}
		}
	}
	c.mu.Unlock()

	if ack != nil {
		c.sendAck(ack)
	}
	c.settle(nil)
	c.startMedia()
	if cancelling {
		// The 2xx crossed our CANCEL: RFC 3261 §9.1 says ACK it, then BYE.
		_ = c.Hangup(c.ctx)
	}
}

// ackLocked builds the ACK of a 2xx to the INVITE with CSeq cseq.
func (c *Call) ackLocked(cseq uint32) *sip.Request {
	ack := sip.NewRequest(sip.ACK, *c.target.Clone())
	c.dialogHeadersLocked(ack, cseq, sip.ACK)
	ack.SetBody(nil)
	c.p.ep.route(ack, c.transport)
	return ack
}

// sendAck sends an ACK (outside any transaction, RFC 3261 §13.2.2.4) and
// keeps it to repeat when the 2xx is retransmitted.
func (c *Call) sendAck(ack *sip.Request) {
	if !c.p.ep.enter() {
		return
	}
	defer c.p.ep.leave()
	// Keep a copy first: a retransmitted 2xx may come back before the
	// send returns, and the send writes into the request.
	c.mu.Lock()
	c.acks[ack.CSeq().SeqNo] = ack.Clone()
	c.mu.Unlock()
	c.record(false, requestMessage(ack, ack.Destination()))
	if err := c.p.ep.client.WriteRequest(ack, keepAsIs); err != nil {
		c.p.ep.log.Warn("calltest: send ACK", "call_id", c.callID, "error", err)
	}
}

// onRetransmission gets the responses an INVITE transaction passes up after
// its first 2xx: retransmissions of that 2xx, which need a new ACK.
func (c *Call) onRetransmission(res *sip.Response) {
	if res.IsSuccess() {
		c.reAck(res.CSeq().SeqNo)
	}
}

// reAck repeats the ACK of the INVITE with CSeq cseq (sipgo issue #120).
func (c *Call) reAck(cseq uint32) {
	if !c.p.ep.enter() {
		return
	}
	defer c.p.ep.leave()
	c.mu.Lock()
	ack := c.acks[cseq]
	c.mu.Unlock()
	if ack == nil {
		return // not ACKed yet (the first ACK is on its way), or WithoutACK
	}
	again := ack.Clone()
	c.record(false, requestMessage(again, again.Destination()))
	if err := c.p.ep.client.WriteRequest(again, keepAsIs); err != nil {
		c.p.ep.log.Warn("calltest: repeat ACK", "call_id", c.callID, "error", err)
	}
}

// keepAsIs is a sipgo request option that leaves a built request alone.
func keepAsIs(*sipgo.Client, *sip.Request) error { return nil }

// Cancel cancels an outbound call that has no final response yet: it waits
// for a provisional response (RFC 3261 §9.1), sends CANCEL, and waits until
// the INVITE ends (487, normally). It returns ErrInvalidState for an
// inbound call or one already answered, ErrCallEnded for an ended one, a
// *StatusError when the CANCEL is refused, and ctx's error.
func (c *Call) Cancel(ctx context.Context) error {
	if c.dir != callcore.Outbound {
		return ErrInvalidState
	}
	c.mu.Lock()
	switch {
	case c.state == callcore.StateTerminated:
		c.mu.Unlock()
		return fmt.Errorf("calltest: cancel: %w", ErrCallEnded)
	case c.settled:
		c.mu.Unlock()
		return fmt.Errorf("calltest: cancel an answered call: %w", ErrInvalidState)
	}
	c.cancelling = true
	c.mu.Unlock()

	select {
	case <-c.provisional:
	case <-c.outcome:
		return nil // answered (then hung up by onAnswered) or failed meanwhile
	case <-ctx.Done():
		return fmt.Errorf("calltest: cancel: wait for a provisional response: %w", ctx.Err())
	}
	inv := c.invite
	req := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	req.AppendHeader(sip.HeaderClone(inv.Via()))
	for _, h := range inv.GetHeaders("Route") {
		req.AppendHeader(sip.HeaderClone(h))
	}
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.HeaderClone(inv.From()))
	req.AppendHeader(sip.HeaderClone(inv.To()))
	req.AppendHeader(sip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: c.inviteCSeq, MethodName: sip.CANCEL})
	req.SetBody(nil)
	c.p.ep.route(req, c.transport)
	if _, _, err := c.transact(ctx, req); err != nil {
		return err
	}
	select {
	case <-c.outcome:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("calltest: cancel: wait for the INVITE to end: %w", ctx.Err())
	}
}

// dialogHeadersLocked adds From, To, Call-ID, CSeq, Max-Forwards and the
// route set of the dialog.
func (c *Call) dialogHeadersLocked(req *sip.Request, cseq uint32, method sip.RequestMethod) {
	from := &sip.FromHeader{DisplayName: c.localName, Address: *c.localAddr.Clone(), Params: sip.HeaderParams{{K: "tag", V: c.localTag}}}
	to := &sip.ToHeader{DisplayName: c.remoteName, Address: *c.remoteAddr.Clone(), Params: sip.HeaderParams{}}
	if c.remoteTag != "" {
		to.Params.Add("tag", c.remoteTag)
	}
	id := sip.CallIDHeader(c.callID)
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&id)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	req.AppendHeader(&mf)
	for _, r := range slices.Clone(c.routes) {
		req.AppendHeader(sip.NewHeader("Route", r))
	}
}

func randID() uint64 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return uint64(binary.BigEndian.Uint32(b[:]))
}
