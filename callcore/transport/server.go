package transport

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// serverTx is a request we received, kept under its transaction id until
// its sipgo transaction terminates.
type serverTx struct {
	id     string
	req    *sip.Request
	tx     sip.ServerTransaction
	invite bool

	final     chan struct{} // closed once a final response went out
	acked     chan struct{} // closed once the ACK of our 2xx arrived
	cancelled chan *sip.Request

	mu        sync.Mutex
	status    int // the final status sent, 0 before
	isAcked   bool
	isCancel  bool
	finalOnce sync.Once
}

func newServerTx(req *sip.Request, tx sip.ServerTransaction) *serverTx {
	return &serverTx{
		id:        callcore.NewID("st_"),
		req:       req,
		tx:        tx,
		invite:    req.IsInvite(),
		final:     make(chan struct{}),
		acked:     make(chan struct{}),
		cancelled: make(chan *sip.Request, 1),
	}
}

// setStatus records the final status about to be sent; the first wins.
func (st *serverTx) setStatus(status int) {
	st.mu.Lock()
	if st.status == 0 {
		st.status = status
	}
	st.mu.Unlock()
}

// finalSent wakes serve once a final response went out.
func (st *serverTx) finalSent() { st.finalOnce.Do(func() { close(st.final) }) }

// success reports whether a 2xx final response went out.
func (st *serverTx) success() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.status >= 200 && st.status < 300
}

// markAcked records the ACK of our 2xx; it reports false if it was
// already recorded.
func (st *serverTx) markAcked() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.isAcked {
		return false
	}
	st.isAcked = true
	close(st.acked)
	return true
}

// onCancel runs inside sipgo's transaction state machine when a CANCEL
// matched this INVITE; sipgo has answered the CANCEL and now sends 487.
// It must not block.
func (st *serverTx) onCancel(r *sip.Request) {
	st.mu.Lock()
	st.isCancel = true
	if st.status == 0 {
		st.status = sip.StatusRequestTerminated
	}
	st.mu.Unlock()
	select {
	case st.cancelled <- r:
	default:
	}
}

// rejected reports whether a final non-2xx response went out.
func (st *serverTx) rejected() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.status >= 300
}

// finished reports whether nothing the dialog layer sends to this
// transaction any more matters: the 2xx was ACKed or sipgo answered a
// CANCEL with 487.
func (st *serverTx) finished() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.isAcked || st.isCancel
}

// serverTable holds the live server transactions, and for a while the ids
// of finished ones, so that a late 2xx retransmission from the dialog
// layer (its timer raced the ACK) is dropped instead of reported.
type serverTable struct {
	mu      sync.Mutex
	byID    map[string]*serverTx
	invites map[string]*serverTx // inviteKey → INVITE
	gone    map[string]time.Time // finished ids → when to forget them
	goneQ   []string
}

func (s *serverTable) init() {
	s.byID = make(map[string]*serverTx)
	s.invites = make(map[string]*serverTx)
	s.gone = make(map[string]time.Time)
}

func (s *serverTable) add(st *serverTx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[st.id] = st
	if st.invite {
		s.invites[inviteKey(callIDOf(st.req), cseqOf(st.req))] = st
	}
}

func (s *serverTable) get(id string) *serverTx {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[id]
}

func (s *serverTable) invite(key string) *serverTx {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.invites[key]
}

// drop forgets st; it runs when sipgo terminates the transaction.
func (s *serverTable) drop(st *serverTx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID[st.id] != st {
		return
	}
	delete(s.byID, st.id)
	if st.invite {
		k := inviteKey(callIDOf(st.req), cseqOf(st.req))
		if s.invites[k] == st {
			delete(s.invites, k)
		}
	}
	now := time.Now()
	for len(s.goneQ) > 0 && now.After(s.gone[s.goneQ[0]]) {
		delete(s.gone, s.goneQ[0])
		s.goneQ = s.goneQ[1:]
	}
	// Remembered as long as the far end may still retransmit (64·T1).
	if st.finished() {
		s.bury(st.id, now)
	}
	if st.invite && st.rejected() {
		// Over TCP sipgo ends a rejected INVITE at once, so its ACK (same
		// branch) arrives as a transaction of its own: let receiveAck
		// know to drop it.
		s.bury(rejectedKey(st), now)
	}
}

func (s *serverTable) bury(id string, now time.Time) {
	if _, ok := s.gone[id]; !ok {
		s.goneQ = append(s.goneQ, id)
	}
	s.gone[id] = now.Add(64 * sip.T1)
}

func rejectedKey(st *serverTx) string {
	return "rejected " + inviteKey(callIDOf(st.req), cseqOf(st.req))
}

// wasFinished reports whether id is a recently terminated transaction that
// had finished normally (see serverTx.finished).
func (s *serverTable) wasFinished(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.gone[id]
	return ok
}

// onRequest is sipgo's handler for every request. sipgo terminates a
// transaction when its handler returns without a final response, so the
// handler stays until the dialog layer has answered (and, for a 2xx to an
// INVITE, until the ACK): one parked goroutine per pending request, which
// Close releases by terminating every transaction.
func (t *Hub) onRequest(req *sip.Request, tx sip.ServerTransaction) {
	if !t.g.Do("request handler", func(context.Context) { t.handleRequest(req, tx) }) && !req.IsAck() {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, "Service Unavailable", nil))
	}
}

// handleRequest is onRequest once Close is sure to wait for it.
func (t *Hub) handleRequest(req *sip.Request, tx sip.ServerTransaction) {
	if err := validateRequest(req); err != nil {
		// Never published: the dialog layer could not key or answer it.
		t.log.Info("malformed request refused", "method", req.Method, "source", req.Source(), "reason", err)
		if !req.IsAck() {
			if err := tx.Respond(badRequest(req, err)); err != nil {
				t.log.Debug("send 400 failed", "source", req.Source(), "error", err)
			}
		}
		return
	}
	if req.IsAck() {
		t.receiveAck(req)
		return
	}
	t.serve(req, tx)
}

// receiveAck publishes an ACK that came in a transaction of its own (the
// ACK of a 2xx carries a new branch), under the id of the INVITE it
// acknowledges when that transaction is still known.
func (t *Hub) receiveAck(req *sip.Request) {
	id := ""
	key := inviteKey(callIDOf(req), cseqOf(req))
	if t.servers.wasFinished("rejected " + key) {
		t.log.Debug("ACK of a non-2xx after its transaction ended dropped", "call_id", callIDOf(req))
		return
	}
	if st := t.servers.invite(key); st != nil {
		if !st.success() {
			// A non-2xx is acknowledged inside its transaction; an ACK that
			// strays here with a new branch has nothing to tell the dialog.
			t.log.Debug("stray ACK of a non-2xx dropped", "transaction_id", st.id)
			return
		}
		st.markAcked()
		id = st.id
	} else {
		id = callcore.NewID("st_")
	}
	t.publish(t.ctx, requestEvent(req, id))
}

// serve publishes a new request and waits for its transaction to be done
// with (see onRequest).
func (t *Hub) serve(req *sip.Request, tx sip.ServerTransaction) {
	st := newServerTx(req, tx)
	t.servers.add(st)
	if !tx.OnTerminate(func(string, error) { t.servers.drop(st) }) {
		t.servers.drop(st)
		return
	}
	if st.invite && !tx.OnCancel(st.onCancel) && tx.Err() == sip.ErrTransactionCanceled {
		// The CANCEL beat this handler: sipgo answered it and sent the 487
		// before the hook was in place. Tell the dialog all the same.
		st.onCancel(cancelOf(req))
	}
	t.publish(t.ctx, requestEvent(req, st.id))

	// Bound the wait for the dialog's answer: a non-INVITE client gives up
	// after Timer F (64·T1), so its 408 goes at half of that, while it
	// still listens; an INVITE's client waits as long as a ring timeout.
	limit := 32 * sip.T1
	if st.invite {
		limit = t.cfg.InviteTimeout
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	final := st.final
	for {
		select {
		case <-final:
			if !st.invite || !st.success() {
				return
			}
			// sipgo keeps the INVITE in the RFC 6026 Accepted state until
			// Timer L; its ACK comes on Acks or, with a new branch, to
			// receiveAck.
			final = nil
			timer.Stop()
		case ack := <-tx.Acks():
			if st.success() && st.markAcked() {
				t.publish(t.ctx, requestEvent(ack, st.id))
			}
			if st.success() {
				return
			}
		case <-st.acked:
			return
		case r := <-st.cancelled:
			// sipgo answered the CANCEL (200) and the INVITE (487).
			t.publish(t.ctx, requestEvent(r, st.id))
			return
		case <-timer.C:
			t.expire(st, limit)
			return
		case <-tx.Done():
			return
		case <-t.ctx.Done():
			return
		}
	}
}

// cancelOf rebuilds the CANCEL of inv (RFC 3261 §9.1), for when sipgo
// consumed the real one before the transport could see it.
func cancelOf(inv *sip.Request) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	for _, h := range inv.Headers() {
		switch h.(type) {
		case *sip.ViaHeader, *sip.FromHeader, *sip.ToHeader, *sip.CallIDHeader, *sip.RouteHeader, *sip.MaxForwardsHeader:
			c.AppendHeader(sip.HeaderClone(h))
		}
	}
	c.AppendHeader(&sip.CSeqHeader{SeqNo: cseqOf(inv), MethodName: sip.CANCEL})
	c.SetBody(nil)
	c.SetTransport(inv.Transport())
	c.SetSource(inv.Source())
	return c
}

// expire answers a request the dialog layer left without a final response.
func (t *Hub) expire(st *serverTx, after time.Duration) {
	res := sip.NewResponseFromRequest(st.req, sip.StatusRequestTimeout, "Request Timeout", nil)
	if err := st.tx.Respond(res); err != nil {
		t.log.Debug("send 408 failed", "transaction_id", st.id, "error", err)
	}
	st.setStatus(sip.StatusRequestTimeout)
	t.publishError(t.ctx, st.id, fmt.Errorf("transaction %s: %s got %w within %v; answered 408",
		st.id, st.req.Method, errNoFinalResponse, after))
}

// sendResponse executes SendSipResponse: the response is built from the
// transaction's request, the event's headers replace same-named ones or
// are added, and Content-Length is set from the body.
func (t *Hub) sendResponse(ctx context.Context, ev *events.SendSipResponse) {
	id := ev.TransactionID
	st := t.servers.get(id)
	if st == nil {
		if t.servers.wasFinished(id) {
			t.log.Debug("response to a finished transaction dropped", "transaction_id", id, "status", ev.StatusCode)
			return
		}
		t.publishError(ctx, id, fmt.Errorf("transaction %s: send %d: %w", id, ev.StatusCode, ErrUnknownTransaction))
		return
	}
	if st.finished() {
		t.log.Debug("response to a finished transaction dropped", "transaction_id", id, "status", ev.StatusCode)
		return
	}
	if ev.StatusCode < 100 || ev.StatusCode > 699 {
		t.publishError(ctx, id, fmt.Errorf("transaction %s: send %d: %w: status code out of range", id, ev.StatusCode, ErrBadMessage))
		return
	}
	hs, err := parseHeaders(ev.Headers)
	if err != nil {
		t.publishError(ctx, id, fmt.Errorf("transaction %s: send %d: %w", id, ev.StatusCode, err))
		return
	}
	reason := ev.ReasonPhrase
	if reason == "" {
		reason = callcore.ReasonPhrase(ev.StatusCode)
	}
	res := sip.NewResponseFromRequest(st.req, ev.StatusCode, reason, nil)
	setHeaders(res, hs, "Via", "Content-Length")
	if ev.Body != "" {
		res.SetBody([]byte(ev.Body))
	}
	if ev.StatusCode >= 200 {
		// Recorded before sending, as on loopback the ACK can beat
		// Respond's return; serve learns of it only after Respond, as
		// sipgo terminates a transaction whose handler returns early.
		st.setStatus(ev.StatusCode)
		defer st.finalSent()
	}
	if err := st.tx.Respond(res); err != nil {
		if st.finished() {
			return // a CANCEL won the race; sipgo sent the 487
		}
		t.publishError(ctx, id, fmt.Errorf("transaction %s: send %d: %w", id, ev.StatusCode, describeSendError(err, res)))
	}
}
