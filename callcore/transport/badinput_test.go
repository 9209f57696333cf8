package transport

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore/events"
)

// rawRequest is a request written by hand, so that it can lack what sipgo
// would add. VIA is replaced by the sender's address, TARGET by ours.
func rawRequest(lines ...string) string {
	return strings.Join(lines, "\r\n") + "\r\n\r\n"
}

// TestMalformedRequests sends what a broken or hostile peer sends over a
// real UDP socket: nothing of it is published; what can be answered gets
// a 400.
func TestMalformedRequests(t *testing.T) {
	b := newBus(t)
	rec := record(t, b)
	tr := newTransport(t, b, Config{})
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst, err := net.ResolveUDPAddr("udp", tr.Addr("udp"))
	if err != nil {
		t.Fatal(err)
	}
	me := conn.LocalAddr().String()
	fill := func(s, branch string) string {
		return strings.NewReplacer("VIA", "Via: SIP/2.0/UDP "+me+";branch=z9hG4bK-"+branch, "TARGET", tr.Addr("udp")).Replace(s)
	}
	send := func(msg string) {
		t.Helper()
		if _, err := conn.WriteTo([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
	}
	read := func(what string) string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(waitTotal))
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return string(buf[:n])
	}

	for _, tc := range []struct {
		name   string
		msg    string
		status string // "" when no answer is possible
		why    string
	}{
		{"garbage=text", "hello world\r\n\r\n", "", ""},
		{"garbage=binary", "\x00\x01\xfe\xff INVITE \x00\r\n\r\n", "", ""},
		{"header=broken", rawRequest("OPTIONS sip:callbus@TARGET SIP/2.0", "VIA", "NoColonHere",
			"CSeq: 1 OPTIONS", "Content-Length: 0"), "", ""},
		{"missing=call-id", rawRequest("OPTIONS sip:callbus@TARGET SIP/2.0", "VIA", "From: <sip:x@127.0.0.1>;tag=1",
			"To: <sip:callbus@TARGET>", "CSeq: 1 OPTIONS", "Max-Forwards: 70", "Content-Length: 0"),
			"SIP/2.0 400", "missing Call-ID"},
		{"missing=from", rawRequest("INVITE sip:callbus@TARGET SIP/2.0", "VIA", "Call-ID: bad-2",
			"To: <sip:callbus@TARGET>", "CSeq: 1 INVITE", "Max-Forwards: 70", "Content-Length: 0"),
			"SIP/2.0 400", "missing From"},
		{"missing=cseq", rawRequest("OPTIONS sip:callbus@TARGET SIP/2.0", "VIA", "Call-ID: bad-3",
			"From: <sip:x@127.0.0.1>;tag=1", "To: <sip:callbus@TARGET>", "Content-Length: 0"),
			"SIP/2.0 400", ""},
		{"header=bare-lf", rawRequest("OPTIONS sip:callbus@TARGET SIP/2.0", "VIA", "Call-ID: bad-5",
			"From: <sip:x@127.0.0.1>;tag=1", "To: <sip:callbus@TARGET>", "CSeq: 1 OPTIONS",
			"X-Evil: a\nRoute: <sip:evil>", "Content-Length: 0"),
			"SIP/2.0 400", "bare line break"},
		{"cseq=other-method", rawRequest("BYE sip:callbus@TARGET SIP/2.0", "VIA", "Call-ID: bad-4",
			"From: <sip:x@127.0.0.1>;tag=1", "To: <sip:callbus@TARGET>", "CSeq: 1 INVITE", "Content-Length: 0"),
			"SIP/2.0 400", "CSeq method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			send(fill(tc.msg, strings.ReplaceAll(tc.name, "=", "-")))
			if tc.status == "" {
				return
			}
			res := read(tc.name)
			if !strings.HasPrefix(res, tc.status) || !strings.Contains(res, tc.why) {
				t.Errorf("answer:\n%s\nwant %s mentioning %q", res, tc.status, tc.why)
			}
		})
	}

	// A good request after the bad ones: it is the only thing published.
	send(fill(rawRequest("OPTIONS sip:callbus@TARGET SIP/2.0", "VIA", "Call-ID: good-1",
		"From: <sip:x@127.0.0.1>;tag=1", "To: <sip:callbus@TARGET>", "CSeq: 1 OPTIONS", "Max-Forwards: 70",
		"Content-Length: 0"), "good"))
	waitEvent(t, rec, "OPTIONS", func(e *events.SipMessageReceived) bool { return e.Method == "OPTIONS" })
	if evs := rec.Events(); len(evs) != 1 {
		t.Errorf("published %s, want only the good OPTIONS", describe(evs))
	}
}

func TestResponseToUnknownTransaction(t *testing.T) {
	b := newBus(t)
	rec := record(t, b)
	newTransport(t, b, Config{})
	for _, tc := range []struct {
		name string
		ev   *events.SendSipResponse
		want string
	}{
		{"id=unknown", &events.SendSipResponse{TransactionID: "st_nope", StatusCode: 200}, "unknown or terminated transaction"},
		{"id=empty", &events.SendSipResponse{StatusCode: 486, Headers: events.Headers{hdr("Call-ID", "x")}}, "unknown or terminated transaction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			publish(t, b, tc.ev)
			e := waitEvent(t, rec, "TransportError", func(e *events.TransportError) bool {
				return e.TransactionID == tc.ev.TransactionID
			})
			if !strings.Contains(e.Error, tc.want) || e.ErrorCode != events.TransportErrUnknownTransaction {
				t.Errorf("error %q (%s), want %q (unknown_transaction)", e.Error, e.ErrorCode, tc.want)
			}
		})
	}
}

// TestHeaderEditing checks how event headers land on a response: replace
// the same-named header (any spelling, compact form included), add the
// others, keep the transport's Via and Content-Length.
func TestHeaderEditing(t *testing.T) {
	req := mustParseRequest(t, rawRequest("INVITE sip:b@127.0.0.1 SIP/2.0",
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1", "From: <sip:a@127.0.0.1>;tag=1",
		"To: <sip:b@127.0.0.1>", "Call-ID: c1", "CSeq: 1 INVITE", "Record-Route: <sip:p1;lr>",
		"Record-Route: <sip:p2;lr>", "Content-Length: 0"))
	hs, err := parseHeaders(events.Headers{hdr("t", "<sip:b@127.0.0.1>;tag=9"), hdr("record-route", "<sip:p3;lr>"),
		hdr("Via", "SIP/2.0/UDP 6.6.6.6;branch=z9hG4bK-evil"), hdr("Content-Length", "99"), hdr("X-New", "1")})
	if err != nil {
		t.Fatal(err)
	}
	res := newTestResponse(req)
	setHeaders(res, hs, "Via", "Content-Length")
	got := eventHeaders(res.Headers())
	if v := got.Values("To"); len(v) != 1 || v[0] != "<sip:b@127.0.0.1>;tag=9" {
		t.Errorf("To = %v", v)
	}
	if v := got.Values("Record-Route"); len(v) != 1 || v[0] != "<sip:p3;lr>" {
		t.Errorf("Record-Route = %v", v)
	}
	if v := got.Values("Via"); len(v) != 1 || !strings.Contains(v[0], "5070") {
		t.Errorf("Via = %v", v)
	}
	if got.Get("X-New") != "1" || got.Get("Content-Length") != "0" {
		t.Errorf("X-New %q Content-Length %q", got.Get("X-New"), got.Get("Content-Length"))
	}
	// The one To was replaced where it stood: before Call-ID.
	toAt, callIDAt := -1, -1
	for i, h := range got {
		switch h.Name {
		case "To":
			toAt = i
		case "Call-ID":
			callIDAt = i
		}
	}
	if toAt < 0 || toAt > callIDAt {
		t.Errorf("To moved: %v", got)
	}
	for _, bad := range []events.Header{hdr("Bad Name", "x"), hdr("", "x"), hdr("X", "a\nb"), hdr("CSeq", "abc")} {
		if _, err := parseHeaders(events.Headers{bad}); err == nil {
			t.Errorf("parseHeaders(%q: %q) accepted", bad.Name, bad.Value)
		}
	}
}
