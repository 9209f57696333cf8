package dialog

import (
	"net/url"
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// This file is the UAC side of the initial INVITE: InitiateCall, the
// responses to our INVITE, ACK of its 2xx (and of every retransmission),
// and CANCEL.

// initiateCall sends the INVITE of a new outgoing call.
func (h *Hub) initiateCall(o *out, e *events.InitiateCall) {
	ref := events.SessionRef{SessionID: e.SessionID}
	fail := func(code int, msg string) {
		o.send(&events.DialogError{SessionRef: ref, Error: msg, ErrorCode: code})
		o.send(&events.CallTerminated{SessionRef: ref, Reason: callcore.EndFailed})
	}
	if h.bySessionID(e.SessionID) != nil {
		o.send(&events.DialogError{SessionRef: ref, Error: "InitiateCall: the session already has a dialog"})
		return
	}
	to, err := targetAddress(e.To)
	if err != nil {
		fail(400, "InitiateCall: bad to: "+err.Error())
		return
	}
	fromValue := e.From
	if strings.TrimSpace(fromValue) == "" {
		fromValue = "sip:" + h.cfg.ContactUser + "@" + uriHost(h.host)
	}
	from, err := targetAddress(fromValue)
	if err != nil {
		fail(400, "InitiateCall: bad from: "+err.Error())
		return
	}
	if strings.TrimSpace(e.SDPOffer) == "" {
		fail(0, "InitiateCall: no SDP offer (late offer is not supported)")
		return
	}
	display := from.display
	if display == "" {
		display = h.cfg.FromDisplay
	}
	// Headers in the target URI become headers of the request (§19.1.5).
	requestURI, uriHeaders := splitURIHeaders(to.uri)
	toHeader := formatAddress(to.display, requestURI)
	localTag := newTag()
	// The session may choose the Call-ID (so its call resource names the
	// dialog from the start); a usable one is taken, else we make one.
	callID := strings.TrimSpace(e.Headers.Get("Call-ID"))
	if callID == "" || strings.ContainsAny(callID, " \t\r\n,") || h.byCallID(callID) != nil {
		callID = callcore.NewID("") + "@" + uriHost(h.host)
	}
	d := &dialog{
		h:            h,
		sessionID:    e.SessionID,
		callID:       callID,
		role:         roleUAC,
		phase:        phaseEarly,
		localTag:     localTag,
		localAddr:    withTag(formatAddress(display, from.uri), localTag),
		remoteAddr:   toHeader,
		localURI:     from.uri,
		remoteTarget: requestURI,
		localSeq:     1,
		lastLocalSDP: e.SDPOffer,
	}
	inv := &clientInvite{tx: newTxID(), cseq: 1, requestURI: requestURI, to: toHeader}
	hs := events.Headers{
		{Name: "From", Value: d.localAddr},
		{Name: "To", Value: toHeader},
		{Name: "Call-ID", Value: d.callID},
		{Name: "CSeq", Value: cseqHeader(1, "INVITE")},
	}
	var extra events.Headers
	for _, hd := range append(uriHeaders, e.Headers...) {
		switch {
		case strings.EqualFold(hd.Name, "Route"):
			// A preloaded route (an outbound proxy): used until the 2xx
			// gives the dialog its route set.
			inv.routes = append(inv.routes, splitList(hd.Value)...)
		case strings.EqualFold(hd.Name, "Call-ID") || strings.EqualFold(hd.Name, "i"):
			// taken above
		case isReservedHeader(hd.Name):
			h.log.Warn("InitiateCall header ignored: the dialog sets it", "session_id", e.SessionID, "header", hd.Name)
		default:
			extra = append(extra, hd)
		}
	}
	for _, r := range inv.routes {
		hs = append(hs, events.Header{Name: "Route", Value: r})
	}
	hs = append(hs,
		events.Header{Name: "Contact", Value: h.contact},
		events.Header{Name: "Allow", Value: allowed},
	)
	if h.cfg.UserAgent != "" {
		hs = append(hs, events.Header{Name: "User-Agent", Value: h.cfg.UserAgent})
	}
	hs = append(hs, extra...)
	hs = append(hs, events.Header{Name: "Content-Type", Value: "application/sdp"})

	d.mu.Lock()
	defer d.mu.Unlock()
	if h.add(d) != nil {
		o.send(&events.DialogError{SessionRef: ref, Error: "InitiateCall: the session already has a dialog"})
		return
	}
	d.invite = inv
	d.txs = map[string]*clientTx{inv.tx: {kind: txInvite, cseq: 1}}
	h.trackTx(inv.tx, d)
	o.send(&events.SendSipMessage{
		Destination:   requestURI,
		Method:        "INVITE",
		Headers:       hs,
		Body:          e.SDPOffer,
		TransactionID: inv.tx,
	})
}

// uriHost brackets an IPv6 host for use in a URI.
func uriHost(host string) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		return "[" + host + "]"
	}
	return host
}

// splitURIHeaders cuts the ?headers off a SIP URI and returns them
// unescaped. Headers that do not unescape are dropped.
func splitURIHeaders(uri string) (string, events.Headers) {
	base, query, ok := strings.Cut(uri, "?")
	if !ok {
		return uri, nil
	}
	var hs events.Headers
	for _, kv := range strings.Split(query, "&") {
		name, value, _ := strings.Cut(kv, "=")
		n, err1 := url.PathUnescape(name)
		v, err2 := url.PathUnescape(value)
		if err1 != nil || err2 != nil || n == "" || strings.EqualFold(n, "body") {
			continue
		}
		hs = append(hs, events.Header{Name: n, Value: v})
	}
	return base, hs
}

// onInviteResponse handles a response to our initial INVITE.
func (d *dialog) onInviteResponse(o *out, r *events.SipResponseReceived) {
	inv := d.invite
	code := r.StatusCode
	switch {
	case code < 200:
		if inv.final {
			return
		}
		inv.provisional = true
		if tag := tagOf(r.Headers.Get("To")); tag != "" && d.remoteTag == "" {
			// An early dialog (§12.1.2).
			d.remoteTag = tag
			d.remoteAddr = strings.TrimSpace(r.Headers.Get("To"))
		}
		if inv.cancelPending {
			if !inv.cancelSent {
				d.sendCancel(o)
			}
			return
		}
		if (code == 180 || code == 183) && !inv.ringing {
			inv.ringing = true
			o.send(&events.CallStateChanged{SessionRef: d.ref(), NewState: string(callcore.StateRinging)})
		}
	case code < 300:
		inv.final = true
		d.remoteTag = tagOf(r.Headers.Get("To"))
		d.remoteAddr = strings.TrimSpace(r.Headers.Get("To"))
		d.refreshTarget(r.Headers)
		d.routes = reversed(recordRoutes(r.Headers))
		d.phase = phaseConfirmed
		d.sendAck(o, inv.cseq)
		if inv.cancelPending {
			// Our CANCEL crossed the answer: the call is up, so end it
			// with a BYE (§9.1).
			d.sendBye(o, callcore.EndCancelled)
			return
		}
		o.send(&events.CallEstablished{SessionRef: d.ref(), SDPAnswer: r.Body})
	default:
		inv.final = true
		if inv.cancelPending {
			d.terminated(o, callcore.EndCancelled)
			return
		}
		d.dialogError(o, code, "INVITE: %d %s", code, r.ReasonPhrase)
		d.terminated(o, callcore.EndReasonForStatus(code))
	}
}

// reack answers a 2xx that arrives after its INVITE transaction ended: a
// retransmission gets the same ACK again; a 2xx from another fork gets an
// ACK and a BYE, since we keep only the first (§13.2.2.4).
func (d *dialog) reack(o *out, r *events.SipResponseReceived, cseq uint32) {
	toTag := tagOf(r.Headers.Get("To"))
	if d.lastAck != nil && cseq == d.lastAckCSeq && toTag == d.remoteTag {
		o.send(d.lastAck)
		return
	}
	if d.invite == nil || cseq != d.invite.cseq || toTag == "" || toTag == d.remoteTag {
		return
	}
	target, err := contactURI(r.Headers)
	if err != nil {
		return
	}
	fork := &dialog{
		h:            d.h,
		callID:       d.callID,
		localAddr:    d.localAddr,
		remoteAddr:   strings.TrimSpace(r.Headers.Get("To")),
		remoteTarget: target,
		routes:       reversed(recordRoutes(r.Headers)),
		localSeq:     d.invite.cseq,
	}
	o.send(fork.ack(cseq))
	bye, _ := fork.request("BYE", false, nil, "")
	bye.TransactionID = newTxID() // nobody waits for its response
	o.send(bye)
}

// sendCancel cancels our pending INVITE. The transport builds the CANCEL
// from the INVITE's transaction (same branch); the headers here say the same.
func (d *dialog) sendCancel(o *out) {
	inv := d.invite
	inv.cancelSent = true
	hs := events.Headers{
		{Name: "From", Value: d.localAddr},
		{Name: "To", Value: inv.to},
		{Name: "Call-ID", Value: d.callID},
		{Name: "CSeq", Value: cseqHeader(inv.cseq, "CANCEL")},
	}
	for _, r := range inv.routes {
		hs = append(hs, events.Header{Name: "Route", Value: r})
	}
	if ua := d.h.cfg.UserAgent; ua != "" {
		hs = append(hs, events.Header{Name: "User-Agent", Value: ua})
	}
	o.send(&events.SendSipMessage{
		Destination:   inv.requestURI,
		Method:        "CANCEL",
		Headers:       hs,
		TransactionID: inv.tx,
	})
}
