package calltest

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore"
)

// ReferPolicy says what a phone does with a REFER it receives on a call.
type ReferPolicy int

const (
	// ReferAccept answers 202 Accepted and sends NOTIFY "SIP/2.0 100
	// Trying"; the test reports the outcome with Call.NotifyTransfer.
	ReferAccept ReferPolicy = iota
	// ReferFollow answers 202, sends NOTIFY 100 Trying, calls the Refer-To
	// target (with its Replaces as a header) and NOTIFYs the outcome:
	// "200 OK" once answered, else the failure status; the new call is
	// Call.ReferredCall. The phone does not hang up the referring call: the
	// transferor does (RFC 5589).
	ReferFollow
	// ReferReject answers 603 Decline.
	ReferReject
)

// Refer is a REFER the phone received on a call.
type Refer struct {
	ReferTo    string // the Refer-To header value as received
	Target     string // the URI to call, without its ?headers
	Replaces   string // the unescaped Replaces of an attended transfer, or ""
	ReferredBy string
	Message    Message
}

// Notify is a NOTIFY the phone received on a call, e.g. transfer progress.
type Notify struct {
	Event             string // e.g. "refer"
	SubscriptionState string // e.g. "active;expires=60", "terminated;reason=noresource"
	Status            int    // status code of a message/sipfrag body, else 0
	Reason            string // its reason phrase
	Final             bool   // a final sipfrag status, or the subscription terminated
	Message           Message
}

// Refers returns the REFERs received on the call, in arrival order.
func (c *Call) Refers() []Refer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.refers)
}

// WaitRefer returns the first REFER received on the call, waiting for it;
// a REFER shows here once the phone answered 202 and its NOTIFY "100
// Trying" was answered.
func (c *Call) WaitRefer(ctx context.Context) (Refer, error) {
	var r Refer
	err := c.wait(ctx, "REFER", func() (bool, error) {
		if len(c.refers) > 0 {
			r = c.refers[0]
			return true, nil
		}
		return false, c.endedErrLocked()
	})
	return r, err
}

// ReferredCall returns the call the phone placed to follow a REFER on this
// call (ReferFollow), waiting for it.
func (c *Call) ReferredCall(ctx context.Context) (*Call, error) {
	var nc *Call
	err := c.wait(ctx, "referred call", func() (bool, error) {
		nc = c.referred
		return nc != nil, nil
	})
	return nc, err
}

// Notifies returns the NOTIFYs received on the call, in CSeq order.
func (c *Call) Notifies() []Notify {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Notify, 0, len(c.notifies))
	for _, n := range c.notifies {
		out = append(out, n.v)
	}
	return out
}

// WaitTransferResult waits for the NOTIFY that ends a transfer this call
// requested (a final sipfrag status, or the subscription terminated) and
// returns it; Status 200 means the transfer target answered. NOTIFYs are
// accepted after the call ended, so this works after a BYE too.
func (c *Call) WaitTransferResult(ctx context.Context) (Notify, error) {
	var got Notify
	err := c.wait(ctx, "final transfer NOTIFY", func() (bool, error) {
		for _, n := range c.notifies {
			if n.v.Final {
				got = n.v
				return true, nil
			}
		}
		return false, nil
	})
	return got, err
}

// Refer sends a REFER with referTo as the Refer-To value, used as is
// (e.g. "<sip:bob@host>"), plus Referred-By and any extra headers, and
// returns its final response (202, normally; else a *StatusError).
func (c *Call) Refer(ctx context.Context, referTo string, extra ...Header) (Message, error) {
	req, err := c.newRequest(sip.REFER)
	if err != nil {
		return Message{}, err
	}
	c.mu.Lock()
	by := "<" + c.localAddr.String() + ">"
	c.mu.Unlock()
	req.AppendHeader(sip.NewHeader("Refer-To", referTo))
	req.AppendHeader(sip.NewHeader("Referred-By", by))
	for _, h := range extra {
		req.AppendHeader(sip.NewHeader(h.Name, h.Value))
	}
	req.SetBody(nil)
	_, m, err := c.transact(ctx, req)
	return m, err
}

// Transfer asks the far end to call target (a blind transfer: REFER with
// Refer-To: <target>) and returns once the REFER is accepted. The progress
// arrives as NOTIFYs: WaitTransferResult. The call stays up; hang it up
// when the transfer succeeded, as a transferor does.
func (c *Call) Transfer(ctx context.Context, target string) error {
	_, err := c.Refer(ctx, "<"+target+">")
	return err
}

// TransferAttended asks the far end to replace consult, another call of
// this phone, with a call of its own to consult's far end (an attended
// transfer: Refer-To: <consult's remote target?Replaces=...>, with the
// to-tag naming consult's far end and the from-tag this side, RFC 3891).
func (c *Call) TransferAttended(ctx context.Context, consult *Call) error {
	consult.mu.Lock()
	remoteTag, target := consult.remoteTag, consult.target.String()
	answered := consult.status >= 200 && consult.status < 300
	consult.mu.Unlock()
	if !answered || remoteTag == "" {
		return fmt.Errorf("calltest: attended transfer to an unanswered call: %w", ErrInvalidState)
	}
	replaces := consult.callID + ";to-tag=" + remoteTag + ";from-tag=" + consult.localTag
	_, err := c.Refer(ctx, "<"+target+"?Replaces="+url.QueryEscape(replaces)+">")
	return err
}

// NotifyTransfer reports the progress of a transfer the far end requested
// with REFER: a NOTIFY (Event: refer) with the sipfrag "SIP/2.0 <status>
// <reason>", terminating the subscription when status is final (≥ 200).
func (c *Call) NotifyTransfer(ctx context.Context, status int, reason string) error {
	if reason == "" {
		reason = callcore.ReasonPhrase(status)
	}
	state := "active;expires=60"
	if status >= 200 {
		state = "terminated;reason=noresource"
	}
	_, err := c.Send(ctx, "NOTIFY", "message/sipfrag;version=2.0",
		fmt.Sprintf("SIP/2.0 %d %s\r\n", status, reason),
		Header{Name: "Event", Value: "refer"}, Header{Name: "Subscription-State", Value: state})
	return err
}

// onRefer serves a REFER according to the phone's ReferPolicy.
func (c *Call) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	h := req.GetHeader("Refer-To")
	if h == nil {
		c.reply(tx, req, 400, "")
		return
	}
	ref, err := parseReferTo(h.Value())
	if err != nil {
		c.reply(tx, req, 400, "")
		return
	}
	if by := req.GetHeader("Referred-By"); by != nil {
		ref.ReferredBy = by.Value()
	}
	ref.Message = requestMessage(req, req.Source())
	c.p.mu.Lock()
	policy := c.p.refer
	c.p.mu.Unlock()
	if policy == ReferReject {
		c.reply(tx, req, 603, "")
		return
	}
	if !c.reply(tx, req, 202, "") {
		return
	}
	if err := c.NotifyTransfer(c.ctx, 100, "Trying"); err != nil {
		c.p.ep.log.Warn("calltest: NOTIFY 100", "call_id", c.callID, "error", err)
	}
	// Published after the NOTIFY 100, so a test's own NOTIFYs come later.
	c.mu.Lock()
	c.refers = append(c.refers, ref)
	c.notifyLocked()
	c.mu.Unlock()
	if policy == ReferFollow {
		c.follow(ref)
	}
}

// follow calls a REFER's target and NOTIFYs the outcome on c.
func (c *Call) follow(ref Refer) {
	ctx := c.p.ep.ctx
	var opts []CallOption
	if ref.Replaces != "" {
		opts = append(opts, WithHeader("Replaces", ref.Replaces))
	}
	if ref.ReferredBy != "" {
		opts = append(opts, WithHeader("Referred-By", ref.ReferredBy))
	}
	status, reason := 200, "OK"
	nc, err := c.p.Dial(ctx, ref.Target, opts...)
	if err == nil {
		c.mu.Lock()
		c.referred = nc
		c.notifyLocked()
		c.mu.Unlock()
		err = nc.WaitAnswer(ctx)
	}
	if err != nil {
		status, reason = StatusOf(err), ""
		if status == 0 {
			status = 503
		}
	}
	if err := c.NotifyTransfer(ctx, status, reason); err != nil {
		c.p.ep.log.Warn("calltest: NOTIFY transfer outcome", "call_id", c.callID, "error", err)
	}
}

// onNotify keeps a NOTIFY, parsing a message/sipfrag body, and answers 200.
func (c *Call) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	defer c.reply(tx, req, 200, "")
	m := requestMessage(req, req.Source())
	n := Notify{Event: m.Get("Event"), SubscriptionState: m.Get("Subscription-State"), Message: m}
	if strings.HasPrefix(strings.ToLower(m.Get("Content-Type")), "message/sipfrag") {
		n.Status, n.Reason = parseSipfrag(m.Body)
	}
	n.Final = n.Status >= 200 || strings.HasPrefix(strings.ToLower(n.SubscriptionState), "terminated")
	cseq := m.CSeq()
	c.mu.Lock()
	defer c.mu.Unlock()
	i, _ := slices.BinarySearchFunc(c.notifies, cseq, func(x cseqItem[Notify], n uint32) int { return int(int64(x.cseq) - int64(n)) })
	c.notifies = slices.Insert(c.notifies, i, cseqItem[Notify]{cseq: cseq, v: n})
	c.notifyLocked()
}

// parseSipfrag returns the status line of a sipfrag ("SIP/2.0 200 OK").
func parseSipfrag(body string) (int, string) {
	line, _, _ := strings.Cut(strings.TrimLeft(body, "\r\n "), "\n")
	f := strings.SplitN(strings.TrimSpace(line), " ", 3)
	if len(f) < 2 || !strings.HasPrefix(f[0], "SIP/") {
		return 0, ""
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, ""
	}
	if len(f) == 3 {
		return code, f[2]
	}
	return code, ""
}

// parseReferTo splits a Refer-To value into the target URI and the
// Replaces it carries; it returns an error for a value with no SIP URI.
func parseReferTo(v string) (Refer, error) {
	r := Refer{ReferTo: v}
	uri := strings.TrimSpace(v)
	if i := strings.IndexByte(uri, '<'); i >= 0 {
		j := strings.IndexByte(uri[i:], '>')
		if j < 0 {
			return r, fmt.Errorf("Refer-To %q: no closing '>'", v)
		}
		uri = uri[i+1 : i+j]
	}
	target, headers, _ := strings.Cut(uri, "?")
	var u sip.Uri
	if err := sip.ParseUri(target, &u); err != nil || u.Host == "" {
		return r, fmt.Errorf("Refer-To %q: bad URI", v)
	}
	r.Target = target
	for _, kv := range strings.Split(headers, "&") {
		k, val, _ := strings.Cut(kv, "=")
		if strings.EqualFold(k, "Replaces") {
			rep, err := url.PathUnescape(val)
			if err != nil {
				return r, fmt.Errorf("Refer-To %q: bad Replaces: %w", v, err)
			}
			r.Replaces = rep
		}
	}
	return r, nil
}
