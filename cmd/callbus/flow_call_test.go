package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/calltest"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// DESIGN.md §4 flows 1–4, each end to end: a calltest phone on one side,
// a whole node on the other.

// The events of each part of a call, as DESIGN.md §4 and
// docs/signalling.md have them, plus what the flows leave implicit: the
// 100 Trying each side sends, CallRinging, the ACK the node sends for a
// 2xx. A call's events are the concatenation of its parts.

// inboundAnswered is flow 1: the phone calls a node with INBOUND=answer.
func inboundAnswered() []string {
	return []string{
		"SipMessageReceived(INVITE)", "SendSipResponse(100)", "IncomingCall",
		"SendSipResponse(180)", "CallStateChanged(ringing)", "CallCreated", "CallRinging",
		"StartMediaStream", "StartRtpStream", "RtpStreamStarted", "MediaStreamStarted",
		"AcceptCall", "SendSipResponse(200)", "SipMessageReceived(ACK)", "CallEstablished", "CallAnswered",
	}
}

// outboundAnswered is flow 2: the node calls a phone that rings (100,
// 180) and answers once the node reported CallRinging.
func outboundAnswered() []string {
	return []string{
		"MakeCall", "CallCreated", "StartMediaStream", "StartRtpStream", "RtpStreamStarted",
		"MediaStreamStarted", "InitiateCall", "SendSipMessage(INVITE)",
		"SipResponseReceived(100)", "SipResponseReceived(180)", "CallStateChanged(ringing)", "CallRinging",
		"SipResponseReceived(200)", "SendSipMessage(ACK)", "CallEstablished",
		"UpdateMediaStream", "UpdateRtpStream", "CallAnswered",
	}
}

// hungUpLocally is flow 3 from the node: HangupCall.
func hungUpLocally() []string {
	return []string{
		"HangupCall", "TerminateSession", "SendSipMessage(BYE)", "SipResponseReceived(200)", "CallTerminated",
		"StopMediaStream", "StopRtpStream", "RtpStreamStopped", "MediaStreamStopped", "CallEnded",
	}
}

// hungUpRemotely is flow 3's mirror: the phone's BYE.
func hungUpRemotely() []string {
	return []string{
		"SipMessageReceived(BYE)", "SendSipResponse(200)", "CallTerminated",
		"StopMediaStream", "StopRtpStream", "RtpStreamStopped", "MediaStreamStopped", "CallEnded",
	}
}

// heldLocally is flow 4 from the node: HoldCall (or ResumeCall, with
// ResumeSession, ResumeMedia and CallResumed); the phone sends no 100 to a
// re-INVITE.
func heldLocally(resume bool) []string {
	if resume {
		return []string{"ResumeCall", "ResumeSession", "ResumeMedia", "SendSipMessage(INVITE)",
			"SipResponseReceived(200)", "SendSipMessage(ACK)", "CallEstablished", "CallResumed"}
	}
	return []string{"HoldCall", "HoldSession", "HoldMedia", "SendSipMessage(INVITE)",
		"SipResponseReceived(200)", "SendSipMessage(ACK)", "CallEstablished", "CallHeld"}
}

// heldRemotely is flow 4 from the phone: a re-INVITE (sendonly to hold,
// sendrecv to resume).
func heldRemotely(resume bool) []string {
	app := "CallHeld"
	if resume {
		app = "CallResumed"
	}
	return []string{"SipMessageReceived(INVITE)", "SendSipResponse(100)", "ReinviteReceived",
		"UpdateMediaStream", "UpdateRtpStream", "AcceptCall", "SendSipResponse(200)", app, "SipMessageReceived(ACK)"}
}

func concat(parts ...[]string) []string { return slices.Concat(parts...) }

// The causal chains of the same parts. Steps refer to earlier steps by
// index; comments number them.

func inboundAnsweredFlow() []step {
	return []step{
		first("SipMessageReceived(INVITE)"),             // 0
		causedBy(0, "IncomingCall"),                     // 1
		causedBy(1, "CallCreated"),                      // 2
		causedBy(0, "SendSipResponse(180)"),             // 3: the dialog rings as it reports the call
		causedBy(0, "CallStateChanged(ringing)").and(3), // 4
		causedBy(4, "CallRinging").and(2),               // 5: one key: after CallCreated
		causedBy(1, "StartMediaStream").and(2),          // 6: INBOUND=answer
		causedBy(6, "StartRtpStream"),                   // 7
		causedBy(7, "RtpStreamStarted"),                 // 8
		causedBy(8, "MediaStreamStarted"),               // 9
		causedBy(9, "AcceptCall"),                       // 10
		causedBy(10, "SendSipResponse(200)"),            // 11
		after("SipMessageReceived(ACK)", 11),            // 12: from the phone
		causedBy(12, "CallEstablished"),                 // 13
		causedBy(13, "CallAnswered"),                    // 14
		causedBy(0, "SendSipResponse(100)"),             // 15
	}
}

func outboundAnsweredFlow() []step {
	return []step{
		first("MakeCall"),                              // 0
		causedBy(0, "CallCreated"),                     // 1
		causedBy(0, "StartMediaStream").and(1),         // 2: no remote SDP: an offer
		causedBy(2, "StartRtpStream"),                  // 3
		causedBy(3, "RtpStreamStarted"),                // 4
		causedBy(4, "MediaStreamStarted"),              // 5
		causedBy(5, "InitiateCall"),                    // 6
		causedBy(6, "SendSipMessage(INVITE)"),          // 7
		causedBy(7, "SipResponseReceived(180)"),        // 8
		causedBy(8, "CallStateChanged(ringing)"),       // 9
		causedBy(9, "CallRinging"),                     // 10
		causedBy(7, "SipResponseReceived(200)").and(8), // 11: answered after CallRinging (the test waits)
		causedBy(11, "CallEstablished"),                // 12
		causedBy(11, "SendSipMessage(ACK)"),            // 13
		causedBy(12, "UpdateMediaStream"),              // 14: the answer
		causedBy(14, "UpdateRtpStream"),                // 15
		causedBy(12, "CallAnswered").and(14),           // 16
		causedBy(7, "SipResponseReceived(100)"),        // 17
	}
}

func hungUpLocallyFlow() []step {
	return []step{
		first("HangupCall"),                     // 0
		causedBy(0, "TerminateSession"),         // 1
		causedBy(1, "SendSipMessage(BYE)"),      // 2
		causedBy(0, "StopMediaStream").and(1),   // 3
		causedBy(3, "StopRtpStream"),            // 4
		causedBy(4, "RtpStreamStopped"),         // 5
		causedBy(5, "MediaStreamStopped"),       // 6
		causedBy(2, "SipResponseReceived(200)"), // 7
		causedBy(7, "CallTerminated"),           // 8
		causedBy(0, "CallEnded").and(6, 8),      // 9: once both dialog and media are done
	}
}

func hungUpRemotelyFlow() []step {
	return []step{
		first("SipMessageReceived(BYE)"),     // 0
		causedBy(0, "SendSipResponse(200)"),  // 1
		causedBy(0, "CallTerminated").and(1), // 2
		causedBy(2, "StopMediaStream"),       // 3
		causedBy(3, "StopRtpStream"),         // 4
		causedBy(4, "RtpStreamStopped"),      // 5
		causedBy(5, "MediaStreamStopped"),    // 6
		causedBy(6, "CallEnded"),             // 7
	}
}

func heldLocallyFlow(resume bool) []step {
	cmd, sess, media, app := "HoldCall", "HoldSession", "HoldMedia", "CallHeld"
	if resume {
		cmd, sess, media, app = "ResumeCall", "ResumeSession", "ResumeMedia", "CallResumed"
	}
	return []step{
		first(cmd),                              // 0
		causedBy(0, sess),                       // 1
		causedBy(0, media).and(1),               // 2
		causedBy(1, "SendSipMessage(INVITE)"),   // 3: the re-INVITE
		causedBy(3, "SipResponseReceived(200)"), // 4
		causedBy(4, "SendSipMessage(ACK)"),      // 5
		causedBy(4, "CallEstablished"),          // 6
		causedBy(6, app),                        // 7
	}
}

func heldRemotelyFlow(resume bool) []step {
	app := "CallHeld"
	if resume {
		app = "CallResumed"
	}
	return []step{
		first("SipMessageReceived(INVITE)"), // 0: the re-INVITE
		causedBy(0, "SendSipResponse(100)"), // 1
		causedBy(0, "ReinviteReceived"),     // 2
		causedBy(2, "UpdateMediaStream"),    // 3
		causedBy(3, "UpdateRtpStream"),      // 4
		causedBy(2, "AcceptCall").and(3),    // 5
		causedBy(5, "SendSipResponse(200)"), // 6
		causedBy(2, app).and(5),             // 7
		after("SipMessageReceived(ACK)", 6), // 8
	}
}

// sessionByCallID returns the session id the node gave the incoming call
// with SIP Call-ID callID, or "".
func sessionByCallID(recs []bus.Record, callID string) string {
	for _, r := range recs {
		if e, ok := r.Event.(*events.IncomingCall); ok && e.CallID == callID {
			return e.SessionID
		}
	}
	return ""
}

// callNode places a call from phone to user at a node that answers
// (INBOUND=answer) and returns its session id and the phone's call once
// the node reported it answered.
func callNode(t *testing.T, n *node, phone *calltest.Phone, user string, opts ...calltest.CallOption) (string, *calltest.Call) {
	t.Helper()
	ctx := flowCtx(t)
	c, err := phone.Call(ctx, nodeURI(n, user), opts...)
	if err != nil {
		t.Fatalf("%s calls %s: %v", phone.User(), user, err)
	}
	var id string
	n.rec.wait(t, "CallAnswered of "+c.ID(), func(recs []bus.Record) bool {
		id = sessionByCallID(recs, c.ID())
		return id != "" && count(appEvents(recs, id), "CallAnswered") == 1
	})
	return id, c
}

// callPhone makes the node call phone, which must ring only
// (calltest.RingOnly): it answers once the node reported CallRinging, so
// that the 180 and the 200 reach the node in order. It returns the session
// id and the phone's call once the node reported it answered.
func callPhone(t *testing.T, n *node, phone *calltest.Phone) (string, *calltest.Call) {
	t.Helper()
	ctx := flowCtx(t)
	id := makeCall(t, n, phone.URI(phone.User()))
	in, err := phone.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n.rec.wait(t, "CallRinging of "+id, func(recs []bus.Record) bool { return count(appEvents(recs, id), "CallRinging") == 1 })
	if err := in.Answer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitState(ctx, callcore.StateActive); err != nil {
		t.Fatal(err)
	}
	n.rec.wait(t, "CallAnswered of "+id, func(recs []bus.Record) bool { return count(appEvents(recs, id), "CallAnswered") == 1 })
	return id, in
}

// lastApp returns the last session_to_app event of session id.
func lastApp(t *testing.T, recs []bus.Record, id string) events.Event {
	t.Helper()
	evs := appEvents(recs, id)
	if len(evs) == 0 {
		t.Fatalf("no session_to_app event of %s", id)
	}
	return evs[len(evs)-1]
}

// mustSDP parses an SDP body, failing the test when it cannot.
func mustSDP(t *testing.T, body string) calltest.SDP {
	t.Helper()
	s, err := calltest.ParseSDP(body)
	if err != nil {
		t.Fatalf("SDP %q: %v", body, err)
	}
	return s
}

// wantDialog checks that m belongs to the dialog of c as c's far end sends
// it: c's Call-ID, c's tag on the side of c, the far end's on the other.
func wantDialog(t *testing.T, c *calltest.Call, m calltest.Message, farIsFrom bool) {
	t.Helper()
	from, to := tagOf(m.Get("From")), tagOf(m.Get("To"))
	far, ours := from, to
	if !farIsFrom {
		far, ours = to, from
	}
	if m.Get("Call-ID") != c.ID() || ours != c.LocalTag() || far != c.RemoteTag() || far == "" {
		t.Errorf("%s is not in the dialog (Call-ID %s, tags ours %s, far %s):\n%s",
			m, c.ID(), c.LocalTag(), c.RemoteTag(), m.Raw)
	}
}

// Flow 1: an incoming call answered at once (CALLBUS_INBOUND=answer).
func TestFlowIncomingCall(t *testing.T) {
	ctx := flowCtx(t)
	n := openFlowNode(t, env{"CALLBUS_INBOUND": "answer"})
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	id, c := callNode(t, n, alice, "bob")

	// (a) the bus
	recs := settled(t, n, id, c.ID(), inboundAnswered()...)
	wantFlow(t, callRecords(recs, id, c.ID()), inboundAnsweredFlow()...)

	// (b) the wire
	wantWire(t, "alice received", c.Received(), "100 INVITE", "180 INVITE", "200 INVITE")
	wantWire(t, "alice sent", c.Sent(), "INVITE", "ACK")
	ringing := find(t, c.Received(), calltest.Resp(180, "INVITE"), "180")
	ok := find(t, c.Received(), calltest.Resp(200, "INVITE"), "200")
	wantDialog(t, c, ok, false)
	if tagOf(ringing.Get("To")) != c.RemoteTag() {
		t.Errorf("180 To tag %q, 200 To tag %q: one dialog, one tag", ringing.Get("To"), ok.Get("To"))
	}
	if !strings.Contains(ok.Get("Contact"), n.sipTarget("udp")) || ok.Get("Content-Type") != "application/sdp" {
		t.Errorf("200 Contact %q (node at %s), Content-Type %q", ok.Get("Contact"), n.sipTarget("udp"), ok.Get("Content-Type"))
	}
	answer := mustSDP(t, ok.Body)
	if answer.Direction != calltest.SendRecv || len(answer.Codecs) == 0 || answer.Codecs[0].Name != "PCMU" {
		t.Errorf("SDP answer %+v, want sendrecv PCMU (the first codec offered)", answer)
	}
	if ack := find(t, c.Sent(), calltest.Req("ACK"), "ACK"); ack.CSeq() != c.Invite().CSeq() {
		t.Errorf("ACK CSeq %d, INVITE CSeq %d", ack.CSeq(), c.Invite().CSeq())
	}

	// (c) the state on both sides
	if c.State() != callcore.StateActive || c.Status() != 200 {
		t.Errorf("alice's call is %s (%d), want active (200)", c.State(), c.Status())
	}
	if e, isAnswered := lastApp(t, recs, id).(*events.CallAnswered); !isAnswered || e.Codec != "PCMU" {
		t.Errorf("last app event %#v, want CallAnswered PCMU", lastApp(t, recs, id))
	}
	snap := wantSnapshot(t, n, id, callcore.StateActive, false)
	if snap.Direction != callcore.Inbound || snap.SipCallID != c.ID() || snap.Media.Codec != "PCMU" ||
		snap.AnsweredAt.IsZero() || snap.Media.LocalRTP != fmt.Sprintf("%s:%d", answer.Addr, answer.Port) ||
		!strings.Contains(snap.From, "alice") || !strings.Contains(snap.To, "bob") {
		t.Errorf("snapshot %+v does not match the call (answer %s:%d)", snap, answer.Addr, answer.Port)
	}

	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	ended(t, n, id)
	recs = settled(t, n, id, c.ID(), concat(inboundAnswered(), hungUpRemotely())...)
	wantEnded(t, n, recs, id, callcore.EndRemoteHangup, 0)
}

// Flow 2: an outgoing call (MakeCall) that the phone rings and answers.
func TestFlowOutgoingCall(t *testing.T) {
	ctx := flowCtx(t)
	n := openFlowNode(t, nil)
	bob := calltest.StartPhone(t, calltest.WithUser("bob"), calltest.WithPolicy(calltest.RingOnly()))
	id, in := callPhone(t, n, bob)

	recs := settled(t, n, id, in.ID(), outboundAnswered()...)
	wantFlow(t, callRecords(recs, id, in.ID()), outboundAnsweredFlow()...)

	wantWire(t, "bob received", in.Received(), "INVITE", "ACK")
	wantWire(t, "bob sent", in.Sent(), "100 INVITE", "180 INVITE", "200 INVITE")
	inv := in.Invite()
	if inv.RequestURI != bob.URI("bob") || !strings.Contains(inv.Get("From"), "sip:callbus@127.0.0.1") ||
		tagOf(inv.Get("From")) == "" || tagOf(inv.Get("To")) != "" ||
		!strings.Contains(inv.Get("Contact"), n.sipTarget("udp")) || inv.Get("Content-Type") != "application/sdp" {
		t.Errorf("INVITE:\n%s", inv.Raw)
	}
	offer := mustSDP(t, inv.Body)
	if got := strings.Join(offer.CodecNames(), ","); offer.Direction != calltest.SendRecv || got != "PCMU,PCMA,telephone-event" {
		t.Errorf("SDP offer %s %s, want sendrecv PCMU,PCMA,telephone-event", offer.Direction, got)
	}
	ack := find(t, in.Received(), calltest.Req("ACK"), "ACK")
	wantDialog(t, in, ack, true)
	if ack.CSeq() != inv.CSeq() {
		t.Errorf("ACK CSeq %d, INVITE CSeq %d", ack.CSeq(), inv.CSeq())
	}

	if in.State() != callcore.StateActive {
		t.Errorf("bob's call is %s, want active", in.State())
	}
	if e, ok := lastApp(t, recs, id).(*events.CallAnswered); !ok || e.Codec != "PCMU" {
		t.Errorf("last app event %#v, want CallAnswered PCMU", lastApp(t, recs, id))
	}
	snap := wantSnapshot(t, n, id, callcore.StateActive, false)
	// The session picks an outgoing call's Call-ID: bob's dialog has it.
	if snap.Direction != callcore.Outbound || snap.SipCallID != in.ID() || snap.Media.Codec != "PCMU" ||
		snap.Media.RemoteRTP != in.RTPAddr() || snap.AnsweredAt.IsZero() {
		t.Errorf("snapshot %+v does not match the call (bob's RTP at %s)", snap, in.RTPAddr())
	}

	if err := in.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	ended(t, n, id)
	recs = settled(t, n, id, in.ID(), concat(outboundAnswered(), hungUpRemotely())...)
	wantEnded(t, n, recs, id, callcore.EndRemoteHangup, 0)
}

// Flow 3: a call of either direction hung up by either side.
func TestFlowTermination(t *testing.T) {
	for _, dir := range []callcore.Direction{callcore.Inbound, callcore.Outbound} {
		for _, by := range []string{"local", "remote"} {
			t.Run(fmt.Sprintf("dir=%s/by=%s", dir, by), func(t *testing.T) {
				ctx := flowCtx(t)
				n := openFlowNode(t, env{"CALLBUS_INBOUND": "answer"})
				phone := calltest.StartPhone(t, calltest.WithUser("alice"), calltest.WithPolicy(calltest.RingOnly()))
				var id string
				var c *calltest.Call
				setup := inboundAnswered()
				if dir == callcore.Inbound {
					id, c = callNode(t, n, phone, "bob")
				} else {
					id, c = callPhone(t, n, phone)
					setup = outboundAnswered()
				}
				sentBefore, receivedBefore := len(c.Sent()), len(c.Received())

				var teardown []string
				var flow []step
				if by == "local" {
					command(t, n, &events.CmdHangupCall{SessionRef: sessionRef(id)})
					teardown, flow = hungUpLocally(), hungUpLocallyFlow()
				} else {
					if err := c.Hangup(ctx); err != nil {
						t.Fatal(err)
					}
					teardown, flow = hungUpRemotely(), hungUpRemotelyFlow()
				}
				if _, err := c.WaitEnded(ctx); err != nil {
					t.Fatal(err)
				}
				ended(t, n, id)

				// (a) the teardown after the set-up, nothing else.
				recs := settled(t, n, id, c.ID(), concat(setup, teardown)...)
				wantFlow(t, callRecords(recs, id, c.ID()), flow...)
				finalReports(t, recs, id)

				// (b) the BYE and its 200, in the dialog.
				sent, received := c.Sent()[sentBefore:], c.Received()[receivedBefore:]
				if len(sent) != 1 || len(received) != 1 {
					t.Fatalf("alice sent\n%sand received\n%swant a BYE and its 200", wire(sent), wire(received))
				}
				want := callcore.EndRemoteHangup
				if by == "local" {
					wantWire(t, "alice received", received, "BYE")
					wantWire(t, "alice sent", sent, "200 BYE")
					wantDialog(t, c, received[0], true)
				} else {
					want = callcore.EndLocalHangup
					wantWire(t, "alice sent", sent, "BYE")
					wantWire(t, "alice received", received, "200 BYE")
					wantDialog(t, c, sent[0], false)
				}

				// (c) both sides terminated, each knowing who hung up.
				if c.State() != callcore.StateTerminated || c.EndedBy() != want {
					t.Errorf("alice's call is %s, ended by %s; want terminated, %s", c.State(), c.EndedBy(), want)
				}
				reason := callcore.EndLocalHangup
				if by == "remote" {
					reason = callcore.EndRemoteHangup
				}
				wantEnded(t, n, recs, id, reason, 0)
			})
		}
	}
}

// Flow 4: hold and resume, from the node (HoldCall, ResumeCall: it offers
// sendonly) and from the phone (its re-INVITEs offering sendonly or
// inactive, answered recvonly or inactive).
func TestFlowHoldResume(t *testing.T) {
	for _, tc := range []struct {
		name, by, offer, answer string
	}{
		{"by=local", events.ByLocal, calltest.SendOnly, calltest.RecvOnly},
		{"by=remote/offer=sendonly", events.ByRemote, calltest.SendOnly, calltest.RecvOnly},
		{"by=remote/offer=inactive", events.ByRemote, calltest.Inactive, calltest.Inactive},
	} {
		by := tc.by
		t.Run(tc.name, func(t *testing.T) {
			ctx := flowCtx(t)
			n := openFlowNode(t, env{"CALLBUS_INBOUND": "answer"})
			alice := calltest.StartPhone(t, calltest.WithUser("alice"))
			id, c := callNode(t, n, alice, "bob")
			version := mustSDP(t, c.RemoteSDP()).Version
			phoneVersion := mustSDP(t, c.LocalSDP()).Version
			parts := [][]string{inboundAnswered()}

			for _, resume := range []bool{false, true} {
				app, state, dir, answerDir := "CallHeld", callcore.StateOnHold, tc.offer, tc.answer
				if resume {
					app, state, dir, answerDir = "CallResumed", callcore.StateActive, calltest.SendRecv, calltest.SendRecv
				}
				sentBefore, receivedBefore := len(c.Sent()), len(c.Received())
				var flow []step
				if by == events.ByLocal {
					var cmd events.Event = &events.CmdHoldCall{SessionRef: sessionRef(id)}
					if resume {
						cmd = &events.CmdResumeCall{SessionRef: sessionRef(id)}
					}
					command(t, n, cmd)
					parts, flow = append(parts, heldLocally(resume)), heldLocallyFlow(resume)
				} else {
					var err error
					switch {
					case tc.offer == calltest.Inactive:
						// calltest's Hold offers sendonly: this offer is
						// written by hand, with its own o= version.
						phoneVersion++
						_, err = c.Reinvite(ctx, withDirection(t, c.LocalSDP(), dir, phoneVersion))
					case resume:
						err = c.Resume(ctx)
					default:
						err = c.Hold(ctx)
					}
					if err != nil {
						t.Fatal(err)
					}
					parts, flow = append(parts, heldRemotely(resume)), heldRemotelyFlow(resume)
				}
				if err := c.WaitState(ctx, state); err != nil {
					t.Fatal(err)
				}
				// (a) the call so far, the phone's ACK of a re-INVITE
				// included: the next step must not overtake it.
				recs := settled(t, n, id, c.ID(), concat(parts...)...)
				wantFlow(t, callRecords(recs, id, c.ID()), flow...)

				// (b) the re-INVITE offers dir with a new o= version; the
				// answer mirrors it. The phone is on hold from its 200 on,
				// so its ACK may still be on the way.
				if by == events.ByLocal {
					bustest.CheckFor(t, 10*time.Second, func() error {
						if k := c.CountReceived(calltest.Req("ACK")); k != len(parts)-1 {
							return fmt.Errorf("alice received %d ACKs, want %d", k, len(parts)-1)
						}
						return nil
					})
				}
				sent, received := c.Sent()[sentBefore:], c.Received()[receivedBefore:]
				if len(sent) < 1 || len(received) < 2 {
					t.Fatalf("alice sent\n%sand received\n%s", wire(sent), wire(received))
				}
				var offer, answer calltest.Message
				if by == events.ByLocal {
					wantWire(t, "alice received", received, "INVITE", "ACK")
					wantWire(t, "alice sent", sent, "200 INVITE")
					offer, answer = received[0], sent[0]
					wantDialog(t, c, offer, true)
					wantDialog(t, c, received[1], true)
					if received[1].CSeq() != offer.CSeq() {
						t.Errorf("ACK CSeq %d, re-INVITE CSeq %d", received[1].CSeq(), offer.CSeq())
					}
					version++
					if v := mustSDP(t, offer.Body).Version; v != version {
						t.Errorf("re-INVITE o= version %d, want %d", v, version)
					}
				} else {
					wantWire(t, "alice sent", sent, "INVITE", "ACK")
					wantWire(t, "alice received", received, "100 INVITE", "200 INVITE")
					offer, answer = sent[0], received[1]
					wantDialog(t, c, answer, false)
				}
				if d := direction(t, offer.Body); d != dir {
					t.Errorf("re-INVITE offers %s, want %s:\n%s", d, dir, offer.Raw)
				}
				if d := direction(t, answer.Body); d != answerDir {
					t.Errorf("200 answers %s, want %s:\n%s", d, answerDir, answer.Raw)
				}

				// (c)
				e := lastApp(t, recs, id)
				if e.Type() != app || (resume && e.(*events.CallResumed).By != by) || (!resume && e.(*events.CallHeld).By != by) {
					t.Errorf("last app event %#v, want %s by %s", e, app, by)
				}
				wantSnapshot(t, n, id, state, !resume) // who holds it: the CallHeld's by, checked above
			}

			if err := c.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			ended(t, n, id)
			recs := settled(t, n, id, c.ID(), concat(append(parts, hungUpRemotely())...)...)
			wantEnded(t, n, recs, id, callcore.EndRemoteHangup, 0)
		})
	}
}

// A phone that rings and answers at once sends 180 then 200 back to back:
// the node must still see the 180 (SipResponseReceived(180),
// CallStateChanged(ringing), CallRinging), as flow 2 says.
func TestFlowOutgoingAnsweredAtOnceRings(t *testing.T) {
	ctx := flowCtx(t)
	n := openFlowNode(t, nil)
	bob := calltest.StartPhone(t, calltest.WithUser("bob")) // rings and answers at once
	for i := range 10 {
		id := makeCall(t, n, bob.URI("bob"))
		in, err := bob.Incoming(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := in.WaitState(ctx, callcore.StateActive); err != nil {
			t.Fatal(err)
		}
		recs := n.rec.wait(t, "CallAnswered", func(recs []bus.Record) bool { return count(appEvents(recs, id), "CallAnswered") == 1 })
		if k := in.CountSent(calltest.Resp(180, "INVITE")); k != 1 {
			t.Fatalf("call %d: bob sent %d 180s, want 1", i, k)
		}
		call := callRecords(recs, id, in.ID())
		got := labels(call)
		for _, want := range []string{"SipResponseReceived(180)", "CallStateChanged(ringing)", "CallRinging"} {
			if !slices.Contains(got, want) {
				t.Fatalf("call %d: bob sent 180 then 200, but the node published no %s:\n%s", i, want, tree(call))
			}
		}
		if err := in.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		ended(t, n, id)
	}
}

// A phone may send an in-dialog request as soon as it has sent the ACK:
// the node must take it as it takes one sent later.
func TestFlowRequestRightAfterAck(t *testing.T) {
	n := openFlowNode(t, env{"CALLBUS_INBOUND": "answer"})
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	carol := calltest.StartPhone(t, calltest.WithUser("carol"), calltest.WithPolicy(calltest.RingOnly()))
	for _, request := range []string{"REFER", "re-INVITE"} {
		t.Run("request="+request, func(t *testing.T) {
			ctx := flowCtx(t)
			for i := range 10 {
				c, err := alice.Call(ctx, nodeURI(n, "bob")) // returns once the ACK is sent
				if err != nil {
					t.Fatal(err)
				}
				if request == "REFER" {
					_, err = c.Refer(ctx, "<"+carol.URI("carol")+">")
				} else {
					err = c.Hold(ctx)
				}
				if err != nil {
					recs := n.rec.all()
					t.Fatalf("call %d: %s sent right after the ACK: %v\n%s", i, request, err,
						tree(callRecords(recs, sessionByCallID(recs, c.ID()), c.ID())))
				}
				if err := c.Hangup(ctx); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	for _, leg := range carol.Calls() {
		_ = leg.Hangup(t.Context())
	}
}

// withDirection returns the SDP body with its media direction set to dir
// and its o= version set to version.
func withDirection(t *testing.T, body, dir string, version uint64) string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(body, "\r\n"), "\r\n")
	set := false
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "o="):
			f := strings.Fields(l)
			if len(f) < 6 {
				t.Fatalf("SDP o= line %q", l)
			}
			f[2] = fmt.Sprint(version)
			lines[i] = strings.Join(f, " ")
		case l == "a=sendrecv" || l == "a=sendonly" || l == "a=recvonly" || l == "a=inactive":
			lines[i], set = "a="+dir, true
		}
	}
	if !set {
		lines = append(lines, "a="+dir)
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}
