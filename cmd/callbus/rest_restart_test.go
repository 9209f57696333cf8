package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/calltest"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/httpapi"
)

// TestRESTRestart stops a node with calls in its history (one still
// ringing) and starts another on the same data dir: the calls and their
// events are all there, the ringing one is ended as failed, and new seqs
// continue above the old ones.
func TestRESTRestart(t *testing.T) {
	ctx := flowCtx(t)
	dir := t.TempDir()
	cfg := env{"CALLBUS_DATA_DIR": dir, "CALLBUS_API_KEYS": restKey, "CALLBUS_RATE_LIMIT": "0"}
	first := openNode(t, cfg)
	api := newREST(t, first.Main, restKey)
	bob := calltest.StartPhone(t, calltest.WithUser("bob"), calltest.WithPolicy(calltest.AutoAnswer()))
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))

	// An outgoing call, answered and hung up.
	out := api.call("POST", "/v1/calls", map[string]any{"to": bob.URI("bob")}, http.StatusCreated)
	api.inState(out.ID, callcore.StateActive)
	api.call("DELETE", "/v1/calls/"+out.ID, nil, http.StatusAccepted)
	api.inState(out.ID, callcore.StateTerminated)
	// An inbound call, rejected.
	c, err := alice.Dial(ctx, "sip:agent@"+first.sipTarget("udp"))
	if err != nil {
		t.Fatal(err)
	}
	var rejected string
	first.rec.wait(t, "the inbound call", func(recs []bus.Record) bool { rejected = sessionByCallID(recs, c.ID()); return rejected != "" })
	api.inState(rejected, callcore.StateRinging)
	api.call("POST", "/v1/calls/"+rejected+"/reject", map[string]any{"status": 603}, http.StatusAccepted)
	api.inState(rejected, callcore.StateTerminated)
	// An inbound call left ringing.
	c2, err := alice.Dial(ctx, "sip:agent@"+first.sipTarget("udp"))
	if err != nil {
		t.Fatal(err)
	}
	var ringing string
	first.rec.wait(t, "the second inbound call", func(recs []bus.Record) bool { ringing = sessionByCallID(recs, c2.ID()); return ringing != "" })
	api.inState(ringing, callcore.StateRinging)

	ids := []string{out.ID, rejected, ringing}
	before := map[string][]json.RawMessage{}
	for _, id := range ids {
		before[id] = getJSON[httpapi.EventList](api, "/v1/calls/"+id+"/events").Events
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	lastSeq := first.Bus().LastSeq()

	second := openNode(t, cfg)
	api = newREST(t, second.Main, restKey)
	list := getJSON[httpapi.CallList](api, "/v1/calls")
	var listed []string
	for _, c := range list.Calls {
		listed = append(listed, c.ID)
		if c.State != callcore.StateTerminated {
			t.Errorf("after the restart call %s is %s, want terminated", c.ID, c.State)
		}
	}
	slices.Sort(listed)
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(listed, want) {
		t.Fatalf("GET /v1/calls after the restart lists %v, want %v", listed, want)
	}
	for id, wantReason := range map[string]callcore.EndReason{out.ID: callcore.EndLocalHangup, rejected: callcore.EndRejected, ringing: callcore.EndFailed} {
		got := getJSON[callcore.Call](api, "/v1/calls/"+id)
		if got.EndReason != wantReason {
			t.Errorf("call %s ended %s, want %s", id, got.EndReason, wantReason)
		}
		after := api.history(id)
		if len(after) < len(before[id]) {
			t.Fatalf("call %s has %d events after the restart, %d before", id, len(after), len(before[id]))
		}
		got2 := getJSON[httpapi.EventList](api, "/v1/calls/"+id+"/events").Events
		for i, f := range before[id] {
			if !bytes.Equal(got2[i], f) {
				t.Errorf("call %s event %d changed across the restart:\n %s\n %s", id, i, f, got2[i])
			}
		}
	}
	// The store ended the ringing call: a CallEnded, then the CallUpdated
	// that is its row.
	hist := api.history(ringing)
	end, last := hist[len(hist)-2], hist[len(hist)-1]
	if label(end.Event) != "CallEnded" || end.Envelope.Seq <= lastSeq {
		t.Errorf("the ringing call's last event but one is %s at seq %d, want a CallEnded above %d", label(end.Event), end.Envelope.Seq, lastSeq)
	}
	if u, ok := last.Event.(*events.CallUpdated); !ok || last.Envelope.Seq != end.Envelope.Seq+1 ||
		!sameCall(u.Call, getJSON[callcore.Call](api, "/v1/calls/"+ringing)) {
		t.Errorf("the ringing call's last event is %s at seq %d, want the CallUpdated of the call as stored", label(last.Event), last.Envelope.Seq)
	}
	wantFlow(t, api.history(out.ID), concat2(outboundAutoAnswered(), hungUpLocallyFlow())...)

	// New events are numbered above everything stored.
	next := api.call("POST", "/v1/calls", map[string]any{"to": bob.URI("bob")}, http.StatusCreated)
	h := api.history(next.ID)
	if len(h) == 0 || h[0].Envelope.Seq <= lastSeq || label(h[0].Event) != "MakeCall" {
		t.Errorf("the new call's first event %v, want MakeCall above seq %d", h, lastSeq)
	}
	api.inState(next.ID, callcore.StateActive)
	api.call("DELETE", "/v1/calls/"+next.ID, nil, http.StatusAccepted)
	api.inState(next.ID, callcore.StateTerminated)
}

// outboundAutoAnswered is flow 2 against a phone that answers at once.
func outboundAutoAnswered() []step {
	return []step{
		first("MakeCall"),                       // 0
		causedBy(0, "CallCreated"),              // 1
		causedBy(0, "StartMediaStream"),         // 2
		causedBy(2, "InitiateCall"),             // 3
		causedBy(3, "SendSipMessage(INVITE)"),   // 4
		causedBy(4, "SipResponseReceived(200)"), // 5
		causedBy(5, "CallEstablished"),          // 6
		causedBy(6, "CallAnswered"),             // 7
	}
}

// concat2 joins flows, renumbering the causes of the later ones; the
// first step of each later flow follows the last step of the one before.
func concat2(flows ...[]step) []step {
	var out []step
	for _, f := range flows {
		base := len(out)
		for i, s := range f {
			s.follow = slices.Clone(s.follow)
			for j := range s.follow {
				s.follow[j] += base
			}
			if s.cause != noStep {
				s.cause += base
			}
			if i == 0 && base > 0 {
				s.follow = append(s.follow, base-1)
			}
			out = append(out, s)
		}
	}
	return out
}
