package calltest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore"
)

// transact sends req in a client transaction and waits for its final
// response, recording the request on the call. It returns a
// *StatusError for a non-2xx final response, and an error wrapping
// ErrNoAnswer when the transaction ends without one. An INVITE transaction
// is left to sipgo's timers after its final response: it ACKs a non-2xx
// itself and passes 2xx retransmissions to onRetransmission.
func (c *Call) transact(ctx context.Context, req *sip.Request) (*sip.Response, Message, error) {
	p := c.p
	if err := p.ep.begin(); err != nil {
		return nil, Message{}, err
	}
	defer p.ep.leave()
	c.record(false, requestMessage(req, req.Destination()))
	tx, err := p.ep.client.TransactionRequest(ctx, req, keepAsIs)
	if err != nil {
		return nil, Message{}, fmt.Errorf("calltest: call %s: send %s: %w", c.callID, req.Method, err)
	}
	invite := req.IsInvite()
	if invite {
		tx.OnRetransmission(c.onRetransmission)
	}
	final := false
	defer func() {
		if !invite || !final {
			tx.Terminate()
		}
	}()
	for {
		select {
		case res := <-tx.Responses():
			m := responseMessage(res, res.Source())
			if res.IsProvisional() {
				continue
			}
			final = true
			if res.IsSuccess() {
				return res, m, nil
			}
			return res, m, statusError(m)
		case <-tx.Done():
			return nil, Message{}, fmt.Errorf("calltest: call %s: %s: %w: %v", c.callID, req.Method, ErrNoAnswer, tx.Err())
		case <-ctx.Done():
			return nil, Message{}, fmt.Errorf("calltest: call %s: %s: %w", c.callID, req.Method, ctx.Err())
		case <-p.ep.ctx.Done():
			return nil, Message{}, ErrClosed
		}
	}
}

// newRequest builds an in-dialog request with the next CSeq; it returns
// ErrCallEnded or ErrInvalidState when the call has no confirmed dialog.
func (c *Call) newRequest(method sip.RequestMethod) (*sip.Request, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == callcore.StateTerminated {
		return nil, fmt.Errorf("calltest: call %s: %s: %w", c.callID, method, ErrCallEnded)
	}
	if c.status < 200 || c.status >= 300 {
		return nil, fmt.Errorf("calltest: call %s: %s before the call is answered: %w", c.callID, method, ErrInvalidState)
	}
	c.cseq++
	req := sip.NewRequest(method, *c.target.Clone())
	c.dialogHeadersLocked(req, c.cseq, method)
	req.AppendHeader(c.p.contact(c.transport))
	c.p.ep.route(req, c.transport)
	return req, nil
}

// Hangup ends the call whatever its state: BYE once answered, CANCEL for an
// outbound call still ringing, 603 Decline for an inbound one. The call ends
// (local_hangup after a BYE) even when the BYE fails; the error is still
// returned. It returns ErrCallEnded for a call that already ended.
func (c *Call) Hangup(ctx context.Context) error {
	c.mu.Lock()
	state, answered, finalSent := c.state, c.status >= 200 && c.status < 300, c.finalSent
	c.mu.Unlock()
	switch {
	case state == callcore.StateTerminated:
		return fmt.Errorf("calltest: hangup: %w", ErrCallEnded)
	case c.dir == callcore.Outbound && !answered:
		return c.Cancel(ctx)
	case c.dir == callcore.Inbound && !finalSent:
		return c.Reject(ctx, 603)
	case c.dir == callcore.Inbound && !answered:
		return fmt.Errorf("calltest: hangup while rejecting: %w", ErrInvalidState)
	}
	return c.bye(ctx, callcore.EndLocalHangup)
}

// bye sends BYE and ends the call with reason once it is answered.
func (c *Call) bye(ctx context.Context, reason callcore.EndReason) error {
	req, err := c.newRequest(sip.BYE)
	if err != nil {
		return err
	}
	req.SetBody(nil)
	c.setState(callcore.StateTerminating)
	_, _, err = c.transact(ctx, req)
	c.end(reason)
	return err
}

// Hold puts the far end on hold: a re-INVITE offering a=sendonly (o=
// version + 1). It returns once the 2xx is ACKed; the state is then
// on_hold. A non-2xx is a *StatusError and leaves the call as it was.
func (c *Call) Hold(ctx context.Context) error { return c.setDirection(ctx, SendOnly) }

// Resume takes the call off hold: a re-INVITE offering a=sendrecv.
func (c *Call) Resume(ctx context.Context) error { return c.setDirection(ctx, SendRecv) }

func (c *Call) setDirection(ctx context.Context, dir string) error {
	c.mu.Lock()
	m := c.media
	c.mu.Unlock()
	m.dir = dir
	m.version++
	_, err := c.reinvite(ctx, m.render(), &m)
	return err
}

// Reinvite sends a re-INVITE with body as its SDP offer, used as is, and
// returns the final response; a 2xx is ACKed and its SDP becomes the
// remote SDP. It returns ErrInvalidState when the call is not answered or
// another re-INVITE of ours is pending, and a *StatusError for a non-2xx.
func (c *Call) Reinvite(ctx context.Context, body string) (Message, error) {
	return c.reinvite(ctx, body, nil)
}

func (c *Call) reinvite(ctx context.Context, body string, media *localMedia) (Message, error) {
	c.mu.Lock()
	switch {
	case c.state == callcore.StateTerminated:
		c.mu.Unlock()
		return Message{}, fmt.Errorf("calltest: re-INVITE: %w", ErrCallEnded)
	case c.state != callcore.StateActive && c.state != callcore.StateOnHold:
		c.mu.Unlock()
		return Message{}, fmt.Errorf("calltest: re-INVITE in state %s: %w", c.state, ErrInvalidState)
	case c.reinviting:
		c.mu.Unlock()
		return Message{}, fmt.Errorf("calltest: re-INVITE while one is pending: %w", ErrInvalidState)
	}
	c.reinviting = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.reinviting = false
		c.mu.Unlock()
	}()

	req, err := c.newRequest(sip.INVITE)
	if err != nil {
		return Message{}, err
	}
	cseq := req.CSeq().SeqNo
	if body != "" {
		ct := sip.ContentTypeHeader("application/sdp")
		req.AppendHeader(&ct)
		req.SetBody([]byte(body))
	} else {
		req.SetBody(nil)
	}
	res, m, err := c.transact(ctx, req)
	if err != nil {
		return m, err
	}
	c.mu.Lock()
	if ct := res.Contact(); ct != nil {
		c.target = *ct.Address.Clone()
	}
	c.localSDP = body
	if media != nil {
		c.media = *media
	}
	if len(res.Body()) > 0 {
		c.remoteSDP = string(res.Body())
	}
	if offer, err := ParseSDP(body); err == nil {
		c.localHold = offer.Direction == SendOnly || offer.Direction == Inactive
	}
	if c.state != callcore.StateTerminated {
		c.state = c.activeStateLocked()
	}
	c.notifyLocked()
	ack := c.ackLocked(cseq)
	c.mu.Unlock()
	c.sendAck(ack)
	return m, nil
}

// SendDTMF sends digits (0-9, *, #, A-D) as SIP INFO, one request per digit
// with application/dtmf-relay "Signal=<d>\r\nDuration=160", each waiting for
// its 2xx. It stops at the first failure.
func (c *Call) SendDTMF(ctx context.Context, digits string) error {
	digits = strings.ToUpper(digits)
	for _, d := range digits {
		if !strings.ContainsRune(dtmfDigits, d) {
			return fmt.Errorf("calltest: SendDTMF: %q is not a DTMF digit", d)
		}
	}
	for _, d := range digits {
		body := fmt.Sprintf("Signal=%c\r\nDuration=160\r\n", d)
		if _, err := c.Send(ctx, "INFO", "application/dtmf-relay", body); err != nil {
			return err
		}
	}
	return nil
}

const dtmfDigits = "0123456789*#ABCD"

// Send sends any in-dialog request other than INVITE, ACK and CANCEL (use
// Reinvite and Cancel) with the given body and extra headers, and returns
// its final response; a non-2xx is a *StatusError.
func (c *Call) Send(ctx context.Context, method, contentType, body string, extra ...Header) (Message, error) {
	m := sip.RequestMethod(strings.ToUpper(method))
	if m == sip.INVITE || m == sip.ACK || m == sip.CANCEL {
		return Message{}, fmt.Errorf("calltest: Send %s: %w", m, ErrInvalidState)
	}
	req, err := c.newRequest(m)
	if err != nil {
		return Message{}, err
	}
	for _, h := range extra {
		req.AppendHeader(sip.NewHeader(h.Name, h.Value))
	}
	if body != "" {
		ct := sip.ContentTypeHeader(contentType)
		req.AppendHeader(&ct)
		req.SetBody([]byte(body))
	} else {
		req.SetBody(nil)
	}
	_, res, err := c.transact(ctx, req)
	return res, err
}

// reply records and sends a response built from req with this call's
// tag; it reports whether it was sent.
func (c *Call) reply(tx sip.ServerTransaction, req *sip.Request, code int, body string) bool {
	c.mu.Lock()
	res := c.responseLocked(req, code, body)
	c.mu.Unlock()
	c.record(false, responseMessage(res, res.Destination()))
	return c.p.ep.respond(tx, res)
}

// responseLocked builds a response to req: our To tag and, for 101-299,
// our Contact; an SDP body when body is not empty.
func (c *Call) responseLocked(req *sip.Request, code int, body string) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, callcore.ReasonPhrase(code), nil)
	if code > 100 {
		if to := res.To(); to != nil && req.IsInvite() {
			to.Params.Add("tag", c.localTag)
		}
		if code < 300 {
			res.AppendHeader(c.p.contact(c.transport))
		}
		if code >= 200 && code < 300 && req.IsInvite() {
			res.AppendHeader(sip.NewHeader("Allow", allowed))
			res.AppendHeader(sip.NewHeader("Supported", "replaces"))
		}
	}
	if body != "" {
		ct := sip.ContentTypeHeader("application/sdp")
		res.AppendHeader(&ct)
		res.SetBody([]byte(body))
	}
	return res
}

// onBye ends the call and answers the BYE. Handlers change the call before
// they answer, so that whoever has the answer sees the change.
func (c *Call) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c.end(callcore.EndRemoteHangup)
	c.reply(tx, req, 200, "")
}

// onInfo keeps the DTMF digit an INFO carries, if any (application/
// dtmf-relay "Signal=5", or application/dtmf with a bare digit), and
// answers 200.
func (c *Call) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	defer c.reply(tx, req, 200, "")
	var ct string
	if h := req.ContentType(); h != nil {
		ct, _, _ = strings.Cut(strings.ToLower(h.Value()), ";")
		ct = strings.TrimSpace(ct)
	}
	digit := parseDTMF(ct, string(req.Body()))
	if digit == "" {
		return
	}
	cseq := req.CSeq().SeqNo
	c.mu.Lock()
	defer c.mu.Unlock()
	i, _ := slices.BinarySearchFunc(c.dtmf, cseq, func(d cseqItem[string], n uint32) int { return int(int64(d.cseq) - int64(n)) })
	c.dtmf = slices.Insert(c.dtmf, i, cseqItem[string]{cseq: cseq, v: digit})
	c.notifyLocked()
}

// parseDTMF returns the digit an INFO body carries, or "".
func parseDTMF(contentType, body string) string {
	var d string
	switch contentType {
	case "application/dtmf-relay":
		for line := range strings.Lines(body) {
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "signal") {
				d = strings.TrimSpace(v)
				break
			}
		}
	case "application/dtmf":
		d = strings.TrimSpace(body)
	}
	switch d {
	case "10":
		d = "*"
	case "11":
		d = "#"
	}
	d = strings.ToUpper(d)
	if len(d) != 1 || !strings.Contains(dtmfDigits, d) {
		return ""
	}
	return d
}

// onReinvite answers a re-INVITE: 491 while ours is pending, 488 for an
// offer with no common codec, else 200 with the mirrored direction (held
// when the offer is sendonly or inactive); a re-INVITE without SDP gets our
// offer, answered in the ACK.
func (c *Call) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	c.mu.Lock()
	if c.reinviting {
		c.mu.Unlock()
		c.reply(tx, req, 491, "")
		return
	}
	m := c.media
	m.version++
	offer := string(req.Body())
	if offer != "" {
		parsed, err := ParseSDP(offer)
		codecs, ok := answerCodecs(parsed, c.p.accept)
		if err != nil || !ok {
			c.mu.Unlock()
			c.reply(tx, req, 488, "")
			return
		}
		m.codecs, m.dir = codecs, mirror(parsed.Direction)
		c.remoteSDP = offer
		c.remoteHold = parsed.Direction == SendOnly || parsed.Direction == Inactive
	}
	c.media = m
	answer := m.render()
	c.localSDP = answer
	if ct := req.Contact(); ct != nil {
		c.target = *ct.Address.Clone()
	}
	if c.state != callcore.StateTerminated {
		c.state = c.activeStateLocked()
	}
	cseq := req.CSeq().SeqNo
	acked := make(chan struct{})
	c.pending[cseq] = acked
	res := c.responseLocked(req, 200, answer)
	c.sent = append(c.sent, responseMessage(res, res.Destination()))
	c.notifyLocked()
	c.mu.Unlock()
	if c.p.ep.respond(tx, res) {
		c.p.ep.goTracked(func() { c.awaitAck(tx, res, cseq, acked) })
	}
}
