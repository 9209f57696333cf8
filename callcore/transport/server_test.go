package transport

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

const testSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

// peerRequest builds a request from the peer to the transport; sipgo's
// client fills Via, From, To, Call-ID, CSeq and Max-Forwards.
func peerRequest(t *testing.T, method sip.RequestMethod, target string, body string) *sip.Request {
	t.Helper()
	var u sip.Uri
	if err := sip.ParseUri(target, &u); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(method, u)
	req.AppendHeader(sip.NewHeader("Contact", "<sip:peer@127.0.0.1>"))
	req.AppendHeader(sip.NewHeader("X-Test", "one, two"))
	if body != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody([]byte(body))
	} else {
		req.SetBody(nil)
	}
	return req
}

// ackFor builds the peer's ACK of a 2xx; sameBranch reuses the INVITE's
// Via (some phones do), else sipgo adds a Via with a new branch.
func ackFor(inv *sip.Request, res *sip.Response, sameBranch bool) *sip.Request {
	ack := sip.NewRequest(sip.ACK, *inv.Recipient.Clone())
	if sameBranch {
		ack.AppendHeader(inv.Via().Clone())
	}
	maxFwd := sip.MaxForwardsHeader(70)
	ack.AppendHeader(&maxFwd)
	ack.AppendHeader(sip.HeaderClone(inv.From()))
	ack.AppendHeader(sip.HeaderClone(res.To()))
	ack.AppendHeader(sip.HeaderClone(inv.CallID()))
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.ACK})
	ack.SetBody(nil)
	ack.SetTransport(inv.Transport())
	return ack
}

// cancelFor builds the peer's CANCEL of a pending INVITE.
func cancelFor(inv *sip.Request) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	c.AppendHeader(inv.Via().Clone())
	maxFwd := sip.MaxForwardsHeader(70)
	c.AppendHeader(&maxFwd)
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	c.SetBody(nil)
	c.SetTransport(inv.Transport())
	return c
}

// nextResponse reads tx's next response.
func nextResponse(t *testing.T, tx sip.ClientTransaction, what string) *sip.Response {
	t.Helper()
	for {
		select {
		case res := <-tx.Responses():
			if res.StatusCode == 100 {
				continue // sipgo's own Trying after 200ms
			}
			return res
		case <-tx.Done():
			t.Fatalf("%s: transaction ended: %v", what, tx.Err())
		case <-contextDone(t):
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func contextDone(t *testing.T) <-chan struct{} {
	ctx, cancel := context.WithTimeout(context.Background(), waitTotal)
	t.Cleanup(cancel)
	return ctx.Done()
}

func hdr(name, value string) events.Header { return events.Header{Name: name, Value: value} }

func checkHeaders(t *testing.T, got events.Headers, req *sip.Request) {
	t.Helper()
	want := eventHeaders(req.Headers())
	if !slices.Equal(got, want) {
		t.Errorf("headers:\n got %v\nwant %v", got, want)
	}
}

// TestIncomingCall drives a whole call from a plain sipgo phone: INVITE,
// 180 and 200 answered through the bus, ACK, BYE, then OPTIONS.
func TestIncomingCall(t *testing.T) {
	for _, tc := range []struct {
		network    string
		sameBranch bool
	}{
		{"udp", false}, {"udp", true}, {"tcp", false}, {"tcp", true},
	} {
		name := "transport=" + tc.network + "/ack=new-branch"
		if tc.sameBranch {
			name = "transport=" + tc.network + "/ack=same-branch"
		}
		t.Run(name, func(t *testing.T) {
			b := newBus(t)
			rec := record(t, b)
			tr := newTransport(t, b, Config{})
			p := newPeer(t, nil)
			ctx := context.Background()
			target := sipURI("callbus", tr.Addr(tc.network), tc.network)

			inv := peerRequest(t, sip.INVITE, target, testSDP)
			tx, err := p.cli.TransactionRequest(ctx, inv)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Terminate()
			got := waitEvent(t, rec, "INVITE", func(e *events.SipMessageReceived) bool { return e.Method == "INVITE" })
			if !strings.HasPrefix(got.TransactionID, "st_") {
				t.Errorf("transaction_id = %q, want st_…", got.TransactionID)
			}
			if got.Transport != tc.network {
				t.Errorf("transport = %q, want %q", got.Transport, tc.network)
			}
			if got.RequestURI != inv.Recipient.String() {
				t.Errorf("request_uri = %q, want %q", got.RequestURI, inv.Recipient.String())
			}
			if !strings.HasPrefix(got.Source, "127.0.0.1:") || got.Source == tr.Addr(tc.network) {
				t.Errorf("source = %q, want the peer's 127.0.0.1:port", got.Source)
			}
			if got.Body != testSDP {
				t.Errorf("body = %q, want the SDP", got.Body)
			}
			checkHeaders(t, got.Headers, inv)
			if got.Headers.Get("X-Test") != "one, two" || got.Key() != inv.CallID().Value() {
				t.Errorf("X-Test = %q, key = %q", got.Headers.Get("X-Test"), got.Key())
			}
			id := got.TransactionID
			callID := inv.CallID().Value()
			toTagged := inv.To().Value() + ";tag=dlg1"
			contact := "<sip:callbus@" + tr.Addr(tc.network) + ">"

			publish(t, b, &events.SendSipResponse{TransactionID: id, StatusCode: 180, ReasonPhrase: "Ringing",
				Headers: events.Headers{hdr("To", toTagged), hdr("Contact", contact)}})
			ringing := nextResponse(t, tx, "180")
			if ringing.StatusCode != 180 || ringing.To().Value() != toTagged {
				t.Fatalf("got %d To %q, want 180 To %q", ringing.StatusCode, ringing.To().Value(), toTagged)
			}

			publish(t, b, &events.SendSipResponse{TransactionID: id, StatusCode: 200, ReasonPhrase: "OK",
				Headers: events.Headers{hdr("To", toTagged), hdr("Contact", contact),
					hdr("Content-Type", "application/sdp"), hdr("X-Answer", "yes")},
				Body: testSDP})
			ok := nextResponse(t, tx, "200")
			switch {
			case ok.StatusCode != 200:
				t.Fatalf("got %d, want 200", ok.StatusCode)
			case ok.To().Value() != toTagged:
				t.Errorf("200 To = %q, want %q", ok.To().Value(), toTagged)
			case ok.Contact() == nil || ok.Contact().Value() != contact:
				t.Errorf("200 Contact = %v, want %q", ok.Contact(), contact)
			case string(ok.Body()) != testSDP || ok.ContentLength() == nil || int(*ok.ContentLength()) != len(testSDP):
				t.Errorf("200 body %q, Content-Length %v", ok.Body(), ok.ContentLength())
			case ok.GetHeader("X-Answer") == nil || ok.CallID().Value() != callID:
				t.Errorf("200 lacks X-Answer or Call-ID: %s", ok)
			case len(ok.GetHeaders("To")) != 1:
				t.Errorf("200 has %d To headers, want 1", len(ok.GetHeaders("To")))
			}

			if err := p.cli.WriteRequest(ackFor(inv, ok, tc.sameBranch)); err != nil {
				t.Fatal(err)
			}
			ack := waitEvent(t, rec, "ACK", func(e *events.SipMessageReceived) bool { return e.Method == "ACK" })
			if ack.TransactionID != id {
				t.Errorf("ACK transaction_id = %q, want the INVITE's %q", ack.TransactionID, id)
			}
			// A late 2xx retransmission for the ACKed INVITE is not an error.
			publish(t, b, &events.SendSipResponse{TransactionID: id, StatusCode: 200,
				Headers: events.Headers{hdr("Call-ID", callID), hdr("To", toTagged)}})

			bye := peerRequest(t, sip.BYE, target, "")
			bye.AppendHeader(sip.HeaderClone(inv.From()))
			bye.AppendHeader(sip.HeaderClone(ok.To()))
			bye.AppendHeader(sip.HeaderClone(inv.CallID()))
			bye.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo + 1, MethodName: sip.BYE})
			byeTx, err := p.cli.TransactionRequest(ctx, bye)
			if err != nil {
				t.Fatal(err)
			}
			defer byeTx.Terminate()
			gotBye := waitEvent(t, rec, "BYE", func(e *events.SipMessageReceived) bool { return e.Method == "BYE" })
			if gotBye.TransactionID == id || gotBye.Key() != callID {
				t.Errorf("BYE transaction_id %q key %q", gotBye.TransactionID, gotBye.Key())
			}
			publish(t, b, &events.SendSipResponse{TransactionID: gotBye.TransactionID, StatusCode: 200, ReasonPhrase: "OK"})
			if res := nextResponse(t, byeTx, "BYE 200"); res.StatusCode != 200 {
				t.Errorf("BYE answered %d", res.StatusCode)
			}

			opt := peerRequest(t, sip.OPTIONS, target, "")
			optTx, err := p.cli.TransactionRequest(ctx, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer optTx.Terminate()
			gotOpt := waitEvent(t, rec, "OPTIONS", func(e *events.SipMessageReceived) bool { return e.Method == "OPTIONS" })
			checkHeaders(t, gotOpt.Headers, opt)
			publish(t, b, &events.SendSipResponse{TransactionID: gotOpt.TransactionID, StatusCode: 200,
				Headers: events.Headers{hdr("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS")}})
			res := nextResponse(t, optTx, "OPTIONS 200")
			if res.StatusCode != 200 || res.Reason != "OK" || res.GetHeader("Allow") == nil {
				t.Errorf("OPTIONS answered %s", res.StartLine())
			}

			// Nothing went wrong on the way: no TransportError at all.
			if errs := matching[*events.TransportError](rec, nil); len(errs) > 0 {
				t.Errorf("unexpected transport errors: %s", describe(rec.Events()))
			}
		})
	}
}

// TestIncomingCancel: sipgo answers the CANCEL (200) and the INVITE (487);
// the transport tells the dialog with a CANCEL under the INVITE's id.
func TestIncomingCancel(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run("transport="+network, func(t *testing.T) {
			b := newBus(t)
			rec := record(t, b)
			tr := newTransport(t, b, Config{})
			p := newPeer(t, nil)
			ctx := context.Background()

			inv := peerRequest(t, sip.INVITE, sipURI("callbus", tr.Addr(network), network), testSDP)
			tx, err := p.cli.TransactionRequest(ctx, inv)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Terminate()
			got := waitEvent(t, rec, "INVITE", func(e *events.SipMessageReceived) bool { return e.Method == "INVITE" })
			callID := inv.CallID().Value()
			publish(t, b, &events.SendSipResponse{TransactionID: got.TransactionID, StatusCode: 180,
				Headers: events.Headers{hdr("To", inv.To().Value()+";tag=x")}})
			if res := nextResponse(t, tx, "180"); res.StatusCode != 180 {
				t.Fatalf("got %d", res.StatusCode)
			}

			cancelTx, err := p.cli.TransactionRequest(ctx, cancelFor(inv))
			if err != nil {
				t.Fatal(err)
			}
			defer cancelTx.Terminate()
			if res := nextResponse(t, cancelTx, "CANCEL 200"); res.StatusCode != 200 {
				t.Errorf("CANCEL answered %d", res.StatusCode)
			}
			if res := nextResponse(t, tx, "487"); res.StatusCode != 487 {
				t.Errorf("INVITE ended with %d, want 487", res.StatusCode)
			}
			c := waitEvent(t, rec, "CANCEL", func(e *events.SipMessageReceived) bool { return e.Method == "CANCEL" })
			if c.TransactionID != got.TransactionID || c.Key() != callID {
				t.Errorf("CANCEL transaction_id %q key %q, want %q %q", c.TransactionID, c.Key(), got.TransactionID, callID)
			}

			// The dialog's own final response after the CANCEL is dropped
			// quietly; an unknown transaction on the same key (so handled
			// after it) is an error, which proves the first was handled.
			publish(t, b, &events.SendSipResponse{TransactionID: got.TransactionID, StatusCode: 487,
				Headers: events.Headers{hdr("Call-ID", callID)}})
			publish(t, b, &events.SendSipResponse{TransactionID: "st_unknown", StatusCode: 200,
				Headers: events.Headers{hdr("Call-ID", callID)}})
			e := waitEvent(t, rec, "TransportError", func(e *events.TransportError) bool { return true })
			if e.TransactionID != "st_unknown" || !strings.Contains(e.Error, "unknown or terminated transaction") {
				t.Errorf("got TransportError %+v, want one for st_unknown", e)
			}
		})
	}
}

// TestRequestWithoutAnswer: a non-INVITE the dialog never answers is
// answered 408 after 32·T1 (half of the client's Timer F) and reported.
func TestRequestWithoutAnswer(t *testing.T) {
	b := newBus(t)
	rec := record(t, b)
	tr := newTransport(t, b, Config{})
	p := newPeer(t, nil)
	opt := peerRequest(t, sip.OPTIONS, sipURI("callbus", tr.Addr("tcp"), "tcp"), "")
	tx, err := p.cli.TransactionRequest(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Terminate()
	got := waitEvent(t, rec, "OPTIONS", func(e *events.SipMessageReceived) bool { return e.Method == "OPTIONS" })
	if res := nextResponse(t, tx, "408"); res.StatusCode != 408 {
		t.Errorf("got %d, want 408", res.StatusCode)
	}
	e := waitEvent(t, rec, "TransportError", func(e *events.TransportError) bool { return true })
	if e.TransactionID != got.TransactionID || !strings.Contains(e.Error, "no final response") ||
		e.ErrorCode != events.TransportErrNoFinalResponse {
		t.Errorf("got %+v", e)
	}
}

// TestConcurrentCalls: many calls at once, each answered by a dialog
// stand-in that reacts to the bus, keep their transactions apart.
func TestConcurrentCalls(t *testing.T) {
	const calls = 20
	b := newBus(t)
	rec := record(t, b)
	tr := newTransport(t, b, Config{})
	sub, err := b.Subscribe(bus.Subscriber{
		Name:     "answering-dialog",
		Channels: []string{events.ChannelTransportToDialog},
		Handle: func(ctx context.Context, _ events.Envelope, ev events.Event) error {
			m, ok := ev.(*events.SipMessageReceived)
			if !ok || m.Method != "INVITE" {
				return nil
			}
			return b.Publish(ctx, &events.SendSipResponse{TransactionID: m.TransactionID, StatusCode: 200,
				Headers: events.Headers{hdr("To", m.Headers.Get("To")+";tag=t-"+m.Headers.Get("Call-ID")),
					hdr("Content-Type", "application/sdp")}, Body: testSDP})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe(context.Background()) })
	p := newPeer(t, nil)

	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		network := []string{"udp", "tcp"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			inv := peerRequest(t, sip.INVITE, sipURI("callbus", tr.Addr(network), network), testSDP)
			res, err := p.cli.Do(context.Background(), inv)
			if err != nil {
				errs <- err
				return
			}
			if res.StatusCode != 200 || !strings.HasSuffix(res.To().Value(), "tag=t-"+inv.CallID().Value()) {
				errs <- fmt.Errorf("call %s: got %d To %q", inv.CallID().Value(), res.StatusCode, res.To().Value())
				return
			}
			errs <- p.cli.WriteRequest(ackFor(inv, res, false))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	bustest.CheckFor(t, waitTotal, func() error {
		invites := matching(rec, func(e *events.SipMessageReceived) bool { return e.Method == "INVITE" })
		acks := matching(rec, func(e *events.SipMessageReceived) bool { return e.Method == "ACK" })
		if len(invites) != calls || len(acks) != calls {
			return fmt.Errorf("%d INVITEs and %d ACKs published, want %d each", len(invites), len(acks), calls)
		}
		byCall := map[string]string{}
		for _, e := range invites {
			byCall[e.Key()] = e.TransactionID
		}
		for _, a := range acks {
			if byCall[a.Key()] != a.TransactionID {
				return fmt.Errorf("ACK of %s under %s, INVITE was %s", a.Key(), a.TransactionID, byCall[a.Key()])
			}
		}
		return nil
	})
}

// TestIncomingReject: a rejected INVITE's ACK is absorbed, over UDP (inside
// the transaction) and TCP (where sipgo has already ended it).
func TestIncomingReject(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run("transport="+network, func(t *testing.T) {
			b := newBus(t)
			rec := record(t, b)
			tr := newTransport(t, b, Config{})
			p := newPeer(t, nil)
			target := sipURI("callbus", tr.Addr(network), network)
			inv := peerRequest(t, sip.INVITE, target, testSDP)
			tx, err := p.cli.TransactionRequest(context.Background(), inv)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Terminate()
			got := waitEvent(t, rec, "INVITE", func(e *events.SipMessageReceived) bool { return e.Method == "INVITE" })
			publish(t, b, &events.SendSipResponse{TransactionID: got.TransactionID, StatusCode: 486,
				Headers: events.Headers{hdr("To", inv.To().Value()+";tag=busy")}})
			if res := nextResponse(t, tx, "486"); res.StatusCode != 486 || res.Reason != "Busy Here" {
				t.Fatalf("got %s", res.StartLine())
			}
			// sipgo's client sent its ACK before handing us the 486.
			opt := peerRequest(t, sip.OPTIONS, target, "")
			opt.AppendHeader(sip.HeaderClone(inv.CallID()))
			optTx, err := p.cli.TransactionRequest(context.Background(), opt)
			if err != nil {
				t.Fatal(err)
			}
			defer optTx.Terminate()
			waitEvent(t, rec, "OPTIONS", func(e *events.SipMessageReceived) bool { return e.Method == "OPTIONS" })
			if acks := matching(rec, func(e *events.SipMessageReceived) bool { return e.Method == "ACK" }); len(acks) > 0 {
				t.Errorf("the ACK of a 486 was published: %s", describe(rec.Events()))
			}
		})
	}
}

// A Close whose deadline has passed waits for nothing: it ends the request
// handler parked on an unanswered INVITE and frees the listeners at once.
func TestCloseAtTheDeadline(t *testing.T) {
	b := newBus(t)
	rec := record(t, b)
	tr, err := New(Config{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0"}, b, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	p := newPeer(t, nil)
	tx, err := p.cli.TransactionRequest(t.Context(), peerRequest(t, sip.INVITE, sipURI("callbus", tr.Addr("udp"), "udp"), testSDP))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Terminate()
	waitEvent(t, rec, "INVITE", func(e *events.SipMessageReceived) bool { return e.Method == "INVITE" })

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	begin := time.Now()
	first := tr.Close(ctx) // may name the handler not yet returned
	if took := time.Since(begin); took > time.Second {
		t.Errorf("Close with an ended ctx took %v", took)
	}
	for _, network := range []string{"udp", "tcp"} {
		addr := tr.bound[network]
		var c io.Closer
		var err error
		if network == "udp" {
			c, err = net.ListenPacket(network, addr)
		} else {
			c, err = net.Listen(network, addr)
		}
		if err != nil {
			t.Fatalf("rebind %s %s after Close: %v", network, addr, err)
		}
		_ = c.Close()
	}
	if second := tr.Close(t.Context()); second != first {
		t.Fatalf("second Close = %v, want the first's %v", second, first)
	}
}
