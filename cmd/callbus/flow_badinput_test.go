package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/calltest"
	"github.com/callbus/callbus/callcore/events"
)

// Bad input from the network: each is answered as SIP says (or dropped
// when it is not SIP), nothing crashes, and TestMain's goleak finds no
// goroutine left behind.

// rawPeer is a bare UDP socket that speaks hand-written SIP to a node.
type rawPeer struct {
	t    *testing.T
	conn net.PacketConn
	to   net.Addr
}

// newRawPeer binds a UDP socket on loopback, closed when the test ends,
// that sends to the node's SIP port.
func newRawPeer(t *testing.T, n *node) *rawPeer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	to, err := net.ResolveUDPAddr("udp", n.sipTarget("udp"))
	if err != nil {
		t.Fatal(err)
	}
	return &rawPeer{t: t, conn: conn, to: to}
}

// addr is the socket's own address, for Via and Call-IDs.
func (p *rawPeer) addr() string { return p.conn.LocalAddr().String() }

// send sends msg as one datagram.
func (p *rawPeer) send(msg string) {
	p.t.Helper()
	if _, err := p.conn.WriteTo([]byte(msg), p.to); err != nil {
		p.t.Fatal(err)
	}
}

// response reads datagrams until a final response (status ≥ 200)
// arrives, and returns it; it fails the test after 5s.
func (p *rawPeer) response() string {
	p.t.Helper()
	buf := make([]byte, 65535)
	if err := p.conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		p.t.Fatal(err)
	}
	for {
		k, _, err := p.conn.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			p.t.Fatal("no final response within 5s")
		}
		if err != nil {
			p.t.Fatal(err)
		}
		msg := string(buf[:k])
		var code int
		if _, err := fmt.Sscanf(msg, "SIP/2.0 %d", &code); err == nil && code >= 200 {
			return msg
		}
	}
}

// wantStatus checks the status line of a response and that it echoes the
// request's Via branch.
func wantStatus(t *testing.T, res string, status int, branch string) {
	t.Helper()
	if !strings.HasPrefix(res, fmt.Sprintf("SIP/2.0 %d ", status)) || !strings.Contains(res, "branch="+branch) {
		t.Errorf("got\n%s\nwant a %d echoing branch %s", res, status, branch)
	}
}

// sipRequest writes a request from peer with the given headers after Via.
func sipRequest(p *rawPeer, method, uri, branch string, headers ...string) string {
	return method + " " + uri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + p.addr() + ";branch=" + branch + "\r\n" +
		strings.Join(headers, "\r\n") + "\r\nContent-Length: 0\r\n\r\n"
}

// Garbage datagrams publish nothing; the node then serves a call, and
// every event on the bus is that call's.
func TestFlowGarbageDatagrams(t *testing.T) {
	ctx := flowCtx(t)
	n := openFlowNode(t, env{"CALLBUS_INBOUND": "answer"})
	p := newRawPeer(t, n)
	for _, g := range []string{
		"",
		"\x00\x01\x02\x03\xff\xfe",
		"hello, is it me you're looking for?\r\n\r\n",
		"SIP/2.0 200 OK\r\n\r\n",
		"SIP/2.0 999999999999 Huge\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\n\r\n",
		"INVITE\r\n\r\n",
		"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nContent-Length: 99999\r\n\r\nv=0",
		"NOTIFY sip:bob@127.0.0.1 SIP/3.0\r\nVia: nonsense\r\n\r\n",
		strings.Repeat("A", 60000),
		string(bytes.Repeat([]byte("Via: SIP/2.0/UDP 1.2.3.4\r\n"), 2000)),
	} {
		p.send(g)
	}
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	id, c := callNode(t, n, alice, "bob")
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	ended(t, n, id)
	recs := settled(t, n, id, c.ID(), concat(inboundAnswered(), hungUpRemotely())...)
	if call := callRecords(recs, id, c.ID()); len(call) != len(recs) || recs[0].Envelope.Seq != 1 {
		t.Errorf("the bus carried events besides the call's:\n%s", describe(recs))
	}
}

// A request without Call-ID gets a stateless 400 and reaches no layer.
func TestFlowRequestWithoutCallID(t *testing.T) {
	n := openFlowNode(t, nil)
	p := newRawPeer(t, n)
	p.send(sipRequest(p, "OPTIONS", "sip:bob@"+n.sipTarget("udp"), "z9hG4bK-nocallid",
		"From: <sip:raw@127.0.0.1>;tag=raw1", "To: <sip:bob@127.0.0.1>", "CSeq: 1 OPTIONS", "Max-Forwards: 70"))
	wantStatus(t, p.response(), 400, "z9hG4bK-nocallid")

	// A well-formed OPTIONS after it is answered, and is the first event.
	p.send(sipRequest(p, "OPTIONS", "sip:bob@"+n.sipTarget("udp"), "z9hG4bK-options",
		"From: <sip:raw@127.0.0.1>;tag=raw2", "To: <sip:bob@127.0.0.1>", "Call-ID: options-1", "CSeq: 1 OPTIONS", "Max-Forwards: 70"))
	wantStatus(t, p.response(), 200, "z9hG4bK-options")
	recs := n.rec.wait(t, "the OPTIONS", func(recs []bus.Record) bool { return len(recs) >= 2 })
	if e, ok := recs[0].Event.(*events.SipMessageReceived); !ok || e.Headers.Get("Call-ID") != "options-1" {
		t.Errorf("the request without Call-ID reached the bus:\n%s", describe(recs))
	}
}

// An INVITE whose SDP cannot be parsed is refused with 488; the call
// fails.
func TestFlowBrokenSDP(t *testing.T) {
	for _, tc := range []struct{ name, sdp string }{
		{"sdp=garbage", "this is not SDP\r\n"},
		{"sdp=no-media", "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"},
		{"sdp=bad-port", "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio port RTP/AVP 0\r\n"},
		{"sdp=audio-port-0", "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"},
		{"sdp=video-only", "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"},
		{"sdp=no-common-codec", "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := flowCtx(t)
			n := openFlowNode(t, env{"CALLBUS_INBOUND": "answer"})
			alice := calltest.StartPhone(t, calltest.WithUser("alice"))
			c, err := alice.Call(ctx, nodeURI(n, "bob"), calltest.WithSDP(tc.sdp))
			if calltest.StatusOf(err) != 488 {
				t.Fatalf("INVITE with broken SDP: %v, want 488", err)
			}
			recs := n.rec.wait(t, "CallEnded", func(recs []bus.Record) bool {
				id := sessionByCallID(recs, c.ID())
				return id != "" && count(appEvents(recs, id), "CallEnded") == 1
			})
			id := sessionByCallID(recs, c.ID())
			recs = waitFlow(t, n, id, c.ID(),
				first("IncomingCall"),               // 0
				causedBy(0, "StartMediaStream"),     // 1
				causedBy(1, "MediaError"),           // 2
				causedBy(2, "RejectCall"),           // 3
				causedBy(3, "SendSipResponse(488)"), // 4
				causedBy(2, "CallEnded"),            // 5
			)
			if got := phoneEnded(t, c); got != callcore.EndFailed || c.Status() != 488 {
				t.Errorf("alice's call ended %s with %d, want failed with 488", got, c.Status())
			}
			wantEnded(t, n, recs, id, callcore.EndFailed, 488)
		})
	}
}

// A BYE (or other in-dialog request) for a dialog the node does not have
// gets 481.
func TestFlowByeUnknownDialog(t *testing.T) {
	n := openFlowNode(t, nil)
	p := newRawPeer(t, n)
	for i, method := range []string{"BYE", "INFO", "NOTIFY"} {
		branch := fmt.Sprintf("z9hG4bK-unknown-%d", i)
		callID := fmt.Sprintf("no-such-dialog-%d", i)
		p.send(sipRequest(p, method, "sip:bob@"+n.sipTarget("udp"), branch,
			"From: <sip:raw@127.0.0.1>;tag=raw", "To: <sip:bob@127.0.0.1>;tag=gone", "Call-ID: "+callID,
			"CSeq: 2 "+method, "Max-Forwards: 70"))
		wantStatus(t, p.response(), 481, branch)
		recs := n.rec.wait(t, "the 481", func(recs []bus.Record) bool {
			return len(callRecords(recs, "", callID)) >= 2
		})
		wantFlow(t, callRecords(recs, "", callID),
			first(fmt.Sprintf("SipMessageReceived(%s)", method)),
			causedBy(0, "SendSipResponse(481)"),
		)
		if call := callRecords(recs, "", callID); len(call) != 2 {
			t.Errorf("%s for an unknown dialog: %d events, want the request and the 481:\n%s", method, len(call), tree(call))
		}
	}
}

// A REFER whose Refer-To the dialog cannot use, in a live call, gets
// 400; the call goes on. A Refer-To that parses but names a target the
// node cannot call (tel:) is accepted, then refused with a NOTIFY 400.
func TestFlowReferBadTarget(t *testing.T) {
	ctx := flowCtx(t)
	n := openFlowNode(t, env{"CALLBUS_INBOUND": "answer"})
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	id, c := callNode(t, n, alice, "bob")
	for _, tc := range []struct{ name, referTo string }{
		{"refer_to=garbage", "<:::>"},
		{"refer_to=unclosed", "<sip:carol@127.0.0.1"},
		{"refer_to=no-host", "<sip:carol@>"},
		{"refer_to=bad-replaces", "<sip:carol@127.0.0.1?Replaces=%ZZ>"},
		{"refer_to=replaces-no-tags", "<sip:carol@127.0.0.1?Replaces=abc>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			res, err := c.Refer(ctx, tc.referTo)
			if calltest.StatusOf(err) != 400 {
				t.Fatalf("REFER to %q: %v, want 400", tc.referTo, err)
			}
			wantDialog(t, c, res, false)
		})
	}
	recs := n.rec.all()
	for _, r := range recs {
		if r.Event != nil && r.Event.Type() == "TransferRequested" {
			t.Errorf("a bad REFER reached the session:\n%s", describe(recs))
		}
	}
	if k := len(c.Notifies()); k != 0 {
		t.Errorf("%d NOTIFYs for refused REFERs", k)
	}

	t.Run("refer_to=tel", func(t *testing.T) {
		if err := c.Transfer(ctx, "tel:+15550100"); err != nil {
			t.Fatalf("REFER to a tel: URI: %v, want 202", err)
		}
		result, err := c.WaitTransferResult(ctx)
		if err != nil || result.Status != 400 {
			t.Fatalf("transfer result %+v, %v; want a final NOTIFY 400", result, err)
		}
	})

	if c.State() != callcore.StateActive {
		t.Errorf("alice's call is %s after the bad REFERs, want active", c.State())
	}
	wantSnapshot(t, n, id, callcore.StateActive, false)
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	recs = ended(t, n, id)
	wantEnded(t, n, recs, id, callcore.EndRemoteHangup, 0)
}

// A request with a header sipgo cannot parse must still be answered 400
// (docs/signalling.md: "Malformed requests get sipgo's stateless 400").
func TestFlowReferUnparsableHeader(t *testing.T) {
	ctx := flowCtx(t)
	n := openFlowNode(t, env{"CALLBUS_INBOUND": "answer"})
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	id, c := callNode(t, n, alice, "bob")
	for _, tc := range []struct{ name, referTo string }{
		{"refer_to=words", "just words"},
		{"refer_to=empty", "<>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if _, err := c.Refer(ctx, tc.referTo); calltest.StatusOf(err) != 400 {
				t.Fatalf("REFER to %q: %v, want 400", tc.referTo, err)
			}
		})
	}
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	ended(t, n, id)
}

// sipgoUDPReaders counts the goroutines reading a UDP socket that sipgo
// opened on demand (not a listener).
func sipgoUDPReaders() int {
	buf := make([]byte, 1<<22)
	for {
		k := runtime.Stack(buf, true)
		if k < len(buf) {
			return strings.Count(string(buf[:k]), "sip.(*TransportUDP).readUDPConnection")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Requests that arrive while the node closes must not leave anything
// behind: Close stops every goroutine the node started.
func TestFlowCloseWhileRequestsArrive(t *testing.T) {
	t.Skip("BUG: transport Close leaks sipgo UDP sockets and their reader goroutines: sipgo handles each received " +
		"request in a goroutine of its own (TransactionLayer.handleMessage); one still running when Transport.Close " +
		"has closed the listener finds no transaction and no pooled connection, so sipgo opens a new UDP socket " +
		"(node log: \"sip transport closed\", then \"Creating server connection\", \"New connection\", \"Server transaction " +
		"initialized\") that nothing closes; goleak reports sip.(*TransportUDP).readUDPConnection. Seen in the flow tests " +
		"with the ACK of a 486/488 arriving as the node closed; here one close in a few leaks one.")
	before := sipgoUDPReaders()
	for i := range 50 {
		m := NewMain(testConfig(t, nil))
		m.LogOutput = &logBuffer{}
		if err := m.Open(t.Context()); err != nil {
			t.Fatal(err)
		}
		n := &node{Main: m}
		p := newRawPeer(t, n)
		burst := make(chan struct{})
		go func() {
			defer close(burst)
			for k := range 300 {
				req := sipRequest(p, "OPTIONS", "sip:bob@"+n.sipTarget("udp"), fmt.Sprintf("z9hG4bK-close-%d-%d", i, k),
					"From: <sip:raw@127.0.0.1>;tag=raw", "To: <sip:bob@127.0.0.1>", fmt.Sprintf("Call-ID: close-%d-%d", i, k),
					"CSeq: 1 OPTIONS", "Max-Forwards: 70")
				if _, err := p.conn.WriteTo([]byte(req), p.to); err != nil {
					return
				}
			}
		}()
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		<-burst
		if left := sipgoUDPReaders() - before; left > 0 {
			t.Fatalf("close %d: %d sipgo UDP sockets still read after Close", i, left)
		}
	}
}
