// Package calltest provides loopback SIP peers for callbus's tests: a Phone
// (a real SIP user agent on sipgo, over UDP and TCP on 127.0.0.1) that places
// and answers calls, holds and resumes them, sends and receives DTMF over SIP
// INFO, transfers with REFER and follows transfers; and a Registrar that
// challenges REGISTER with digest authentication.
//
// The peers know nothing of callbus's own layers: they speak SIP on real
// sockets, so a test drives callbus from the far end exactly as a phone or a
// carrier would, and asserts on the SIP messages the peer saw on the wire
// (Call.Received, Call.WaitReceived).
//
// Every wait takes a context; nothing sleeps to wait for a result. Every
// goroutine a peer starts is stopped by its Close, which is idempotent, so a
// test with goleak stays clean. Close sends nothing: hang calls up first when
// the far end must see them end.
//
// A typical test:
//
//	bob := calltest.StartPhone(t, calltest.WithUser("bob")) // answers every call
//	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
//	call, err := alice.Call(ctx, bob.URI("bob"))
//	if err != nil { t.Fatal(err) }
//	in, _ := bob.Incoming(ctx)
//	_ = call.Hold(ctx)
//	_ = in.WaitState(ctx, callcore.StateOnHold)
//	_ = call.Hangup(ctx)
//	_, _ = in.WaitEnded(ctx) // callcore.EndRemoteHangup
package calltest
