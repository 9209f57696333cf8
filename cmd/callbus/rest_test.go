package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/calltest"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/httpapi"
	"github.com/callbus/callbus/internal/bustest"
)

// The REST tests drive DESIGN.md §4's flows through the REST API of a
// whole node, as a client would: commands by HTTP, state by polling the
// call resource, events by the WebSocket feed and the call's history.

// TestRESTOutgoingCall: originate (flow 2), hold and resume (flow 4),
// DTMF both methods, hang up (flow 3), all through REST.
func TestRESTOutgoingCall(t *testing.T) {
	ctx := flowCtx(t)
	n, api := openRESTNode(t, nil)
	ws := openFeed(t, api, "")
	bob := calltest.StartPhone(t, calltest.WithUser("bob"), calltest.WithPolicy(calltest.RingOnly()))

	resp, raw := api.do(specValid, "POST", "/v1/calls", map[string]any{
		"to": bob.URI("bob"), "client_state": "order-42", "headers": map[string]string{"X-Order": "42"},
	}, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/calls = %d %s", resp.StatusCode, raw)
	}
	c := decodeStrict[callcore.Call](t, raw)
	if c.State != callcore.StateInitiating || c.Direction != callcore.Outbound || c.To != bob.URI("bob") ||
		c.ClientState != "order-42" || resp.Header.Get("Location") != "/v1/calls/"+c.ID || callcore.SessionNode(c.ID) != "test" {
		t.Errorf("created %+v, Location %q", c, resp.Header.Get("Location"))
	}
	in, err := bob.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.Invite().Get("X-Order") != "42" {
		t.Errorf("bob's INVITE lacks X-Order: 42:\n%s", in.Invite().Raw)
	}
	api.inState(c.ID, callcore.StateRinging)
	if err := in.Answer(ctx); err != nil {
		t.Fatal(err)
	}
	got := api.inState(c.ID, callcore.StateActive)
	if got.SipCallID != in.ID() || got.AnsweredAt.IsZero() || got.Media.Codec != "PCMU" {
		t.Errorf("answered call %+v (bob's Call-ID %s)", got, in.ID())
	}
	ws.waitFlow(t, c.ID, in.ID(), outboundAnsweredFlow()...)

	// Flow 4 from the node.
	if held := api.call("POST", "/v1/calls/"+c.ID+"/hold", nil, http.StatusAccepted); held.ID != c.ID {
		t.Errorf("hold answered %+v", held)
	}
	if h := api.inState(c.ID, callcore.StateOnHold); !h.Held {
		t.Errorf("held call %+v: held is false", h)
	}
	if dir := direction(t, in.RemoteSDP()); dir != calltest.SendOnly {
		t.Errorf("bob's view after hold: %s, want sendonly", dir)
	}
	ws.waitFlow(t, c.ID, in.ID(), heldLocallyFlow(false)...)
	api.call("POST", "/v1/calls/"+c.ID+"/resume", nil, http.StatusAccepted)
	if r := api.inState(c.ID, callcore.StateActive); r.Held {
		t.Errorf("resumed call %+v: still held", r)
	}
	ws.waitFlow(t, c.ID, in.ID(), heldLocallyFlow(true)...)

	// DTMF by SIP INFO, then by RFC 4733.
	api.call("POST", "/v1/calls/"+c.ID+"/dtmf", map[string]any{"digits": "12#", "method": "info"}, http.StatusAccepted)
	if d, err := in.WaitDTMF(ctx, 3); err != nil || d != "12#" {
		t.Errorf("bob got INFO DTMF %q, %v", d, err)
	}
	api.call("POST", "/v1/calls/"+c.ID+"/dtmf", map[string]any{"digits": "9A", "duration_ms": 60}, http.StatusAccepted)
	if d, err := in.WaitRTPDigits(ctx, 2); err != nil || d != "9A" {
		t.Errorf("bob got RFC 4733 DTMF %q, %v", d, err)
	}

	// Flow 3 from the node.
	api.call("DELETE", "/v1/calls/"+c.ID, nil, http.StatusAccepted)
	if reason, err := in.WaitEnded(ctx); err != nil || reason != callcore.EndRemoteHangup {
		t.Errorf("bob's call ended %s, %v", reason, err)
	}
	end := api.inState(c.ID, callcore.StateTerminated)
	if end.EndReason != callcore.EndLocalHangup || end.EndedAt.IsZero() {
		t.Errorf("ended call %+v, want local_hangup", end)
	}
	ws.waitFlow(t, c.ID, in.ID(), hungUpLocallyFlow()...)

	// A command on an ended call is refused.
	resp, raw = api.do(specValid, "POST", "/v1/calls/"+c.ID+"/hold", nil, nil)
	wantRESTProblem(t, resp, raw, http.StatusConflict, callcore.CodeInvalidState, "")

	// The call's history holds every flow, SIP messages included, by seq,
	// exactly as the feed streamed it.
	ended(t, n, c.ID)
	hist := api.history(c.ID)
	for _, flow := range [][]step{outboundAnsweredFlow(), heldLocallyFlow(false), heldLocallyFlow(true), hungUpLocallyFlow()} {
		wantFlow(t, hist, flow...)
	}
	if !slices.IsSortedFunc(hist, func(a, b bus.Record) int { return int(a.Envelope.Seq) - int(b.Envelope.Seq) }) {
		t.Error("the history is not in seq order")
	}
	live := ws.all()
	for _, r := range hist {
		if !slices.ContainsFunc(live, func(l bus.Record) bool { return l.Envelope.ID == r.Envelope.ID && l.Envelope.Seq == r.Envelope.Seq }) {
			t.Errorf("history event %d %s was not on the feed", r.Envelope.Seq, label(r.Event))
		}
	}

	// The list shows it; the state filter does too.
	list := getJSON[httpapi.CallList](api, "/v1/calls?state=terminated")
	if len(list.Calls) != 1 || list.Calls[0].ID != c.ID {
		t.Errorf("GET /v1/calls?state=terminated = %+v", list)
	}
	if l := getJSON[httpapi.CallList](api, "/v1/calls?state=active"); len(l.Calls) != 0 {
		t.Errorf("GET /v1/calls?state=active = %+v", l)
	}
}

// TestRESTInboundCall: a ringing inbound call answered by REST (flow 1 with
// INBOUND=ring), another rejected, then a blind transfer of the first.
func TestRESTInboundCall(t *testing.T) {
	ctx := flowCtx(t)
	n, api := openRESTNode(t, nil)
	ws := openFeed(t, api, "channels=session_to_app,api_to_session,session_to_dialog,dialog_to_session,"+
		"transport_to_dialog,dialog_to_transport,session_to_media,media_to_session,media_to_rtp,rtp_to_media")
	alice := calltest.StartPhone(t, calltest.WithUser("alice"), calltest.WithReferPolicy(calltest.ReferFollow))
	carol := calltest.StartPhone(t, calltest.WithUser("carol"))

	c, err := alice.Dial(ctx, nodeURI(n, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	var id string
	n.rec.wait(t, "IncomingCall", func(recs []bus.Record) bool { id = sessionByCallID(recs, c.ID()); return id != "" })
	api.inState(id, callcore.StateRinging)
	ringing := getJSON[httpapi.CallList](api, "/v1/calls?state=ringing")
	if len(ringing.Calls) != 1 || ringing.Calls[0].ID != id || ringing.Calls[0].Direction != callcore.Inbound {
		t.Fatalf("ringing calls %+v, want %s", ringing, id)
	}
	// Answering twice: the second is refused.
	api.call("POST", "/v1/calls/"+id+"/answer", nil, http.StatusAccepted)
	if err := c.WaitAnswer(ctx); err != nil {
		t.Fatal(err)
	}
	api.inState(id, callcore.StateActive)
	resp, raw := api.do(specValid, "POST", "/v1/calls/"+id+"/answer", nil, nil)
	wantRESTProblem(t, resp, raw, http.StatusConflict, callcore.CodeInvalidState, "")
	ws.waitFlow(t, id, c.ID(),
		first("SipMessageReceived(INVITE)"),  // 0
		causedBy(0, "IncomingCall"),          // 1
		causedBy(1, "CallCreated"),           // 2
		causedBy(0, "SendSipResponse(180)"),  // 3
		after("AnswerCall", 2),               // 4: the REST command
		causedBy(4, "StartMediaStream"),      // 5
		causedBy(5, "StartRtpStream"),        // 6
		causedBy(6, "RtpStreamStarted"),      // 7
		causedBy(7, "MediaStreamStarted"),    // 8
		causedBy(8, "AcceptCall"),            // 9
		causedBy(9, "SendSipResponse(200)"),  // 10
		after("SipMessageReceived(ACK)", 10), // 11
		causedBy(11, "CallEstablished"),      // 12
		causedBy(12, "CallAnswered"),         // 13
	)

	// A second call, rejected busy.
	c2, err := alice.Dial(ctx, nodeURI(n, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	var id2 string
	n.rec.wait(t, "IncomingCall 2", func(recs []bus.Record) bool { id2 = sessionByCallID(recs, c2.ID()); return id2 != "" })
	api.inState(id2, callcore.StateRinging)
	api.call("POST", "/v1/calls/"+id2+"/reject", map[string]any{"status": 486}, http.StatusAccepted)
	if reason, err := c2.WaitEnded(ctx); err != nil || c2.Status() != 486 {
		t.Errorf("alice's second call ended %s (%d), %v; want 486", reason, c2.Status(), err)
	}
	rej := api.inState(id2, callcore.StateTerminated)
	if rej.EndReason != callcore.EndRejected || rej.SipStatus != 486 {
		t.Errorf("rejected call %+v", rej)
	}

	// Blind transfer of the first call to carol.
	target := carol.URI("carol")
	api.call("POST", "/v1/calls/"+id+"/transfer", map[string]any{"target": target, "type": "blind"}, http.StatusAccepted)
	if _, err := c.WaitRefer(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	tr := api.inState(id, callcore.StateTerminated)
	if tr.EndReason != callcore.EndTransferred {
		t.Errorf("transferred call %+v", tr)
	}
	ws.waitFlow(t, id, c.ID(), transferChain()...)
	wantFlow(t, api.history(id), transferChain()...)
	leg, err := carol.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	followed, err := c.ReferredCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := followed.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := leg.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRESTHangupInbound hangs up an answered inbound call with POST
// /hangup; the phone hangs up another (flow 3 both ways).
func TestRESTHangupInbound(t *testing.T) {
	ctx := flowCtx(t)
	n, api := openRESTNode(t, env{"CALLBUS_INBOUND": "answer"})
	ws := openFeed(t, api, "")
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	id, c := callNode(t, n, alice, "bob")
	api.inState(id, callcore.StateActive)
	ws.waitFlow(t, id, c.ID(), inboundAnsweredFlow()...)
	api.call("POST", "/v1/calls/"+id+"/hangup", nil, http.StatusAccepted)
	if _, err := c.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if e := api.inState(id, callcore.StateTerminated); e.EndReason != callcore.EndLocalHangup {
		t.Errorf("ended %+v", e)
	}
	ws.waitFlow(t, id, c.ID(), hungUpLocallyFlow()...)

	id2, c2 := callNode(t, n, alice, "bob")
	if err := c2.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if e := api.inState(id2, callcore.StateTerminated); e.EndReason != callcore.EndRemoteHangup {
		t.Errorf("ended %+v", e)
	}
	ws.waitFlow(t, id2, c2.ID(), hungUpRemotelyFlow()...)

	// A feed filtered to one call and one channel streams that alone.
	one := openFeed(t, api, "session_id="+id2+"&channels=session_to_app&since=0")
	bustest.CheckFor(t, 10*time.Second, func() error {
		all := one.all()
		if len(all) == 0 {
			return fmt.Errorf("the filtered feed sent nothing")
		}
		if u, ok := all[len(all)-1].Event.(*events.CallUpdated); !ok || u.Call.State != callcore.StateTerminated {
			return fmt.Errorf("the filtered feed sent %d frames, the last not the terminated call's CallUpdated", len(all))
		}
		return nil
	})
	var types []string
	for _, r := range one.all() {
		if r.Event.Channel() != events.ChannelSessionToApp || events.SessionOf(r.Event) != id2 {
			t.Errorf("filtered feed sent %s/%s of %s", r.Event.Channel(), r.Event.Type(), events.SessionOf(r.Event))
		}
		types = append(types, r.Event.Type())
	}
	// Each change is followed by the call as it stands (one or more
	// CallUpdated: media and quality change the call too).
	var lifecycle []string
	for _, typ := range types {
		if typ != "CallUpdated" {
			lifecycle = append(lifecycle, typ)
		}
	}
	if strings.Join(lifecycle, ",") != "CallCreated,CallRinging,CallAnswered,CallEnded" || types[len(types)-1] != "CallUpdated" {
		t.Errorf("filtered feed replayed %v", types)
	}
	if last := one.all()[len(one.all())-1].Event.(*events.CallUpdated).Call; !sameCall(last, getJSON[callcore.Call](api, "/v1/calls/"+id2)) {
		t.Errorf("the feed's latest call %+v is not GET /v1/calls/%s", last, id2)
	}
}

// TestRESTRegistration registers with a registrar by REST and removes the
// registration.
func TestRESTRegistration(t *testing.T) {
	ctx := flowCtx(t)
	_, api := openRESTNode(t, nil)
	reg := calltest.StartRegistrar(t, calltest.WithAccount("alice", "s3cret"))
	resp, raw := api.do(specValid, "POST", "/v1/registrations", map[string]any{
		"registrar": reg.URI(), "aor": "sip:alice@127.0.0.1", "username": "alice", "password": "s3cret", "expires": 60,
	}, nil)
	if resp.StatusCode != http.StatusCreated || strings.Contains(string(raw), "s3cret") {
		t.Fatalf("POST /v1/registrations = %d %s", resp.StatusCode, raw)
	}
	r := decodeStrict[httpapi.Registration](t, raw)
	if _, err := reg.WaitRegistered(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	waitReg := func(status string) httpapi.Registration {
		var last httpapi.Registration
		bustest.CheckFor(t, 10*time.Second, func() error {
			last = getJSON[httpapi.Registration](api, "/v1/registrations/"+r.ID)
			if last.Status != status {
				return fmt.Errorf("registration %+v, want %s", last, status)
			}
			return nil
		})
		return last
	}
	if got := waitReg("registered"); got.Expires != 60 || got.AOR != "sip:alice@127.0.0.1" {
		t.Errorf("registered %+v", got)
	}
	if l := getJSON[httpapi.RegistrationList](api, "/v1/registrations"); len(l.Registrations) != 1 || l.Registrations[0].ID != r.ID {
		t.Errorf("GET /v1/registrations = %+v", l)
	}
	resp, raw = api.do(specValid, "DELETE", "/v1/registrations/"+r.ID, nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE = %d %s", resp.StatusCode, raw)
	}
	if err := reg.WaitUnregistered(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	waitReg("unregistered")
}
