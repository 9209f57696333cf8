package calltest

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
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
	// Every 200 the caller got, retransmissions included, is ACKed.
	if got := out.CountReceived(Resp(200, "INVITE")); got < 2 || out.CountSent(Req("ACK")) < got {
		t.Fatalf("caller got %d 200s and sent %d ACKs, want an ACK for each of at least 2",
			got, out.CountSent(Req("ACK")))
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
	before := uas.ackCount.Load()
	for uas.ackCount.Load() == before { // repeated as a UAS would, if an ACK is lost
		alice.onUnhandledResponse(msg.(*sip.Response))
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("no ACK for the stray 200")
		}
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
	ackCount atomic.Int32
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
	u := &stubbornUAS{addr: conn.LocalAddr().String(), acks: make(chan *sip.Request, 64), firstAck: make(chan struct{})}
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
		// The transaction is in Accepted: these are retransmissions, repeated
		// (as a UAS repeats its 2xx) until the second ACK comes, since a
		// loaded machine may drop a datagram even on loopback.
		for u.ackCount.Load() < 2 {
			_ = tx.Respond(res)
			select {
			case <-time.After(200 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		u.ackCount.Add(1)
		select {
		case u.acks <- req:
		default:
		}
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
