package dialog

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// role says which side of the initial INVITE we were.
type role int

const (
	roleUAS role = iota // the far end called us
	roleUAC             // we called the far end
)

// phase is where a dialog stands.
type phase int

const (
	phaseEarly       phase = iota // INVITE pending: unanswered (UAS) or no final response yet (UAC)
	phaseAccepted                 // UAS: our 2xx sent, its ACK not yet here
	phaseConfirmed                // established
	phaseTerminating              // our BYE sent, its response not yet here
	phaseEnded                    // forgotten; late events are ignored
)

// txKind is what a client transaction of ours is for.
type txKind int

const (
	txBye txKind = iota
	txRefer
	txNotify
	txInfo
	txReinvite
	txInvite
)

// clientTx is a pending request we sent within a dialog.
type clientTx struct {
	kind txKind
	cseq uint32
}

// dialog is one call's RFC 3261 dialog, early or confirmed. Every field is
// guarded by mu.
type dialog struct {
	mu        sync.Mutex
	h         *Hub
	sessionID string
	callID    string
	role      role
	phase     phase

	localTag, remoteTag string
	// localAddr and remoteAddr are the From and To of the requests we send
	// in this dialog, tags included once known.
	localAddr, remoteAddr string
	localURI              string // our URI (for Referred-By)
	remoteTarget          string // the far end's Contact URI: the Request-URI of our requests
	routes                []string
	localSeq              uint32
	remoteSeq             uint32
	remoteSeqSet          bool

	// serverTx is the server transaction of the INVITE (initial or re-)
	// we answer; ok is our 2xx to it while we wait for its ACK.
	serverTx   string
	serverCSeq uint32
	ok         *pendingOK
	// byeAfterAck holds the reason of a TerminateSession that came while
	// our 2xx awaited its ACK: BYE may only follow the ACK (§15).
	byeAfterAck callcore.EndReason

	invite    *clientInvite      // UAC: our initial INVITE
	byeReason callcore.EndReason // the reason reported when our BYE completes

	lastLocalSDP string
	// lastAck is the ACK of our newest 2xx-answered INVITE, re-sent for
	// every retransmission of that 2xx (sipgo issue #120).
	lastAck     *events.SendSipMessage
	lastAckCSeq uint32

	reOut *reinviteOut // our pending re-INVITE
	reIn  *reinviteIn  // their re-INVITE, waiting for the session's answer

	referOut *referOut // our REFER and its implicit subscription
	referIn  *referIn  // their REFER that we are reporting on

	dtmfQueue []byte // tones waiting for the INFO in flight to complete
	dtmfTx    string

	txs map[string]*clientTx
}

// clientInvite is our initial INVITE (UAC).
type clientInvite struct {
	tx            string
	cseq          uint32
	requestURI    string
	to            string   // the INVITE's To, without a tag, for the CANCEL
	routes        []string // preloaded Route headers, reused by the CANCEL
	provisional   bool     // a 1xx arrived: a CANCEL may be sent (§9.1)
	ringing       bool     // CallStateChanged ringing was published
	final         bool
	cancelPending bool // TerminateSession came before the answer
	cancelSent    bool
}

func (d *dialog) logf(msg string, args ...any) {
	d.h.log.Debug(msg, append([]any{"session_id", d.sessionID, "call_id", d.callID}, args...)...)
}

// cseqHeader formats a CSeq header value.
func cseqHeader(n uint32, method string) string {
	return strconv.FormatUint(uint64(n), 10) + " " + method
}

// newTxID returns the id of a client transaction we start.
func newTxID() string { return callcore.NewID("ct_") }

// newTag returns a fresh dialog tag.
func newTag() string { return callcore.NewID("") }

// request builds a request within the dialog (§12.2.1.1): From, To and
// Call-ID of the dialog, the next local CSeq, the route set, and extra
// headers. It returns the event and the CSeq number it used.
func (d *dialog) request(method string, contact bool, extra events.Headers, body string) (*events.SendSipMessage, uint32) {
	d.localSeq++
	hs := make(events.Headers, 0, 8+len(d.routes)+len(extra))
	hs = append(hs,
		events.Header{Name: "From", Value: d.localAddr},
		events.Header{Name: "To", Value: d.remoteAddr},
		events.Header{Name: "Call-ID", Value: d.callID},
		events.Header{Name: "CSeq", Value: cseqHeader(d.localSeq, method)},
	)
	for _, r := range d.routes {
		hs = append(hs, events.Header{Name: "Route", Value: r})
	}
	if contact {
		hs = append(hs, events.Header{Name: "Contact", Value: d.h.contact})
	}
	if ua := d.h.cfg.UserAgent; ua != "" {
		hs = append(hs, events.Header{Name: "User-Agent", Value: ua})
	}
	hs = append(hs, extra...)
	return &events.SendSipMessage{
		Destination: d.remoteTarget,
		Method:      method,
		Headers:     hs,
		Body:        body,
	}, d.localSeq
}

// startTx sends req as a new client transaction of kind and tracks it.
func (d *dialog) startTx(o *out, req *events.SendSipMessage, kind txKind, cseq uint32) string {
	tx := newTxID()
	req.TransactionID = tx
	if d.txs == nil {
		d.txs = make(map[string]*clientTx)
	}
	d.txs[tx] = &clientTx{kind: kind, cseq: cseq}
	d.h.trackTx(tx, d)
	o.send(req)
	return tx
}

// endTx forgets a completed client transaction.
func (d *dialog) endTx(tx string) {
	delete(d.txs, tx)
	d.h.untrackTx(tx)
}

// ack builds the ACK of a 2xx to our INVITE with CSeq number cseq (§13.2.2.4):
// a request of its own, sent without a transaction.
func (d *dialog) ack(cseq uint32) *events.SendSipMessage {
	hs := make(events.Headers, 0, 5+len(d.routes))
	hs = append(hs,
		events.Header{Name: "From", Value: d.localAddr},
		events.Header{Name: "To", Value: d.remoteAddr},
		events.Header{Name: "Call-ID", Value: d.callID},
		events.Header{Name: "CSeq", Value: cseqHeader(cseq, "ACK")},
	)
	for _, r := range d.routes {
		hs = append(hs, events.Header{Name: "Route", Value: r})
	}
	if ua := d.h.cfg.UserAgent; ua != "" {
		hs = append(hs, events.Header{Name: "User-Agent", Value: ua})
	}
	return &events.SendSipMessage{Destination: d.remoteTarget, Method: "ACK", Headers: hs}
}

// sendAck sends and remembers the ACK of the 2xx with CSeq number cseq.
func (d *dialog) sendAck(o *out, cseq uint32) {
	a := d.ack(cseq)
	d.lastAck, d.lastAckCSeq = a, cseq
	o.send(a)
}

// response builds a response for server transaction tx of this dialog.
func (d *dialog) response(tx string, code int, extra events.Headers, body string) *events.SendSipResponse {
	return d.h.response(tx, d.callID, code, extra, body)
}

// response builds a SendSipResponse. Call-ID is repeated so the event is
// keyed by it, like the rest of the call's SIP traffic.
func (h *Hub) response(tx, callID string, code int, extra events.Headers, body string) *events.SendSipResponse {
	hs := make(events.Headers, 0, 2+len(extra))
	if callID != "" {
		hs = append(hs, events.Header{Name: "Call-ID", Value: callID})
	}
	hs = append(hs, extra...)
	if h.cfg.UserAgent != "" {
		hs = append(hs, events.Header{Name: "Server", Value: h.cfg.UserAgent})
	}
	return &events.SendSipResponse{
		TransactionID: tx,
		StatusCode:    code,
		ReasonPhrase:  callcore.ReasonPhrase(code),
		Headers:       hs,
		Body:          body,
	}
}

// respond answers a received request outside any dialog state.
func (o *out) respond(m *events.SipMessageReceived, code int, extra ...events.Header) {
	o.send(o.h.response(m.TransactionID, m.Headers.Get("Call-ID"), code, extra, ""))
}

// terminated publishes CallTerminated and forgets the dialog.
func (d *dialog) terminated(o *out, reason callcore.EndReason) {
	o.send(&events.CallTerminated{SessionRef: d.ref(), Reason: reason})
	d.h.remove(d)
}

// dialogError publishes DialogError; code is a SIP status or 0.
func (d *dialog) dialogError(o *out, code int, format string, args ...any) {
	o.send(&events.DialogError{SessionRef: d.ref(), Error: fmt.Sprintf(format, args...), ErrorCode: code})
}

func (d *dialog) ref() events.SessionRef { return events.SessionRef{SessionID: d.sessionID} }

// checkRemoteCSeq applies §12.2.2: a request with a CSeq lower than (or
// equal to) the last one is out of order. It records the new CSeq and
// reports whether the request may proceed.
func (d *dialog) checkRemoteCSeq(cseq uint32) bool {
	if d.remoteSeqSet && cseq <= d.remoteSeq {
		return false
	}
	d.remoteSeq, d.remoteSeqSet = cseq, true
	return true
}

// refreshTarget takes a Contact from a target refresh request or response.
func (d *dialog) refreshTarget(hs events.Headers) {
	if u, err := contactURI(hs); err == nil && u != "" {
		d.remoteTarget = u
	}
}
