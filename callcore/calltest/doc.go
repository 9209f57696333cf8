// Package calltest provides loopback SIP peers for callbus's tests: a Phone
// (a real SIP user agent on sipgo, over UDP and TCP on 127.0.0.1) that places
// and answers calls, holds and resumes them, sends and receives DTMF over SIP
// INFO, transfers with REFER and follows transfers; and a Registrar that
// challenges REGISTER with digest authentication.
//
// Calls carry real RTP (pion/rtp, G.711 and RFC 4733 from callcore/audio).
// Once a call is answered, a goroutine per call records every packet that
// reaches its RTP port (Call.RTPPackets), decodes the negotiated codec into
// a buffer (Call.ReceivedAudio, Call.WaitAudio: arrival order, no jitter
// buffer) and telephone events into digits (Call.RTPDigits,
// Call.WaitRTPDigits). Call.SendAudio, Call.StartTone and Call.SendRTPDTMF
// send 20 ms packets paced in real time from the advertised port, with one
// SSRC, sequence space and wall-time RTP clock per call, following the
// far end's address and the direction through re-INVITEs; SendRTPDTMF can
// drop or duplicate packets, and Call.SendRTPRaw, Call.SendRTPRawFrom and
// Call.SendRTCPRaw send arbitrary bytes, to test a receiver's resilience.
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
