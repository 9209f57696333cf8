package transport

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore/events"
)

func mustParseRequest(t *testing.T, s string) *sip.Request {
	t.Helper()
	msg, err := sip.ParseMessage([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		t.Fatalf("not a request: %q", s)
	}
	return req
}

func newTestResponse(req *sip.Request) *sip.Response {
	return sip.NewResponseFromRequest(req, 200, "OK", nil)
}

// checkEventHeaders holds for every message the network can hand us: one
// bus header per named sipgo header, in order, and nothing that could inject a
// header line when written back out.
func checkEventHeaders(t *testing.T, got events.Headers, from []sip.Header) {
	t.Helper()
	var named []sip.Header
	for _, h := range from {
		if validHeaderName(h.Name()) {
			named = append(named, h)
		}
	}
	from = named
	if len(got) != len(from) {
		t.Fatalf("%d headers from %d", len(got), len(from))
	}
	for i, h := range got {
		if h.Name == "" || strings.ContainsAny(h.Name, "\r\n:") || strings.ContainsAny(h.Value, "\r\n") {
			t.Fatalf("header %d: %q: %q", i, h.Name, h.Value)
		}
		if !sameHeader(h.Name, from[i].Name()) {
			t.Fatalf("header %d: %q from %q", i, h.Name, from[i].Name())
		}
	}
}

// FuzzSipMessageToEvent feeds raw network bytes through sipgo's parser and
// this package's conversions: a message becomes an event, an event's
// headers go back onto a response as SendSipResponse would put them.
func FuzzSipMessageToEvent(f *testing.F) {
	f.Add([]byte(rawRequest("INVITE sip:b@127.0.0.1 SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1",
		"From: <sip:a@127.0.0.1>;tag=1", "To: <sip:b@127.0.0.1>", "Call-ID: c1", "CSeq: 1 INVITE",
		"Content-Type: application/sdp", "Content-Length: 4") + "v=0\n"))
	f.Add([]byte("SIP/2.0 180 Ringing\r\nv: SIP/2.0/TCP h;branch=z9hG4bK-2\r\nf: <sip:a@h>;tag=1\r\nt: <sip:b@h>;tag=2\r\ni: c2\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n"))
	f.Add([]byte("garbage\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *sip.Request:
			ev := requestEvent(m, "st_fuzz")
			if ev.Method != string(m.Method) || ev.TransactionID != "st_fuzz" || ev.Body != string(m.Body()) {
				t.Fatalf("event %+v from %s", ev, m.StartLine())
			}
			checkEventHeaders(t, ev.Headers, m.Headers())
			if err := validateRequest(m); err != nil {
				_ = badRequest(m, err).String()
				return
			}
			res := newTestResponse(m)
			if hs, err := parseHeaders(ev.Headers); err == nil {
				setHeaders(res, hs, "Via", "Content-Length")
				if n := len(res.GetHeaders("Content-Length")); n > 1 {
					t.Fatalf("%d Content-Length headers", n)
				}
			}
			_ = res.String()
		case *sip.Response:
			ev := responseEvent(m, "ct_fuzz")
			if ev.StatusCode != m.StatusCode || ev.ReasonPhrase != m.Reason {
				t.Fatalf("event %+v from %s", ev, m.StartLine())
			}
			checkEventHeaders(t, ev.Headers, m.Headers())
		}
	})
}
