package transport

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore/events"
)

// canonicalNames spells the headers callbus meets the way RFC 3261 and its
// extensions do, so that the dialog layer sees "Call-ID" and "User-Agent"
// whatever case the peer sent. Compact forms map to the long name.
var canonicalNames = func() map[string]string {
	m := make(map[string]string)
	for _, n := range []string{
		"Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language",
		"Alert-Info", "Allow", "Allow-Events", "Authentication-Info",
		"Authorization", "Call-ID", "Call-Info", "Contact",
		"Content-Disposition", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Type", "CSeq", "Date", "Error-Info",
		"Event", "Expires", "From", "In-Reply-To", "Max-Forwards",
		"Min-Expires", "Min-SE", "MIME-Version", "Organization",
		"P-Asserted-Identity", "P-Preferred-Identity", "Path", "Priority",
		"Privacy", "Proxy-Authenticate", "Proxy-Authorization",
		"Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-To",
		"Referred-By", "Remote-Party-ID", "Replaces", "Reply-To", "Require",
		"Retry-After", "Route", "RSeq", "Server", "Session-Expires",
		"Subject", "Subscription-State", "Supported", "Timestamp", "To",
		"Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
	} {
		m[strings.ToLower(n)] = n
		m[n] = n // the canonical spelling finds itself without ToLower
	}
	for short, long := range map[string]string{
		"a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type",
		"e": "Content-Encoding", "f": "From", "i": "Call-ID", "k": "Supported",
		"l": "Content-Length", "m": "Contact", "o": "Event", "r": "Refer-To",
		"s": "Subject", "t": "To", "u": "Allow-Events", "v": "Via",
		"x": "Session-Expires",
	} {
		m[short] = long
	}
	return m
}()

// canonicalName returns the canonical spelling of a header name, or name
// itself for a header callbus does not know (X-… headers keep their case).
func canonicalName(name string) string {
	if c, ok := canonicalNames[name]; ok && c == name {
		return c // already canonical: the common case, and no allocation
	}
	if c, ok := canonicalNames[strings.ToLower(name)]; ok {
		return c
	}
	return name
}

// sameHeader reports whether two header names name the same header.
func sameHeader(a, b string) bool {
	return strings.EqualFold(canonicalName(a), canonicalName(b))
}

// eventHeaders converts sipgo headers to the bus form, in wire order. A
// header line with several comma-separated values (Via, Contact, Route)
// arrives from sipgo as one header per value, and stays so. sipgo keeps a
// line such as ": x" as a header without a name; it is left out, and a
// bare CR or LF in a value becomes a space (requests holding either are
// refused, see validateRequest).
func eventHeaders(hs []sip.Header) events.Headers {
	out := make(events.Headers, 0, len(hs))
	for _, h := range hs {
		if !validHeaderName(h.Name()) {
			continue
		}
		v := h.Value()
		if strings.ContainsAny(v, "\r\n") {
			// sipgo splits lines on CRLF only: a bare LF stays in the
			// value, where it could forge a header line downstream.
			v = lineBreaks.Replace(v)
		}
		out = append(out, events.Header{Name: canonicalName(h.Name()), Value: v})
	}
	return out
}

var lineBreaks = strings.NewReplacer("\r", " ", "\n", " ")

// requestEvent converts a received request into the SipMessageReceived the
// dialog layer reads.
func requestEvent(req *sip.Request, txID string) *events.SipMessageReceived {
	return &events.SipMessageReceived{
		Source:        req.Source(),
		Method:        string(req.Method),
		Headers:       eventHeaders(req.Headers()),
		Body:          string(req.Body()),
		TransactionID: txID,
		RequestURI:    req.Recipient.String(),
		Transport:     strings.ToLower(req.Transport()),
	}
}

// responseEvent converts a response to a client transaction.
func responseEvent(res *sip.Response, txID string) *events.SipResponseReceived {
	return &events.SipResponseReceived{
		TransactionID: txID,
		StatusCode:    res.StatusCode,
		ReasonPhrase:  res.Reason,
		Headers:       eventHeaders(res.Headers()),
		Body:          string(res.Body()),
	}
}

// headerParser parses header lines with sipgo's own parsers, so that From,
// To, CSeq, Contact, Route… become the typed headers sipgo's transactions
// rely on.
var headerParser = sip.HeadersParser(sip.DefaultHeadersParser())

// validHeaderName reports whether name is an RFC 3261 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-.!%*_+`'~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// parseHeaders converts bus headers to sipgo headers. It refuses a name that
// is not a token and a value holding CR or LF (header injection), and
// returns an error wrapping ErrBadMessage naming the header sipgo could not
// parse.
func parseHeaders(hs events.Headers) ([]sip.Header, error) {
	out := make([]sip.Header, 0, len(hs))
	var line []byte
	for _, h := range hs {
		if !validHeaderName(h.Name) {
			return nil, fmt.Errorf("%w: header name %q", ErrBadMessage, h.Name)
		}
		if strings.ContainsAny(h.Value, "\r\n") {
			return nil, fmt.Errorf("%w: header %s: value holds a line break", ErrBadMessage, h.Name)
		}
		line = append(line[:0], canonicalName(h.Name)...)
		line = append(line, ": "...)
		line = append(line, h.Value...)
		var err error
		if out, err = headerParser.ParseHeader(out, line); err != nil {
			return nil, fmt.Errorf("%w: header %s: %v", ErrBadMessage, h.Name, err)
		}
	}
	return out, nil
}

// headerSet is what requests and responses share for editing headers.
type headerSet interface {
	Headers() []sip.Header
	RemoveHeader(name string) bool
	AppendHeader(h sip.Header)
	ReplaceHeader(h sip.Header)
}

// setHeaders applies hs to msg: the first header of each name replaces
// every header of that name msg has, the others of that name are added
// after it. Names in skip (canonical) are ignored: the transport owns them.
func setHeaders(msg headerSet, hs []sip.Header, skip ...string) {
	replaced := make(map[string]bool, len(hs))
next:
	for _, h := range hs {
		name := canonicalName(h.Name())
		for _, s := range skip {
			if name == s {
				continue next
			}
		}
		if !replaced[name] {
			replaced[name] = true
			if replaceInPlace(msg, h) {
				continue
			}
			removeHeaders(msg, name)
		}
		msg.AppendHeader(h)
	}
}

// replaceInPlace swaps h for the one header of its name msg has, keeping
// its position; it reports false when msg has none or several.
func replaceInPlace(msg headerSet, h sip.Header) bool {
	n, exact := 0, false
	for _, old := range msg.Headers() {
		if sameHeader(old.Name(), h.Name()) {
			n++
			exact = old.Name() == h.Name()
		}
	}
	if n != 1 || !exact {
		return false
	}
	msg.ReplaceHeader(h)
	return true
}

// removeHeaders removes every header called name, in any spelling.
func removeHeaders(msg headerSet, name string) {
	for {
		found := ""
		for _, h := range msg.Headers() {
			if sameHeader(h.Name(), name) {
				found = h.Name()
				break
			}
		}
		if found == "" || !msg.RemoveHeader(found) {
			return
		}
	}
}

// validateRequest checks what the dialog layer relies on and sipgo does not
// check before creating a transaction: a Call-ID, a From and a To, and a
// CSeq naming the request's method. It returns the reason to put in the
// 400's Warning header.
func validateRequest(req *sip.Request) error {
	switch {
	case req.CallID() == nil || req.CallID().Value() == "":
		return fmt.Errorf("missing Call-ID")
	case req.From() == nil:
		return fmt.Errorf("missing From")
	case req.To() == nil:
		return fmt.Errorf("missing To")
	case req.CSeq() == nil:
		return fmt.Errorf("missing CSeq")
	case req.CSeq().MethodName != req.Method:
		return fmt.Errorf("CSeq method %s does not match %s", req.CSeq().MethodName, req.Method)
	}
	for _, h := range req.Headers() {
		if !validHeaderName(h.Name()) {
			return fmt.Errorf("malformed header name %q", h.Name())
		}
		if strings.ContainsAny(h.Value(), "\r\n") {
			return fmt.Errorf("header %s holds a bare line break", h.Name())
		}
	}
	return nil
}

// badRequest builds the 400 for a request validateRequest refused.
func badRequest(req *sip.Request, why error) *sip.Response {
	res := sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request", nil)
	res.AppendHeader(sip.NewHeader("Warning", `399 callbus "`+strings.ReplaceAll(why.Error(), `"`, "'")+`"`))
	return res
}

// callIDOf returns msg's Call-ID, or "".
func callIDOf(msg sip.Message) string {
	if h := msg.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

// cseqOf returns msg's CSeq number, or 0.
func cseqOf(msg sip.Message) uint32 {
	if h := msg.CSeq(); h != nil {
		return h.SeqNo
	}
	return 0
}

// inviteKey identifies an INVITE transaction by dialog position, to pair
// an ACK that arrives in a transaction of its own (the ACK of a 2xx has a
// new branch) with the INVITE it acknowledges.
func inviteKey(callID string, cseq uint32) string {
	return callID + " " + strconv.FormatUint(uint64(cseq), 10)
}
