package calltest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore"
)

// TestWithoutACK: the callee retransmits its 200 (UDP) while no ACK comes,
// then gives up with a BYE, as callbus must.
func TestWithoutACK(t *testing.T) {
	ctx := testCtx(t)
	alice := StartPhone(t, WithUser("alice"))
	bob := StartPhone(t, WithUser("bob"), WithAckTimeout(1500*time.Millisecond))
	out, err := alice.Call(ctx, bob.URI("bob"), WithoutACK())
	if err != nil {
		t.Fatal(err)
	}
	in, err := bob.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantEnded(t, ctx, out, callcore.EndRemoteHangup)
	wantEnded(t, ctx, in, callcore.EndFailed)
	if n := out.CountReceived(Resp(200, "INVITE")); n < 2 {
		t.Fatalf("caller got %d 200s, want retransmissions", n)
	}
	if n := out.CountSent(Req("ACK")); n != 0 {
		t.Fatalf("caller sent %d ACKs", n)
	}
	if n := in.CountSent(Resp(200, "INVITE")); n < 2 {
		t.Fatalf("callee sent %d 200s", n)
	}
}

// TestReAck: a UAS that sends its 200 again after the ACK gets a second ACK
// (sipgo issue #120), whether the INVITE transaction still holds the 2xx or
// the retransmission arrives outside it.
func TestReAck(t *testing.T) {
	ctx := testCtx(t)
	alice := StartPhone(t, WithUser("alice"))
	uas := startStubbornUAS(t)
	out, err := alice.Call(ctx, "sip:uas@"+uas.addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		select {
		case <-uas.acks:
		case <-ctx.Done():
			t.Fatalf("ACK %d never came", i)
		}
	}
	if n := out.CountReceived(Resp(200, "INVITE")); n != 2 {
		t.Fatalf("caller got %d 200s, want 2", n)
	}
	if n := out.CountSent(Req("ACK")); n != 2 {
		t.Fatalf("caller sent %d ACKs, want 2", n)
	}
	sent := out.Sent()
	first, second := sent[1], sent[2]
	if first.Method != "ACK" || second.Method != "ACK" || first.Get("Via") != second.Get("Via") {
		t.Fatalf("the repeated ACK differs:\n%s\n%s", first.Raw, second.Raw)
	}

	// A retransmission that no transaction holds any more reaches the
	// phone as an unhandled response: it is ACKed all the same.
	ok, _ := out.WaitReceived(ctx, Resp(200, "INVITE"))
	msg, err := sip.ParseMessage([]byte(ok.Raw))
	if err != nil {
		t.Fatal(err)
	}
	msg.SetSource(uas.addr)
	alice.onUnhandledResponse(msg.(*sip.Response))
	select {
	case <-uas.acks:
	case <-ctx.Done():
		t.Fatal("no ACK for the stray 200")
	}
	if err := out.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
}

type stubbornUAS struct {
	addr     string
	acks     chan *sip.Request
	firstAck chan struct{}
	once     sync.Once
}

// startStubbornUAS serves a bare sipgo UAS on UDP that answers an INVITE
// with 200 and, once the ACK came, sends the same 200 again.
func startStubbornUAS(t *testing.T) *stubbornUAS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(discardLog)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(discardLog))
	if err != nil {
		t.Fatal(err)
	}
	u := &stubbornUAS{addr: conn.LocalAddr().String(), acks: make(chan *sip.Request, 8), firstAck: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "uas", Host: "127.0.0.1", Port: portOf(u.addr)}})
		if tx.Respond(res) != nil {
			return
		}
		select {
		case <-u.firstAck:
		case <-ctx.Done():
			return
		}
		_ = tx.Respond(res) // the transaction is in Accepted: this is a retransmission
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		u.acks <- req
		u.once.Do(func() { close(u.firstAck) })
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeUDP(conn)
	}()
	t.Cleanup(func() {
		cancel()
		conn.Close()
		ua.Close()
		<-done
	})
	return u
}
