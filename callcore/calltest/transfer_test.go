package calltest

import (
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore"
)

func TestBlindTransfer(t *testing.T) {
	for _, tr := range transports {
		t.Run("transport="+tr, func(t *testing.T) {
			ctx := testCtx(t)
			alice := StartPhone(t, WithUser("alice"))
			bob := StartPhone(t, WithUser("bob"), WithReferPolicy(ReferFollow))
			carol := StartPhone(t, WithUser("carol"))
			out, in := connect(t, ctx, alice, bob, tr)

			if err := out.Transfer(ctx, uriOf(carol, "carol", tr)); err != nil {
				t.Fatal(err)
			}
			ref, err := in.WaitRefer(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ref.Target != uriOf(carol, "carol", tr) || ref.Replaces != "" || ref.ReferredBy == "" {
				t.Fatalf("refer %+v", ref)
			}
			result, err := out.WaitTransferResult(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if result.Status != 200 || result.Event != "refer" || !strings.HasPrefix(result.SubscriptionState, "terminated") {
				t.Fatalf("final NOTIFY %+v", result)
			}
			if first := out.Notifies()[0]; first.Status != 100 || first.Final {
				t.Fatalf("first NOTIFY %+v", first)
			}
			if _, err := out.WaitReceived(ctx, Resp(202, "REFER")); err != nil {
				t.Fatal(err)
			}

			leg, err := carol.Incoming(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if leg.Invite().Get("Referred-By") == "" {
				t.Fatalf("transferred INVITE has no Referred-By:\n%s", leg.Invite().Raw)
			}
			if err := leg.WaitState(ctx, callcore.StateActive); err != nil {
				t.Fatal(err)
			}
			followed, err := in.ReferredCall(ctx)
			if err != nil || followed.ID() != leg.ID() {
				t.Fatalf("referred call %v, %v", followed, err)
			}

			// The transferor hangs up once the transfer succeeded.
			if err := out.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			wantEnded(t, ctx, in, callcore.EndRemoteHangup)
			if err := followed.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			wantEnded(t, ctx, leg, callcore.EndRemoteHangup)
		})
	}
}

func TestTransferRefused(t *testing.T) {
	ctx := testCtx(t)
	alice := StartPhone(t, WithUser("alice"))
	bob := StartPhone(t, WithUser("bob"), WithReferPolicy(ReferReject))
	out, _ := connect(t, ctx, alice, bob, "udp")
	wantStatus(t, out.Transfer(ctx, "sip:nobody@127.0.0.1:9"), 603)
	wantState(t, out, callcore.StateActive)

	// A followed transfer to a busy target reports the failure.
	bob.OnRefer(ReferFollow)
	busy := StartPhone(t, WithUser("busy"), WithPolicy(Reject(486)))
	if err := out.Transfer(ctx, busy.URI("busy")); err != nil {
		t.Fatal(err)
	}
	result, err := out.WaitTransferResult(ctx)
	if err != nil || result.Status != 486 {
		t.Fatalf("transfer result %+v, %v", result, err)
	}
	if err := out.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestManualTransferNotify(t *testing.T) {
	ctx := testCtx(t)
	alice, bob := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("bob")) // ReferAccept
	out, in := connect(t, ctx, alice, bob, "udp")
	if err := out.Transfer(ctx, "sip:carol@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := in.WaitRefer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.NotifyTransfer(ctx, 180, ""); err != nil {
		t.Fatal(err)
	}
	if err := in.NotifyTransfer(ctx, 200, ""); err != nil {
		t.Fatal(err)
	}
	result, err := out.WaitTransferResult(ctx)
	if err != nil || result.Status != 200 || result.Reason != "OK" {
		t.Fatalf("transfer result %+v, %v", result, err)
	}
	if got := len(out.Notifies()); got != 3 {
		t.Fatalf("%d NOTIFYs, want 100, 180, 200", got)
	}
	if err := in.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAttendedTransfer(t *testing.T) {
	for _, tr := range transports {
		t.Run("transport="+tr, func(t *testing.T) {
			ctx := testCtx(t)
			alice := StartPhone(t, WithUser("alice"))
			bob := StartPhone(t, WithUser("bob"), WithReferPolicy(ReferFollow))
			carol := StartPhone(t, WithUser("carol"))
			toBob, bobSide := connect(t, ctx, alice, bob, tr)
			consult, carolSide := connect(t, ctx, alice, carol, tr)

			if err := toBob.TransferAttended(ctx, consult); err != nil {
				t.Fatal(err)
			}
			ref, err := bobSide.WaitRefer(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := consult.ID() + ";to-tag=" + consult.RemoteTag() + ";from-tag=" + consult.LocalTag()
			if ref.Replaces != want || !strings.Contains(ref.ReferTo, "?Replaces=") {
				t.Fatalf("refer %+v, want Replaces %q", ref, want)
			}
			result, err := toBob.WaitTransferResult(ctx)
			if err != nil || result.Status != 200 {
				t.Fatalf("transfer result %+v, %v", result, err)
			}

			// Carol took bob's call in place of alice's consultation call.
			newLeg, err := carol.Incoming(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if newLeg.Replaces() != want {
				t.Fatalf("Replaces %q, want %q", newLeg.Replaces(), want)
			}
			wantEnded(t, ctx, carolSide, callcore.EndTransferred)
			wantEnded(t, ctx, consult, callcore.EndRemoteHangup)
			if err := newLeg.WaitState(ctx, callcore.StateActive); err != nil {
				t.Fatal(err)
			}

			if err := toBob.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			if err := newLeg.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			followed, _ := bobSide.ReferredCall(ctx)
			wantEnded(t, ctx, followed, callcore.EndRemoteHangup)
		})
	}
}

func TestReplacesUnknownDialog(t *testing.T) {
	ctx := testCtx(t)
	alice, carol := StartPhone(t, WithUser("alice")), StartPhone(t, WithUser("carol"))
	_, err := alice.Call(ctx, carol.URI("carol"), WithHeader("Replaces", "nope;to-tag=a;from-tag=b"))
	wantStatus(t, err, 481)
}
