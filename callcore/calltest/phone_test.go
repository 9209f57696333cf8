package calltest

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore"
)

func TestCallAnswerHangup(t *testing.T) {
	for _, tr := range transports {
		t.Run("transport="+tr, func(t *testing.T) {
			ctx := testCtx(t)
			alice := StartPhone(t, WithUser("alice"))
			bob := StartPhone(t, WithUser("bob"))
			out, in := connect(t, ctx, alice, bob, tr, WithHeader("X-Test", "hello"))

			if want := strings.ToUpper(tr); out.Transport() != want || in.Transport() != want {
				t.Fatalf("transports %s/%s, want %s", out.Transport(), in.Transport(), want)
			}
			inv := in.Invite()
			if inv.Method != "INVITE" || inv.Get("X-Test") != "hello" || inv.Get("Content-Type") != "application/sdp" {
				t.Fatalf("callee's INVITE:\n%s", inv.Raw)
			}
			if !strings.Contains(inv.Get("Contact"), net.JoinHostPort("127.0.0.1", strconv.Itoa(portOfTransport(alice, tr)))) {
				t.Fatalf("INVITE Contact %q does not reach alice over %s", inv.Get("Contact"), tr)
			}
			offer := mustSDP(t, inv.Body)
			if got := strings.Join(offer.CodecNames(), ","); got != "PCMU,PCMA,telephone-event" {
				t.Fatalf("offered codecs %s", got)
			}
			if offer.Port != portOf(out.RTPAddr()) || offer.Port%2 != 0 {
				t.Fatalf("offer port %d, RTP socket %s", offer.Port, out.RTPAddr())
			}
			answer := mustSDP(t, out.RemoteSDP())
			if got := strings.Join(answer.CodecNames(), ","); got != "PCMU,telephone-event" {
				t.Fatalf("answered codecs %s", got)
			}
			if answer.Port != portOf(in.RTPAddr()) || answer.Direction != SendRecv {
				t.Fatalf("answer %+v, RTP socket %s", answer, in.RTPAddr())
			}
			if _, err := out.WaitReceived(ctx, Resp(180, "INVITE")); err != nil {
				t.Fatal(err)
			}
			if ok, err := out.WaitReceived(ctx, Resp(200, "INVITE")); err != nil || ok.Get("Contact") == "" {
				t.Fatalf("200 %v: %v", ok.Raw, err)
			}
			ack, err := in.WaitReceived(ctx, Req("ACK"))
			if err != nil {
				t.Fatal(err)
			}
			if ack.CSeq() != inv.CSeq() || !strings.Contains(ack.Get("To"), in.LocalTag()) {
				t.Fatalf("ACK does not match the INVITE:\n%s", ack.Raw)
			}
			wantState(t, out, callcore.StateActive)
			if out.Status() != 200 || in.Status() != 200 {
				t.Fatalf("statuses %d/%d", out.Status(), in.Status())
			}

			if err := out.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			wantEnded(t, ctx, out, callcore.EndLocalHangup)
			wantEnded(t, ctx, in, callcore.EndRemoteHangup)
			if _, err := in.WaitReceived(ctx, Req("BYE")); err != nil {
				t.Fatal(err)
			}
			if _, err := out.WaitReceived(ctx, Resp(200, "BYE")); err != nil {
				t.Fatal(err)
			}
			if err := out.Hangup(ctx); !errors.Is(err, ErrCallEnded) {
				t.Fatalf("second hangup: %v", err)
			}
		})
	}
}

func portOfTransport(p *Phone, tr string) int {
	if tr == "tcp" {
		return p.ep.tcpPort()
	}
	return p.ep.udpPort()
}

func TestHangupFromCallee(t *testing.T) {
	for _, tr := range transports {
		t.Run("transport="+tr, func(t *testing.T) {
			ctx := testCtx(t)
			alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob"))
			out, in := connect(t, ctx, alice, bob, tr)
			if err := in.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			wantEnded(t, ctx, in, callcore.EndLocalHangup)
			wantEnded(t, ctx, out, callcore.EndRemoteHangup)
			bye, err := out.WaitReceived(ctx, Req("BYE"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(bye.Get("From"), in.LocalTag()) || !strings.Contains(bye.Get("To"), out.LocalTag()) {
				t.Fatalf("callee's BYE tags:\n%s", bye.Raw)
			}
		})
	}
}

func TestHoldResume(t *testing.T) {
	for _, tr := range transports {
		t.Run("transport="+tr, func(t *testing.T) {
			ctx := testCtx(t)
			alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob"))
			out, in := connect(t, ctx, alice, bob, tr)
			v1 := mustSDP(t, out.LocalSDP()).Version

			if err := out.Hold(ctx); err != nil {
				t.Fatal(err)
			}
			wantState(t, out, callcore.StateOnHold)
			if err := in.WaitState(ctx, callcore.StateOnHold); err != nil {
				t.Fatal(err)
			}
			wantDirection(t, out.LocalSDP(), SendOnly)
			wantDirection(t, out.RemoteSDP(), RecvOnly)
			wantDirection(t, in.LocalSDP(), RecvOnly)
			if v := mustSDP(t, out.LocalSDP()).Version; v != v1+1 {
				t.Fatalf("hold offer o= version %d, want %d", v, v1+1)
			}
			if n := in.CountReceived(Req("INVITE")); n != 2 {
				t.Fatalf("callee got %d INVITEs, want 2", n)
			}
			if err := in.WaitState(ctx, callcore.StateOnHold); err != nil {
				t.Fatal(err)
			}

			if err := out.Resume(ctx); err != nil {
				t.Fatal(err)
			}
			wantState(t, out, callcore.StateActive)
			if err := in.WaitState(ctx, callcore.StateActive); err != nil {
				t.Fatal(err)
			}
			wantDirection(t, out.LocalSDP(), SendRecv)
			wantDirection(t, in.LocalSDP(), SendRecv)

			// The callee holds too: the re-INVITE goes the other way.
			if err := in.Hold(ctx); err != nil {
				t.Fatal(err)
			}
			if err := out.WaitState(ctx, callcore.StateOnHold); err != nil {
				t.Fatal(err)
			}
			wantDirection(t, out.LocalSDP(), RecvOnly)
			if err := in.Resume(ctx); err != nil {
				t.Fatal(err)
			}
			if err := out.WaitState(ctx, callcore.StateActive); err != nil {
				t.Fatal(err)
			}
			if n := out.CountSent(Resp(200, "INVITE")); n < 2 {
				t.Fatalf("caller answered %d re-INVITEs, want 2", n)
			}
			if err := out.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDTMFInfo(t *testing.T) {
	for _, tr := range transports {
		t.Run("transport="+tr, func(t *testing.T) {
			ctx := testCtx(t)
			alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob"))
			out, in := connect(t, ctx, alice, bob, tr)
			if err := out.SendDTMF(ctx, "12*#a"); err != nil {
				t.Fatal(err)
			}
			got, err := in.WaitDTMF(ctx, 5)
			if err != nil || got != "12*#A" {
				t.Fatalf("callee got DTMF %q, %v", got, err)
			}
			info, _ := in.WaitReceived(ctx, Req("INFO"))
			if info.Get("Content-Type") != "application/dtmf-relay" || !strings.Contains(info.Body, "Signal=1\r\n") {
				t.Fatalf("INFO:\n%s", info.Raw)
			}
			if err := in.SendDTMF(ctx, "9"); err != nil {
				t.Fatal(err)
			}
			if got, err := out.WaitDTMF(ctx, 1); err != nil || got != "9" {
				t.Fatalf("caller got DTMF %q, %v", got, err)
			}
			if err := out.SendDTMF(ctx, "x"); err == nil {
				t.Fatal("SendDTMF accepted a non-digit")
			}
			if err := out.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReject(t *testing.T) {
	for _, tr := range transports {
		t.Run("transport="+tr+"/status=486", func(t *testing.T) {
			ctx := testCtx(t)
			alice := StartPhone(t, WithUser("alice"))
			bob := StartPhone(t, WithUser("bob"), WithPolicy(Reject(486)))
			out, err := alice.Call(ctx, uriOf(bob, "bob", tr))
			wantStatus(t, err, 486)
			wantEnded(t, ctx, out, callcore.EndBusy)
			in, err := bob.Incoming(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantEnded(t, ctx, in, callcore.EndRejected)
			if out.Status() != 486 || in.Status() != 486 {
				t.Fatalf("statuses %d/%d", out.Status(), in.Status())
			}
		})
	}
}

func TestCancel(t *testing.T) {
	cases := []struct {
		name string
		opt  CallOption
	}{
		{"when=ringing", CancelOnRinging()},
		{"when=after", CancelAfter(50 * 1e6)},
	}
	for _, tr := range transports {
		for _, tc := range cases {
			t.Run("transport="+tr+"/"+tc.name, func(t *testing.T) {
				ctx := testCtx(t)
				alice := StartPhone(t, WithUser("alice"))
				bob := StartPhone(t, WithUser("bob"), WithPolicy(RingOnly()))
				out, err := alice.Call(ctx, uriOf(bob, "bob", tr), tc.opt)
				wantStatus(t, err, 487)
				wantEnded(t, ctx, out, callcore.EndCancelled)
				in, err := bob.Incoming(ctx)
				if err != nil {
					t.Fatal(err)
				}
				wantEnded(t, ctx, in, callcore.EndCancelled)
				if _, err := in.WaitReceived(ctx, Req("CANCEL")); err != nil {
					t.Fatal(err)
				}
				if _, err := out.WaitReceived(ctx, Resp(200, "CANCEL")); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestRingThenAnswer(t *testing.T) {
	ctx := testCtx(t)
	alice := StartPhone(t, WithUser("alice"))
	bob := StartPhone(t, WithUser("bob"), WithPolicy(RingOnly()))
	out, err := alice.Dial(ctx, bob.URI("bob"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := bob.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.WaitState(ctx, callcore.StateRinging); err != nil {
		t.Fatal(err)
	}
	wantState(t, in, callcore.StateRinging)
	if err := in.Answer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := out.WaitAnswer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.Answer(ctx); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("second answer: %v", err)
	}
	if err := in.WaitState(ctx, callcore.StateActive); err != nil {
		t.Fatal(err)
	}
	if err := in.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	wantEnded(t, ctx, out, callcore.EndRemoteHangup)
}

func TestHangupWhileRinging(t *testing.T) {
	ctx := testCtx(t)
	alice := StartPhone(t, WithUser("alice"))
	bob := StartPhone(t, WithUser("bob"), WithPolicy(RingOnly()))

	// The callee hangs up a ringing call: 603.
	out, err := alice.Dial(ctx, bob.URI("bob"))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := bob.Incoming(ctx)
	if err := in.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, out.WaitAnswer(ctx), 603)
	wantEnded(t, ctx, out, callcore.EndRejected)

	// The caller hangs up a ringing call: CANCEL.
	out, err = alice.Dial(ctx, bob.URI("bob"))
	if err != nil {
		t.Fatal(err)
	}
	in, _ = bob.Incoming(ctx)
	if err := out.WaitState(ctx, callcore.StateRinging); err != nil {
		t.Fatal(err)
	}
	if err := out.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	wantEnded(t, ctx, out, callcore.EndCancelled)
	wantEnded(t, ctx, in, callcore.EndCancelled)
}

func TestBadOffer(t *testing.T) {
	cases := []struct {
		name string
		opt  CallOption
	}{
		{"offer=garbage", WithSDP("this is not SDP")},
		{"offer=no-common-codec", WithCodecs("G722", "telephone-event")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob"))
			out, err := alice.Call(ctx, bob.URI("bob"), tc.opt)
			wantStatus(t, err, 488)
			wantEnded(t, ctx, out, callcore.EndFailed)
		})
	}
}

func TestLateOffer(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob"))
	out, in := connect(t, ctx, alice, bob, "udp", WithoutSDP())
	if in.Invite().Body != "" {
		t.Fatal("INVITE has a body")
	}
	offer := mustSDP(t, out.RemoteSDP()) // the callee's offer, in its 200
	answer := mustSDP(t, in.RemoteSDP()) // the caller's answer, in its ACK
	if len(offer.Codecs) != 3 || len(answer.Codecs) != 2 || answer.Port != portOf(out.RTPAddr()) {
		t.Fatalf("offer %+v / answer %+v", offer, answer)
	}
	if err := out.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCloseEndsCalls(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob"))
	out, in := connect(t, ctx, alice, bob, "tcp")
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}
	wantEnded(t, ctx, out, callcore.EndFailed)
	if in.State() != callcore.StateActive {
		t.Fatal("Close sent something to the far end")
	}
	if _, err := alice.Dial(ctx, bob.URI("bob")); !errors.Is(err, ErrClosed) {
		t.Fatalf("dial after close: %v", err)
	}
	if _, err := alice.Incoming(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("incoming after close: %v", err)
	}
	p := NewPhone(nil)
	if _, err := p.Dial(ctx, "sip:x@127.0.0.1"); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("dial before open: %v", err)
	}
	if err := p.Close(); err != nil || p.Open(ctx) == nil {
		t.Fatal("a closed phone opened")
	}
}

func TestIncomingWaitsForCtx(t *testing.T) {
	bob := StartPhone(t, WithUser("bob"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := bob.Incoming(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("incoming: %v", err)
	}
}

func TestEarlyMediaAndIgnore(t *testing.T) {
	ctx := testCtx(t)
	alice := StartPhone(t, WithUser("alice"))
	bob := StartPhone(t, WithUser("bob"), WithPolicy(func(ctx context.Context, c *Call) error {
		if err := c.Progress(ctx); err != nil {
			return err
		}
		return c.Answer(ctx)
	}))
	out, err := alice.Call(ctx, bob.URI("bob"))
	if err != nil {
		t.Fatal(err)
	}
	early, err := out.WaitReceived(ctx, Resp(183, "INVITE"))
	if err != nil {
		t.Fatal(err)
	}
	if mustSDP(t, early.Body).Port != portOf(bob.Calls()[0].RTPAddr()) {
		t.Fatalf("183 SDP:\n%s", early.Body)
	}
	if err := out.Hangup(ctx); err != nil {
		t.Fatal(err)
	}

	// A phone that ignores calls only sends 100 Trying; that is enough to
	// CANCEL.
	carol := StartPhone(t, WithUser("carol"), WithPolicy(Ignore()))
	out, err = alice.Dial(ctx, carol.URI("carol"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.WaitReceived(ctx, Resp(100, "INVITE")); err != nil {
		t.Fatal(err)
	}
	wantState(t, out, callcore.StateInitiating)
	if err := out.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	wantEnded(t, ctx, out, callcore.EndCancelled)
}

func TestSendInDialog(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob"))
	out, in := connect(t, ctx, alice, bob, "udp")
	if res, err := out.Send(ctx, "OPTIONS", "", ""); err != nil || !strings.Contains(res.Get("Allow"), "REFER") {
		t.Fatalf("OPTIONS: %v %v", res, err)
	}
	_, err := out.Send(ctx, "MESSAGE", "text/plain", "hi", Header{Name: "X-Hi", Value: "1"})
	wantStatus(t, err, 405)
	msg, _ := in.WaitReceived(ctx, Req("MESSAGE"))
	if msg.Body != "hi" || msg.Get("X-Hi") != "1" {
		t.Fatalf("MESSAGE:\n%s", msg.Raw)
	}
	if _, err := out.Send(ctx, "INVITE", "", ""); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("Send INVITE: %v", err)
	}
	if err := in.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Send(ctx, "INFO", "", ""); !errors.Is(err, ErrCallEnded) {
		t.Fatalf("Send after the end: %v", err)
	}
	if _, err := out.WaitReceived(ctx, Req("NOTIFY")); !errors.Is(err, ErrCallEnded) {
		t.Fatalf("WaitReceived after the end: %v", err)
	}
}
