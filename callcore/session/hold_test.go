package session

import (
	"strconv"
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// originVersion returns the version field of the o= line of sdp.
func originVersion(t *testing.T, sdp string) string {
	t.Helper()
	for _, l := range strings.Split(sdp, "\n") {
		if strings.HasPrefix(l, "o=") {
			if f := strings.Fields(l); len(f) == 6 {
				return f[2]
			}
		}
	}
	t.Fatalf("no o= line in %q", sdp)
	return ""
}

// Hold and resume by us: re-INVITEs with our SDP sendonly then sendrecv,
// each with the o= version one higher; the call is on hold once the
// re-INVITE is answered.
func TestHoldResume(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredInbound()

	h.ok(&events.CmdHoldCall{SessionRef: sref(id)}, callcore.StateActive)
	got := h.expect(id, "dialog:HoldSession", "media:HoldMedia")
	hold := got[0].ev.(*events.HoldSession)
	if d := sdpDirection(hold.SDPOffer); d != "sendonly" {
		t.Fatalf("hold offer direction %s:\n%s", d, hold.SDPOffer)
	}
	if v := originVersion(t, hold.SDPOffer); v != "2" {
		t.Fatalf("hold offer o= version %s, want 2", v)
	}
	if strings.Count(hold.SDPOffer, "a=sendrecv") != 0 || !strings.Contains(hold.SDPOffer, "a=rtpmap:0 PCMU/8000\r\n") {
		t.Fatalf("hold offer:\n%s", hold.SDPOffer)
	}
	h.refused(&events.CmdHoldCall{SessionRef: sref(id)}, callcore.CodeInvalidState, "")
	h.refused(&events.CmdResumeCall{SessionRef: sref(id)}, callcore.CodeInvalidState, "")
	h.publish(&events.CallEstablished{SessionRef: sref(id), SDPAnswer: strings.Replace(remoteOffer, "a=sendrecv", "a=recvonly", 1)})
	if held := expectEv[*events.CallHeld](h, id, "app:CallHeld"); held.By != "local" {
		t.Fatalf("CallHeld = %+v", held)
	}
	if c, in := h.call(id), h.internals(id); c.State != callcore.StateOnHold || !c.Held || len(in.heldBy) != 1 || in.heldBy[0] != "local" {
		t.Fatalf("held call: %+v", c)
	}

	h.refused(&events.CmdHoldCall{SessionRef: sref(id)}, callcore.CodeInvalidState, "")
	h.ok(&events.CmdResumeCall{SessionRef: sref(id)}, callcore.StateOnHold)
	got = h.expect(id, "dialog:ResumeSession", "media:ResumeMedia")
	resume := got[0].ev.(*events.ResumeSession)
	if d := sdpDirection(resume.SDPOffer); d != "sendrecv" {
		t.Fatalf("resume offer direction %s", d)
	}
	if v := originVersion(t, resume.SDPOffer); v != "3" {
		t.Fatalf("resume offer o= version %s, want 3", v)
	}
	h.publish(&events.CallEstablished{SessionRef: sref(id), SDPAnswer: remoteOffer})
	if res := expectEv[*events.CallResumed](h, id, "app:CallResumed"); res.By != "local" {
		t.Fatalf("CallResumed = %+v", res)
	}
	if c := h.call(id); c.State != callcore.StateActive || c.Held {
		t.Fatalf("resumed call: %+v", c)
	}
	h.remoteBye(id)
}

// A refused hold re-INVITE leaves the call active and media sending.
func TestHoldRefused(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredOutbound()
	h.ok(&events.CmdHoldCall{SessionRef: sref(id)}, callcore.StateActive)
	h.expect(id, "dialog:HoldSession", "media:HoldMedia")
	h.publish(&events.DialogError{SessionRef: sref(id), Error: "re-INVITE refused", ErrorCode: 488})
	h.expect(id, "media:ResumeMedia")
	if c := h.call(id); c.State != callcore.StateActive || c.Held {
		t.Fatalf("call: %+v", c)
	}
	// The next offer is sendonly again, its version higher still.
	h.ok(&events.CmdHoldCall{SessionRef: sref(id)}, callcore.StateActive)
	hold := expectEv[*events.HoldSession](h, id, "dialog:HoldSession")
	if v := originVersion(t, hold.SDPOffer); v != "9" {
		t.Fatalf("second hold offer o= version %s, want 9 (7, +1 refused, +1)", v)
	}
	h.expect(id, "media:HoldMedia")
	h.publish(&events.CallEstablished{SessionRef: sref(id), SDPAnswer: remoteAnswer})
	h.expect(id, "app:CallHeld")
	h.ok(&events.CmdResumeCall{SessionRef: sref(id)}, callcore.StateOnHold)
	h.expect(id, "dialog:ResumeSession", "media:ResumeMedia")
	h.publish(&events.DialogError{SessionRef: sref(id), Error: "re-INVITE refused", ErrorCode: 500})
	h.expect(id, "media:HoldMedia")
	if c := h.call(id); c.State != callcore.StateOnHold {
		t.Fatalf("state %s after a refused resume", c.State)
	}
}

// The far end's re-INVITEs: its direction is mirrored in our answer, and
// sendonly/inactive hold the call, sendrecv resumes it.
func TestReinviteReceived(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredInbound()
	offer := func(dir string) string { return strings.Replace(remoteOffer, "a=sendrecv", "a="+dir, 1) }
	steps := []struct {
		remote, answer string
		app            string
		state          callcore.CallState
	}{
		{"sendonly", "recvonly", "app:CallHeld", callcore.StateOnHold},
		{"inactive", "inactive", "", callcore.StateOnHold},
		{"sendrecv", "sendrecv", "app:CallResumed", callcore.StateActive},
		{"recvonly", "sendonly", "", callcore.StateActive},
		{"sendrecv", "sendrecv", "", callcore.StateActive},
	}
	version := 1
	for _, s := range steps {
		h.publish(&events.ReinviteReceived{SessionRef: sref(id), SDP: offer(s.remote)})
		got := h.expect(id, "media:UpdateMediaStream", "dialog:AcceptCall")
		upd, acc := got[0].ev.(*events.UpdateMediaStream), got[1].ev.(*events.AcceptCall)
		version++
		if d := sdpDirection(acc.SDPAnswer); string(d) != s.answer || upd.LocalSDP != acc.SDPAnswer || upd.RemoteSDP != offer(s.remote) {
			t.Fatalf("remote=%s: answer direction %s, want %s; UpdateMediaStream %+v", s.remote, d, s.answer, upd)
		}
		if v := originVersion(t, acc.SDPAnswer); v != strconv.Itoa(version) {
			t.Fatalf("remote=%s: answer version %s, want %d", s.remote, v, version)
		}
		if s.app != "" {
			ev := h.expect(id, s.app)[0].ev
			if by := byOf(ev); by != "remote" {
				t.Fatalf("%s by %q, want remote", s.app, by)
			}
		}
		if c := h.call(id); c.State != s.state {
			t.Fatalf("remote=%s: state %s, want %s", s.remote, c.State, s.state)
		}
	}
	// Resuming is ours only when we held the call.
	h.publish(&events.ReinviteReceived{SessionRef: sref(id), SDP: offer("sendonly")})
	h.expect(id, "media:UpdateMediaStream", "dialog:AcceptCall", "app:CallHeld")
	h.refused(&events.CmdResumeCall{SessionRef: sref(id)}, callcore.CodeInvalidState, "")
	h.refused(&events.CmdHoldCall{SessionRef: sref(id)}, callcore.CodeInvalidState, "")
}

// While we hold the call, our answer to the far end's sendrecv offer stays
// sendonly; with our re-INVITE in flight, theirs gets 491.
func TestReinviteReceivedWhileHeldByUs(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredInbound()
	h.ok(&events.CmdHoldCall{SessionRef: sref(id)}, callcore.StateActive)
	h.expect(id, "dialog:HoldSession", "media:HoldMedia")
	h.publish(&events.ReinviteReceived{SessionRef: sref(id), SDP: remoteOffer})
	if rej := expectEv[*events.RejectCall](h, id, "dialog:RejectCall"); rej.StatusCode != 491 {
		t.Fatalf("RejectCall = %+v", rej)
	}
	h.publish(&events.CallEstablished{SessionRef: sref(id)})
	h.expect(id, "app:CallHeld")
	h.publish(&events.ReinviteReceived{SessionRef: sref(id), SDP: remoteOffer})
	acc := h.expect(id, "media:UpdateMediaStream", "dialog:AcceptCall")[1].ev.(*events.AcceptCall)
	if d := sdpDirection(acc.SDPAnswer); d != "sendonly" {
		t.Fatalf("answer direction %s, want sendonly while we hold", d)
	}
	h.publish(&events.ReinviteReceived{SessionRef: sref(id), SDP: strings.Replace(remoteOffer, "a=sendrecv", "a=sendonly", 1)})
	acc = h.expect(id, "media:UpdateMediaStream", "dialog:AcceptCall", "app:CallHeld")[1].ev.(*events.AcceptCall)
	if d := sdpDirection(acc.SDPAnswer); d != "inactive" {
		t.Fatalf("answer direction %s, want inactive when both hold", d)
	}
	if in := h.internals(id); len(in.heldBy) != 2 {
		t.Fatalf("held by %v, want both", in.heldBy)
	}
}

// A re-INVITE without SDP gets our current SDP as the offer; one without
// media is refused.
func TestReinviteReceivedOddOffers(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredInbound()
	h.publish(&events.ReinviteReceived{SessionRef: sref(id)})
	if acc := expectEv[*events.AcceptCall](h, id, "dialog:AcceptCall"); acc.SDPAnswer != mediaAnswer {
		t.Fatalf("AcceptCall = %+v", acc)
	}
	h.publish(&events.CallEstablished{SessionRef: sref(id), SDPAnswer: remoteOffer}) // the ACK's answer: nothing to do
	h.publish(&events.ReinviteReceived{SessionRef: sref(id), SDP: "v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\ns=-\r\n"})
	if rej := expectEv[*events.RejectCall](h, id, "dialog:RejectCall"); rej.StatusCode != 488 {
		t.Fatalf("RejectCall = %+v", rej)
	}
	if c := h.call(id); c.State != callcore.StateActive {
		t.Fatalf("state %s: a refused re-INVITE must not end the call", c.State)
	}
}

func byOf(ev events.Event) string {
	switch e := ev.(type) {
	case *events.CallHeld:
		return e.By
	case *events.CallResumed:
		return e.By
	}
	return ""
}
