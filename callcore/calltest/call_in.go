package calltest

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore"
)

// Policy decides what a phone does with an incoming call. It runs in the
// goroutine serving the INVITE, after the phone sent 100 Trying, with a ctx
// that ends when the call ends (a CANCEL) or the phone closes. It may ring,
// answer or reject the call, or leave it ringing for the test to answer
// later through Phone.Incoming; an error is logged and, when no final
// response was sent, answered with 500.
type Policy func(ctx context.Context, c *Call) error

// AutoAnswer rings (180) and answers (200 with an SDP answer; 488 when the
// offer has no codec in common).
func AutoAnswer() Policy {
	return func(ctx context.Context, c *Call) error {
		if err := c.Ring(ctx); err != nil {
			return err
		}
		return c.Answer(ctx)
	}
}

// RingOnly sends 180 and leaves the call ringing: the test answers or
// rejects it (Call.Answer, Call.Reject), or the caller cancels.
func RingOnly() Policy {
	return func(ctx context.Context, c *Call) error { return c.Ring(ctx) }
}

// Reject answers every call with the final status code (486, 603…).
func Reject(status int) Policy {
	return func(ctx context.Context, c *Call) error { return c.Reject(ctx, status) }
}

// Ignore sends nothing after 100 Trying: the call stays unanswered until
// the caller gives up or the test acts.
func Ignore() Policy {
	return func(context.Context, *Call) error { return nil }
}

// onInvite serves an INVITE: a re-INVITE goes to its dialog; a new call is
// registered, queued for Incoming and handed to the policy, and the handler
// returns once a final response is sent (sipgo ends an INVITE transaction
// whose handler returns without one).
func (p *Phone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		p.inDialog(false, (*Call).onReinvite)(req, tx)
		return
	}
	c, err := p.newIncoming(req, tx)
	if err != nil {
		p.ep.log.Warn("calltest: incoming call", "error", err)
		p.ep.respond(tx, sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	cancelled := func(*sip.Request) {
		// sipgo answers the CANCEL (200) and the INVITE (487) itself.
		c.mu.Lock()
		c.status = 487
		c.mu.Unlock()
		c.end(callcore.EndCancelled)
	}
	if !tx.OnCancel(cancelled) { // already cancelled or gone
		cancelled(nil)
	}
	c.reply(tx, req, 100, "")

	p.mu.Lock()
	policy := p.policy
	p.mu.Unlock()
	if c.replaces != "" {
		policy = p.replacing(c)
	}
	p.register(c, true)
	if err := policy(c.ctx, c); err != nil {
		p.ep.log.Warn("calltest: incoming call policy", "call_id", c.callID, "error", err)
		_ = c.Reject(c.ctx, 500)
	}
	select {
	case <-c.final:
	case <-c.ctx.Done():
	}
}

// newIncoming makes the call of a new INVITE.
func (p *Phone) newIncoming(req *sip.Request, tx sip.ServerTransaction) (*Call, error) {
	from, to, cseq := req.From(), req.To(), req.CSeq()
	if from == nil || to == nil || req.CallID() == nil || cseq == nil {
		return nil, fmt.Errorf("INVITE without From, To, Call-ID or CSeq")
	}
	rtp, err := p.bindRTP()
	if err != nil {
		return nil, err
	}
	transport := "UDP"
	if strings.EqualFold(req.Transport(), "TCP") {
		transport = "TCP"
	}
	c := newCall(p, callcore.Inbound, req.CallID().Value(), sip.GenerateTagN(16), transport, rtp)
	c.localAddr, c.localName = *to.Address.Clone(), to.DisplayName
	c.remoteAddr, c.remoteName = *from.Address.Clone(), from.DisplayName
	c.remoteTag, _ = from.Params.Get("tag")
	c.target = *from.Address.Clone()
	if ct := req.Contact(); ct != nil {
		c.target = *ct.Address.Clone()
	}
	for _, rr := range req.GetHeaders("Record-Route") {
		c.routes = append(c.routes, rr.Value())
	}
	c.cseq = uint32(randID() & 0x7fff) // our own CSeq space
	c.inviteCSeq = cseq.SeqNo
	c.invite, c.serverTx = req, tx
	c.remoteSDP = string(req.Body())
	if h := req.GetHeader("Replaces"); h != nil {
		c.replaces = h.Value()
	}
	c.media = localMedia{host: p.ep.host, port: portOf(c.RTPAddr()), codecs: p.accept, dir: SendRecv, sessID: randID(), version: 1}
	c.record(true, requestMessage(req, req.Source()))
	return c, nil
}

// Ring sends 180 Ringing on an incoming call; the state becomes ringing.
// It returns ErrInvalidState for an outbound call or one with a final
// response, ErrCallEnded for an ended one.
func (c *Call) Ring(ctx context.Context) error { return c.sendProvisional(ctx, 180) }

// Progress sends 183 Session Progress with the SDP answer (early media).
func (c *Call) Progress(ctx context.Context) error { return c.sendProvisional(ctx, 183) }

func (c *Call) sendProvisional(ctx context.Context, code int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	if err := c.canRespondLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	body := ""
	if code == 183 {
		var ok bool
		if body, ok = c.answerLocked(); !ok {
			c.mu.Unlock()
			return fmt.Errorf("calltest: 183: offer has no common codec: %w", ErrInvalidState)
		}
	}
	if c.state == callcore.StateInitiating {
		c.state = callcore.StateRinging
	}
	res := c.responseLocked(c.invite, code, body)
	tx := c.serverTx
	c.notifyLocked()
	c.mu.Unlock()
	c.record(false, responseMessage(res, res.Destination()))
	if err := tx.Respond(res); err != nil {
		return fmt.Errorf("calltest: call %s: send %d: %w", c.callID, code, err)
	}
	return nil
}

func (c *Call) canRespondLocked() error {
	switch {
	case c.dir != callcore.Inbound:
		return fmt.Errorf("calltest: respond to an outbound call: %w", ErrInvalidState)
	case c.state == callcore.StateTerminated:
		return fmt.Errorf("calltest: call %s: %w", c.callID, ErrCallEnded)
	case c.finalSent:
		return fmt.Errorf("calltest: call %s has its final response: %w", c.callID, ErrInvalidState)
	}
	return nil
}

// answerLocked computes our SDP answer to the INVITE's offer (our offer
// when the INVITE had none) and makes it the local media; it reports false
// when no codec is common or the offer is unparsable.
func (c *Call) answerLocked() (string, bool) {
	if c.remoteSDP == "" {
		return c.media.render(), true
	}
	offer, err := ParseSDP(c.remoteSDP)
	if err != nil {
		return "", false
	}
	codecs, ok := answerCodecs(offer, c.p.accept)
	if !ok {
		return "", false
	}
	c.media.codecs, c.media.dir = codecs, mirror(offer.Direction)
	c.remoteHold = offer.Direction == SendOnly || offer.Direction == Inactive
	return c.media.render(), true
}

// Answer answers an incoming call: 200 with the SDP answer (first offered
// codec among the phone's, telephone-event when offered, direction
// mirrored), retransmitted over UDP until the ACK arrives (T1 doubling to
// T2). No ACK within the ack timeout (WithAckTimeout) → BYE, ended as
// failed. Answer returns once the 200 is sent; WaitState(ctx, active)
// waits for the ACK. An offer with no common codec is rejected with 488
// and Answer returns a *StatusError.
func (c *Call) Answer(ctx context.Context) error { return c.answer(ctx, nil) }

// AnswerSDP answers like Answer but with body as the SDP, used as is.
func (c *Call) AnswerSDP(ctx context.Context, body string) error { return c.answer(ctx, &body) }

func (c *Call) answer(ctx context.Context, override *string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	if err := c.canRespondLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	var body string
	if override != nil {
		body = *override
	} else if b, ok := c.answerLocked(); ok {
		body = b
	} else {
		c.mu.Unlock()
		if err := c.Reject(ctx, 488); err != nil {
			return err
		}
		return &StatusError{Method: "INVITE", Status: 488, Reason: callcore.ReasonPhrase(488)}
	}
	c.finalSent = true
	c.status = 200
	c.localSDP = body
	acked := make(chan struct{})
	c.pending[c.inviteCSeq] = acked
	res := c.responseLocked(c.invite, 200, body)
	tx, cseq := c.serverTx, c.inviteCSeq
	c.mu.Unlock()
	defer close(c.final)

	c.record(false, responseMessage(res, res.Destination()))
	if err := tx.Respond(res); err != nil {
		c.end(callcore.EndFailed) // cancelled meanwhile, or the transaction is gone
		return fmt.Errorf("calltest: call %s: send 200: %w", c.callID, err)
	}
	c.p.ep.goTracked(func() { c.awaitAck(tx, res, cseq, acked) })
	c.startMedia()
	return nil
}

// Reject sends a final non-2xx status (486, 603…) to an incoming call and
// ends it as rejected; sipgo's transaction takes the ACK.
func (c *Call) Reject(ctx context.Context, status int) error {
	if status < 300 || status > 699 {
		return fmt.Errorf("calltest: reject with %d: not a failure status", status)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	if err := c.canRespondLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	c.finalSent = true
	c.status = status
	res := c.responseLocked(c.invite, status, "")
	tx := c.serverTx
	c.mu.Unlock()
	defer close(c.final)
	c.record(false, responseMessage(res, res.Destination()))
	err := tx.Respond(res)
	c.end(callcore.EndRejected)
	if err != nil {
		return fmt.Errorf("calltest: call %s: send %d: %w", c.callID, status, err)
	}
	return nil
}

// awaitAck retransmits a 2xx to an INVITE over UDP (T1, doubling, capped
// at T2) until its ACK arrives; with no ACK in the ack timeout it ends the
// call with a BYE (RFC 3261 §13.3.1.4). sipgo's server transaction leaves
// 2xx retransmission to its user.
func (c *Call) awaitAck(tx sip.ServerTransaction, res *sip.Response, cseq uint32, acked <-chan struct{}) {
	deadline := time.NewTimer(c.p.cfg.ackTimeout)
	defer deadline.Stop()
	interval := sip.T1
	var resend <-chan time.Time
	var t *time.Timer
	if c.transport == "UDP" {
		t = time.NewTimer(interval)
		defer t.Stop()
		resend = t.C
	}
	for {
		select {
		case <-acked:
			return
		case ack := <-tx.Acks(): // an ACK that reused the INVITE's branch
			c.onAckRequest(ack)
			return
		case <-c.ctx.Done():
			return
		case <-deadline.C:
			c.ackTimedOut(cseq)
			return
		case <-resend:
			c.record(false, responseMessage(res, res.Destination()))
			_ = tx.Respond(res) // fails once the transaction is gone; the ACK may still come
			interval = min(2*interval, sip.T2)
			t.Reset(interval)
		}
	}
}

func (c *Call) ackTimedOut(cseq uint32) {
	c.p.ep.log.Warn("calltest: no ACK, sending BYE", "call_id", c.callID, "cseq", cseq)
	ctx, cancel := context.WithTimeout(c.p.ep.ctx, 64*sip.T1)
	defer cancel()
	if err := c.bye(ctx, callcore.EndFailed); err != nil {
		c.end(callcore.EndFailed)
	}
}

// onAck serves an ACK: it confirms the 2xx it acknowledges.
func (p *Phone) onAck(req *sip.Request, _ sip.ServerTransaction) {
	if c := p.dialogOf(req); c != nil {
		c.onAckRequest(req)
	}
}

func (c *Call) onAckRequest(req *sip.Request) {
	cseq := req.CSeq().SeqNo
	c.mu.Lock()
	defer c.mu.Unlock()
	acked, ok := c.pending[cseq]
	if !ok {
		return // a repeated ACK
	}
	delete(c.pending, cseq)
	close(acked)
	if len(req.Body()) > 0 {
		c.remoteSDP = string(req.Body()) // the answer to an offer we made in the 2xx
	}
	if cseq == c.inviteCSeq && c.state != callcore.StateTerminated {
		c.state = c.activeStateLocked()
	}
	c.notifyLocked()
}

// replacing is the policy for an INVITE with Replaces (RFC 3891): answer
// it and BYE the dialog it names, which ends as transferred; 481 when no
// live dialog matches. The to-tag names our side of the replaced dialog.
func (p *Phone) replacing(c *Call) Policy {
	callID, params, _ := strings.Cut(c.replaces, ";")
	var toTag, fromTag string
	for _, kv := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch strings.ToLower(k) {
		case "to-tag":
			toTag = v
		case "from-tag":
			fromTag = v
		}
	}
	if id, err := url.PathUnescape(strings.TrimSpace(callID)); err == nil {
		callID = id
	}
	old := p.lookup(callID, toTag)
	if old == nil || old == c || old.ended() || !old.remoteTagIs(fromTag) {
		return Reject(481)
	}
	return func(ctx context.Context, c *Call) error {
		if err := c.Answer(ctx); err != nil {
			return err
		}
		return old.bye(p.ep.ctx, callcore.EndTransferred)
	}
}
