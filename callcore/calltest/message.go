package calltest

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Header is one header field of a SIP message, name and value as on the wire.
type Header struct {
	Name  string
	Value string
}

// Message is a SIP request or response that a peer sent or received, copied
// out of sipgo at that moment so tests can read it freely.
type Message struct {
	// Time is when the peer received or sent the message.
	Time time.Time
	// Method is the request method; for a response, the method of its CSeq.
	Method string
	// RequestURI is the Request-URI of a request; empty for a response.
	RequestURI string
	// Status and Reason are the status line of a response; 0 and "" for a
	// request.
	Status int
	Reason string
	// Headers are every header field, in order.
	Headers []Header
	// Body is the message body.
	Body string
	// Transport is "UDP" or "TCP".
	Transport string
	// Remote is the far end's address: the source of a received message,
	// the destination of a sent one.
	Remote string
	// Raw is the whole message as text.
	Raw string
}

// IsRequest reports whether m is a request.
func (m Message) IsRequest() bool { return m.Status == 0 }

// Get returns the value of the first header called name (case-insensitive;
// compact forms such as "i" for Call-ID match too), or "".
func (m Message) Get(name string) string {
	for _, h := range m.Headers {
		if sameHeader(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// Values returns the values of every header called name, in order.
func (m Message) Values(name string) []string {
	var out []string
	for _, h := range m.Headers {
		if sameHeader(h.Name, name) {
			out = append(out, h.Value)
		}
	}
	return out
}

// CSeq returns the sequence number of the CSeq header, or 0.
func (m Message) CSeq() uint32 {
	num, _, _ := strings.Cut(strings.TrimSpace(m.Get("CSeq")), " ")
	n, _ := strconv.ParseUint(num, 10, 32)
	return uint32(n)
}

// String returns the start line: "INVITE sip:bob@127.0.0.1:5060" or
// "200 OK (INVITE)".
func (m Message) String() string {
	if m.IsRequest() {
		return m.Method + " " + m.RequestURI
	}
	return fmt.Sprintf("%d %s (%s)", m.Status, m.Reason, m.Method)
}

// Match selects messages, e.g. in Call.WaitReceived.
type Match func(Message) bool

// Req matches requests of the given method ("" matches every request).
func Req(method string) Match {
	return func(m Message) bool {
		return m.IsRequest() && (method == "" || strings.EqualFold(m.Method, method))
	}
}

// Resp matches responses with the given status to requests of the given
// method; status 0 matches every status and method "" every method.
func Resp(status int, method string) Match {
	return func(m Message) bool {
		return !m.IsRequest() && (status == 0 || m.Status == status) &&
			(method == "" || strings.EqualFold(m.Method, method))
	}
}

// compact maps the compact header forms of RFC 3261 §7.3.3 and its
// extensions to the full names.
var compact = map[string]string{
	"i": "call-id", "f": "from", "t": "to", "m": "contact", "v": "via",
	"l": "content-length", "c": "content-type", "r": "refer-to",
	"b": "referred-by", "o": "event", "k": "supported", "s": "subject",
	"e": "content-encoding", "u": "allow-events", "x": "session-expires",
}

func canonicalHeader(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if full, ok := compact[n]; ok {
		return full
	}
	return n
}

func sameHeader(a, b string) bool { return canonicalHeader(a) == canonicalHeader(b) }

func copyHeaders(hs []sip.Header) []Header {
	out := make([]Header, 0, len(hs))
	for _, h := range hs {
		out = append(out, Header{Name: h.Name(), Value: h.Value()})
	}
	return out
}

// requestMessage copies a request; remote is its source or destination.
func requestMessage(r *sip.Request, remote string) Message {
	return Message{
		Time:       time.Now(),
		Method:     string(r.Method),
		RequestURI: r.Recipient.String(),
		Headers:    copyHeaders(r.Headers()),
		Body:       string(r.Body()),
		Transport:  r.Transport(),
		Remote:     remote,
		Raw:        r.String(),
	}
}

// responseMessage copies a response; remote is its source or destination.
func responseMessage(r *sip.Response, remote string) Message {
	m := Message{
		Time:      time.Now(),
		Status:    r.StatusCode,
		Reason:    r.Reason,
		Headers:   copyHeaders(r.Headers()),
		Body:      string(r.Body()),
		Transport: r.Transport(),
		Remote:    remote,
		Raw:       r.String(),
	}
	if cs := r.CSeq(); cs != nil {
		m.Method = string(cs.MethodName)
	}
	return m
}
