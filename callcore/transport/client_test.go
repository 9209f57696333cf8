package transport

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// phone is a sipgo peer that answers INVITEs as its X-Mode header says:
// "answer" (200 with SDP), "ring-answer" (180, then 200 once the test
// closes proceed: sipgo hands each response to its transaction on a
// goroutine of its own, so a 180 sent just before a 200 may arrive after
// it and be dropped), "ring" (180, then waits), "hold" (waits for proceed,
// then 100, then waits).
type phone struct {
	*peer
	invites chan *sip.Request
	acks    chan *sip.Request
	cancels chan *sip.Request
	proceed chan struct{}
	early   atomic.Int32 // CANCELs that arrived before any provisional response
}

func newPhone(t *testing.T) *phone {
	ph := &phone{
		invites: make(chan *sip.Request, 16),
		acks:    make(chan *sip.Request, 16),
		cancels: make(chan *sip.Request, 16),
		proceed: make(chan struct{}),
	}
	ph.peer = newPeer(t, func(srv *sipgo.Server) {
		srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
			ph.invites <- req
			mode := ""
			if h := req.GetHeader("X-Mode"); h != nil {
				mode = h.Value()
			}
			var provisional atomic.Bool
			tx.OnCancel(func(r *sip.Request) {
				if !provisional.Load() {
					ph.early.Add(1)
				}
				ph.cancels <- r
			})
			respond := func(code int, reason string, body string) {
				var res *sip.Response
				if body != "" {
					res = sip.NewSDPResponseFromRequest(req, []byte(body))
				} else {
					res = sip.NewResponseFromRequest(req, code, reason, nil)
				}
				if code != 100 {
					res.To().Params.Add("tag", "peer1")
				}
				if code >= 200 {
					res.AppendHeader(sip.NewHeader("Contact", "<sip:peer@127.0.0.1>"))
				}
				provisional.Store(true)
				_ = tx.Respond(res)
			}
			switch mode {
			case "answer":
				respond(200, "OK", testSDP)
				return
			case "ring-answer":
				respond(180, "Ringing", "")
				select {
				case <-ph.proceed:
					respond(200, "OK", testSDP)
				case <-tx.Done():
				}
				return
			case "ring":
				respond(180, "Ringing", "")
			case "hold":
				select {
				case <-ph.proceed:
					respond(100, "Trying", "")
				case <-tx.Done():
				}
			}
			<-tx.Done()
		})
		srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { ph.acks <- req })
		srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
	})
	return ph
}

// dialogHeaders are the headers the dialog layer puts on a request.
func dialogHeaders(callID, method string, cseq string, extra ...events.Header) events.Headers {
	hs := events.Headers{
		hdr("From", "<sip:callbus@127.0.0.1>;tag=dlgfrom"),
		hdr("To", "<sip:peer@127.0.0.1>"),
		hdr("Call-ID", callID),
		hdr("CSeq", cseq+" "+method),
	}
	return append(hs, extra...)
}

func TestOutgoingCall(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run("transport="+network, func(t *testing.T) {
			b := newBus(t)
			rec := record(t, b)
			tr := newTransport(t, b, Config{})
			ph := newPhone(t)
			dest := sipURI("peer", ph.addr(network), network)
			callID := "out-" + network

			publish(t, b, &events.SendSipMessage{Destination: dest, Method: "INVITE", TransactionID: "ct_1",
				Headers: dialogHeaders(callID, "INVITE", "1", hdr("Contact", "<sip:callbus@"+tr.Addr(network)+">"),
					hdr("Content-Type", "application/sdp"), hdr("X-Mode", "ring-answer")),
				Body: testSDP})
			inv := recv(t, ph.invites, "INVITE at the peer")
			via := inv.Via()
			switch {
			case via == nil || via.Host+":"+strconv.Itoa(via.Port) != tr.AdvertisedAddr(network):
				t.Errorf("Via %v, want sent-by %s", via, tr.AdvertisedAddr(network))
			case !strings.HasPrefix(via.Params.GetOr("branch", ""), sip.RFC3261BranchMagicCookie):
				t.Errorf("Via branch %q", via.Params.GetOr("branch", ""))
			case !strings.EqualFold(via.Transport, network):
				t.Errorf("Via transport %q, want %s", via.Transport, network)
			case inv.MaxForwards() == nil || inv.MaxForwards().Val() != 70:
				t.Errorf("Max-Forwards %v", inv.MaxForwards())
			case inv.GetHeader("User-Agent") == nil || inv.GetHeader("User-Agent").Value() != "callbus":
				t.Errorf("User-Agent %v", inv.GetHeader("User-Agent"))
			case string(inv.Body()) != testSDP || int(*inv.ContentLength()) != len(testSDP):
				t.Errorf("body %q Content-Length %v", inv.Body(), inv.ContentLength())
			case inv.CallID().Value() != callID || inv.From().Params.GetOr("tag", "") != "dlgfrom":
				t.Errorf("Call-ID %q From %q", inv.CallID().Value(), inv.From().Value())
			case inv.Recipient.String() != dest:
				t.Errorf("Request-URI %q, want %q", inv.Recipient.String(), dest)
			}
			if network == "udp" && inv.Source() != tr.Addr("udp") {
				t.Errorf("UDP request came from %s, want the listener %s", inv.Source(), tr.Addr("udp"))
			}

			ringing := waitEvent(t, rec, "180", func(e *events.SipResponseReceived) bool { return e.StatusCode == 180 })
			close(ph.proceed)
			ok := waitEvent(t, rec, "200", func(e *events.SipResponseReceived) bool { return e.StatusCode == 200 })
			for _, e := range []*events.SipResponseReceived{ringing, ok} {
				if e.TransactionID != "ct_1" || e.Key() != callID || !strings.Contains(e.Headers.Get("To"), "tag=peer1") {
					t.Errorf("%d: transaction_id %q key %q To %q", e.StatusCode, e.TransactionID, e.Key(), e.Headers.Get("To"))
				}
			}
			if ok.Body != testSDP || ok.ReasonPhrase != "OK" || ok.Headers.Get("Content-Type") != "application/sdp" {
				t.Errorf("200: reason %q body %q headers %v", ok.ReasonPhrase, ok.Body, ok.Headers)
			}

			publish(t, b, &events.SendSipMessage{Destination: dest, Method: "ACK",
				Headers: events.Headers{hdr("From", "<sip:callbus@127.0.0.1>;tag=dlgfrom"), hdr("To", ok.Headers.Get("To")),
					hdr("Call-ID", callID), hdr("CSeq", "1 ACK")}})
			ack := recv(t, ph.acks, "ACK at the peer")
			if ack.CSeq().MethodName != sip.ACK || ack.Via().Params.GetOr("branch", "") == via.Params.GetOr("branch", "") {
				t.Errorf("ACK CSeq %v, branch %q (INVITE's %q)", ack.CSeq(), ack.Via().Params.GetOr("branch", ""), via.Params.GetOr("branch", ""))
			}
			if errs := matching[*events.TransportError](rec, nil); len(errs) > 0 {
				t.Errorf("unexpected transport errors: %s", describe(rec.Events()))
			}
		})
	}
}

// TestOutgoingCancel: CANCEL of a pending INVITE, both after a 180 and
// before any provisional response: the CANCEL then waits for one (RFC 3261
// §9.1), which the peer sends only once the CANCEL was asked for.
func TestOutgoingCancel(t *testing.T) {
	for _, tc := range []struct{ network, mode string }{
		{"udp", "ring"}, {"tcp", "ring"}, {"udp", "hold"}, {"tcp", "hold"},
	} {
		t.Run("transport="+tc.network+"/peer="+tc.mode, func(t *testing.T) {
			b := newBus(t)
			rec := record(t, b)
			tr := newTransport(t, b, Config{})
			ph := newPhone(t)
			callID := "cancel-" + tc.network + tc.mode
			publish(t, b, &events.SendSipMessage{Destination: sipURI("peer", ph.addr(tc.network), tc.network),
				Method: "INVITE", TransactionID: "ct_2",
				Headers: dialogHeaders(callID, "INVITE", "1", hdr("X-Mode", tc.mode), hdr("Content-Type", "application/sdp")),
				Body:    testSDP})
			inv := recv(t, ph.invites, "INVITE at the peer")
			if tc.mode == "ring" {
				waitEvent(t, rec, "180", func(e *events.SipResponseReceived) bool { return e.StatusCode == 180 })
			}
			publish(t, b, &events.SendSipMessage{Method: "CANCEL", TransactionID: "ct_2",
				Headers: events.Headers{hdr("Call-ID", callID)}})
			if tc.mode == "hold" {
				// Once the CANCEL was handed to the INVITE's reader, let the
				// peer send its 100.
				bustest.CheckFor(t, waitTotal, func() error {
					tr.lanes.mu.Lock()
					_, busy := tr.lanes.lanes[callID]
					tr.lanes.mu.Unlock()
					ct := tr.clientT.get("ct_2")
					if busy || ct == nil || len(ct.cancel) > 0 {
						return fmt.Errorf("CANCEL not yet taken by the reader")
					}
					return nil
				})
				close(ph.proceed)
			}
			c := recv(t, ph.cancels, "CANCEL at the peer")
			if c.Via().Params.GetOr("branch", "") != inv.Via().Params.GetOr("branch", "") || c.CSeq().SeqNo != 1 {
				t.Errorf("CANCEL Via %v CSeq %v, want the INVITE's branch and CSeq 1", c.Via(), c.CSeq())
			}
			if n := ph.early.Load(); n > 0 {
				t.Errorf("%d CANCEL arrived before any provisional response", n)
			}
			final := waitEvent(t, rec, "487", func(e *events.SipResponseReceived) bool { return e.StatusCode >= 200 })
			if final.StatusCode != 487 || final.TransactionID != "ct_2" {
				t.Errorf("INVITE ended with %d (%s), want 487", final.StatusCode, final.TransactionID)
			}
			if errs := matching[*events.TransportError](rec, nil); len(errs) > 0 {
				t.Errorf("unexpected transport errors: %s", describe(rec.Events()))
			}
		})
	}
}

// TestOutgoingRoute: the next hop is the first Route, not the Request-URI,
// and ;transport=tcp on it picks TCP.
func TestOutgoingRoute(t *testing.T) {
	b := newBus(t)
	rec := record(t, b)
	newTransport(t, b, Config{})
	ph := newPhone(t)
	publish(t, b, &events.SendSipMessage{Destination: "sip:peer@nowhere.invalid", Method: "INVITE", TransactionID: "ct_r",
		Headers: dialogHeaders("route-1", "INVITE", "1", hdr("Route", "<sip:"+ph.tcp+";transport=tcp;lr>"),
			hdr("X-Mode", "answer"))})
	inv := recv(t, ph.invites, "INVITE at the peer")
	if inv.Transport() != "TCP" || inv.Recipient.Host != "nowhere.invalid" {
		t.Errorf("INVITE over %s to %s", inv.Transport(), inv.Recipient.String())
	}
	waitEvent(t, rec, "200", func(e *events.SipResponseReceived) bool { return e.StatusCode == 200 && e.TransactionID == "ct_r" })
}

// TestOutgoingFailures: every way a send can fail ends in a TransportError
// naming the transaction.
func TestOutgoingFailures(t *testing.T) {
	b := newBus(t)
	rec := record(t, b)
	newTransport(t, b, Config{})
	ph := newPhone(t)
	big := strings.Repeat("a=x-padding:0123456789abcdef0123456789abcdef\r\n", 40) // ~1.9 KB

	for _, tc := range []struct {
		name string
		ev   *events.SendSipMessage
		want []string
		code events.TransportErrorCode
	}{
		{"dead=udp", &events.SendSipMessage{Destination: "sip:x@" + deadAddr(t, "udp"), Method: "OPTIONS",
			Headers: dialogHeaders("f1", "OPTIONS", "1")}, []string{"timeout"}, events.TransportErrTimeout},
		{"dead=tcp", &events.SendSipMessage{Destination: "sip:x@" + deadAddr(t, "tcp") + ";transport=tcp", Method: "INVITE",
			Headers: dialogHeaders("f2", "INVITE", "1")}, []string{"refused"}, events.TransportErrSendFailed},
		{"size=over-udp", &events.SendSipMessage{Destination: "sip:peer@" + ph.udp, Method: "INVITE",
			Headers: dialogHeaders("f3", "INVITE", "1", hdr("Content-Type", "application/sdp")), Body: testSDP + big},
			[]string{"bytes", "UDP", "TCP", "transport=tcp"}, events.TransportErrTooLarge},
		{"transport=tls", &events.SendSipMessage{Destination: "sip:peer@" + ph.udp + ";transport=tls", Method: "OPTIONS",
			Headers: dialogHeaders("f4", "OPTIONS", "1")}, []string{"unsupported transport"}, events.TransportErrUnsupportedTransport},
		{"missing=call-id", &events.SendSipMessage{Destination: "sip:peer@" + ph.udp, Method: "OPTIONS",
			Headers: dialogHeaders("", "OPTIONS", "1")[:2]}, []string{"missing"}, events.TransportErrBadMessage},
		{"header=injection", &events.SendSipMessage{Destination: "sip:peer@" + ph.udp, Method: "OPTIONS",
			Headers: dialogHeaders("f6", "OPTIONS", "1", hdr("X-Evil", "a\r\nVia: evil"))}, []string{"line break"}, events.TransportErrBadMessage},
		{"cancel=unknown", &events.SendSipMessage{Method: "CANCEL", Headers: events.Headers{hdr("Call-ID", "f7")}},
			[]string{"unknown or terminated transaction"}, events.TransportErrUnknownTransaction},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.ev
			ev.TransactionID = "ct_" + strings.NewReplacer("=", "_", "-", "_").Replace(tc.name)
			publish(t, b, ev)
			e := waitEvent(t, rec, "TransportError for "+ev.TransactionID,
				func(e *events.TransportError) bool { return e.TransactionID == ev.TransactionID })
			if e.ErrorCode != tc.code {
				t.Errorf("error_code %q, want %q (%s)", e.ErrorCode, tc.code, e.Error)
			}
			for _, w := range tc.want {
				if !strings.Contains(e.Error, w) {
					t.Errorf("error %q does not mention %q", e.Error, w)
				}
			}
		})
	}

	// The same large INVITE goes through over TCP.
	publish(t, b, &events.SendSipMessage{Destination: "sip:peer@" + ph.tcp + ";transport=tcp", Method: "INVITE",
		TransactionID: "ct_big_tcp", Headers: dialogHeaders("f8", "INVITE", "1", hdr("X-Mode", "answer"),
			hdr("Content-Type", "application/sdp")), Body: testSDP + big})
	waitEvent(t, rec, "200 over TCP", func(e *events.SipResponseReceived) bool {
		return e.TransactionID == "ct_big_tcp" && e.StatusCode == 200
	})
}

// TestCloseSendsQueued: what the dialog published before Close still goes
// out; concurrent Closes all return once the transport is down.
func TestCloseSendsQueued(t *testing.T) {
	b := newBus(t)
	tr, err := New(Config{UDPAddr: "127.0.0.1:0"}, b, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	ph := newPhone(t)
	for i := range 5 {
		publish(t, b, &events.SendSipMessage{Destination: "sip:peer@" + ph.udp, Method: "INVITE",
			TransactionID: "ct_q" + strconv.Itoa(i),
			Headers:       dialogHeaders("queued-"+strconv.Itoa(i), "INVITE", "1", hdr("X-Mode", "answer"))})
	}
	done := make(chan error, 2)
	for range 2 {
		go func() { done <- tr.Close(t.Context()) }()
	}
	for range 2 {
		if err := recv(t, done, "Close"); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	for i := range 5 {
		recv(t, ph.invites, "queued INVITE "+strconv.Itoa(i))
	}
	if tr.Addr("tcp") != "" {
		t.Errorf("TCP listening though not configured: %s", tr.Addr("tcp"))
	}
}
