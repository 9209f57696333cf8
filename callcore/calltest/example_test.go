package calltest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/calltest"
)

// Two phones on loopback: bob answers, alice calls, holds, sends DTMF and
// hangs up; each side sees the other's actions on the wire.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bob := calltest.NewPhone(nil, calltest.WithUser("bob")) // AutoAnswer by default
	alice := calltest.NewPhone(nil, calltest.WithUser("alice"))
	for _, p := range []*calltest.Phone{bob, alice} {
		if err := p.Open(ctx); err != nil {
			panic(err)
		}
		defer p.Close()
	}

	call, err := alice.Call(ctx, bob.TCPURI("bob"))
	if err != nil {
		panic(err)
	}
	in, _ := bob.Incoming(ctx)
	_ = in.WaitState(ctx, callcore.StateActive) // bob has the ACK

	_ = call.Hold(ctx)
	answer, _ := calltest.ParseSDP(call.RemoteSDP())
	fmt.Println("bob answers the hold with", answer.Direction, "and is", in.State())
	_ = call.Resume(ctx)

	_ = call.SendDTMF(ctx, "42#")
	digits, _ := in.WaitDTMF(ctx, 3)
	fmt.Println("bob got DTMF", digits)

	_ = call.Hangup(ctx)
	reason, _ := in.WaitEnded(ctx)
	fmt.Println("bob's call ended:", reason, "after", in.CountReceived(calltest.Req("INVITE")), "INVITEs")
	// Output:
	// bob answers the hold with recvonly and is on_hold
	// bob got DTMF 42#
	// bob's call ended: remote_hangup after 3 INVITEs
}

// A call that the far end rejects returns the *Call with a *StatusError.
func ExamplePhone_Call_rejected() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	busy := calltest.NewPhone(nil, calltest.WithPolicy(calltest.Reject(486)))
	alice := calltest.NewPhone(nil)
	_ = busy.Open(ctx)
	_ = alice.Open(ctx)
	defer busy.Close()
	defer alice.Close()

	call, err := alice.Call(ctx, busy.URI("anyone"))
	fmt.Println(calltest.StatusOf(err), call.EndedBy())
	// Output: 486 busy
}
