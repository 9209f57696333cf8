package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// inboundSetup publishes an incoming call up to its answer, as transport,
// dialog, session and media would.
func inboundSetup(t testing.TB, b bus.Bus, id, sip string) {
	t.Helper()
	publishAll(t, b, inboundEvents(id, sip))
}

func publishAll(t testing.TB, b bus.Bus, evs []events.Event) {
	t.Helper()
	for _, ev := range evs {
		bustest.Publish(t, b, ev)
	}
}

func inboundEvents(id, sip string) []events.Event {
	ringing := ringingCall(id, sip)
	media := ringing
	media.Media = answeredCall(id, sip).Media
	return []events.Event{
		&events.SipMessageReceived{Source: "192.0.2.10:5060", Method: "INVITE", Headers: hdrs(sip, "CSeq", "1 INVITE"), TransactionID: "st_" + sip},
		// A transaction-only response: no Call-ID header, matched by its transaction.
		&events.SendSipResponse{TransactionID: "st_" + sip, StatusCode: 100, ReasonPhrase: "Trying"},
		&events.IncomingCall{SessionRef: ref(id), CallID: sip, From: "<sip:alice@example.com>", To: "<sip:bob@callbus>", Headers: hdrs(sip)},
		&events.CallCreated{SessionRef: ref(id), Direction: "inbound", From: "<sip:alice@example.com>", To: "<sip:bob@callbus>", SipCallID: sip},
		upd(ringing),
		&events.SendSipResponse{TransactionID: "st_" + sip, StatusCode: 180, ReasonPhrase: "Ringing", Headers: hdrs(sip)},
		&events.CallStateChanged{SessionRef: ref(id), NewState: "ringing"},
		&events.CallRinging{SessionRef: ref(id)},
		&events.CmdAnswerCall{SessionRef: ref(id)},
		&events.StartMediaStream{SessionRef: ref(id)},
		&events.MediaStreamStarted{SessionRef: ref(id), LocalPort: 20000, Codec: "PCMU"},
		upd(media),
		&events.AcceptCall{SessionRef: ref(id)},
		&events.SendSipResponse{TransactionID: "st_" + sip, StatusCode: 200, ReasonPhrase: "OK", Headers: hdrs(sip)},
		&events.SipMessageReceived{Method: "ACK", Headers: hdrs(sip), TransactionID: "st_" + sip},
		&events.CallEstablished{SessionRef: ref(id)},
		&events.CallAnswered{SessionRef: ref(id), Codec: "PCMU"},
		upd(answeredCall(id, sip)),
	}
}

// hangup publishes a local hang-up of an established call: BYE, its 200,
// and the end.
func hangup(t testing.TB, b bus.Bus, id, sip string) {
	t.Helper()
	publishAll(t, b, hangupEvents(answeredCall(id, sip), sip))
}

// hangupEvents ends c, the call as it stands, with a local hang-up.
func hangupEvents(c callcore.Call, sip string) []events.Event {
	id := c.ID
	terminating := c
	terminating.State = callcore.StateTerminating
	ended := c
	ended.State, ended.EndedAt, ended.EndReason, ended.Held = callcore.StateTerminated, t0.Add(time.Minute), callcore.EndLocalHangup, false
	return []events.Event{
		&events.CmdHangupCall{SessionRef: ref(id)},
		&events.TerminateSession{SessionRef: ref(id), Reason: "local_hangup"},
		upd(terminating),
		&events.SendSipMessage{Destination: "sip:alice@192.0.2.10", Method: "BYE", Headers: hdrs(sip, "CSeq", "2 BYE"), TransactionID: "ct_bye_" + sip},
		// A response whose headers lost the Call-ID: matched by transaction.
		&events.SipResponseReceived{TransactionID: "ct_bye_" + sip, StatusCode: 200, ReasonPhrase: "OK"},
		&events.CallTerminated{SessionRef: ref(id), Reason: "local_hangup"},
		&events.StopMediaStream{SessionRef: ref(id)},
		&events.MediaStreamStopped{SessionRef: ref(id), Reason: "stopped"},
		&events.CallEnded{SessionRef: ref(id), Reason: "local_hangup"},
		upd(ended),
	}
}

// The call row is the call of the latest CallUpdated, whatever the other
// events of the call say, and the call's flow holds every event of it.
func TestCallRowIsLatestCallUpdated(t *testing.T) {
	b, s := attached(t, Config{}, bus.Config{})
	const id, sip = "n1.in1", "sip-in-1@192.0.2.10"
	// Another call at the same time, whose events must stay out of id's flow.
	inboundSetup(t, b, "n1.other", "sip-other@192.0.2.10")
	publishAll(t, b, inboundEvents(id, sip)[:5]) // up to the first CallUpdated
	syncT(t, s)
	if c := getCall(t, s, id); !equalCall(c, ringingCall(id, sip)) {
		t.Fatalf("after CallCreated:\n got %+v\nwant %+v", c, ringingCall(id, sip))
	}
	publishAll(t, b, inboundEvents(id, sip)[5:])
	syncT(t, s)
	want := answeredCall(id, sip)
	if c := getCall(t, s, id); !equalCall(c, want) {
		t.Fatalf("after answer:\n got %+v\nwant %+v", c, want)
	}

	// Session events without a CallUpdated change nothing: the store keeps
	// no state machine of its own.
	bustest.Publish(t, b, &events.CallHeld{SessionRef: ref(id), By: events.ByLocal})
	syncT(t, s)
	if c := getCall(t, s, id); !equalCall(c, want) {
		t.Fatalf("after a CallHeld alone:\n got %+v\nwant %+v", c, want)
	}
	held := want
	held.State, held.Held = callcore.StateOnHold, true
	held.Media.Quality = &callcore.CallQuality{MOS: 4.3, PacketLossPct: 0.5, JitterMS: 2, PacketsSent: 100, PacketsReceived: 99}
	publishAll(t, b, []events.Event{upd(held)})
	syncT(t, s)
	if c := getCall(t, s, id); !equalCall(c, held) {
		t.Fatalf("after CallUpdated(held):\n got %+v\nwant %+v", c, held)
	}
	// Several updates in one batch: the last one is the row.
	resumed := held
	resumed.State, resumed.Held, resumed.BridgedWith, resumed.RecordingID = callcore.StateActive, false, "n1.other", "rec_1"
	publishAll(t, b, []events.Event{
		&events.CallResumed{SessionRef: ref(id), By: events.ByLocal},
		upd(callcore.Call{ID: id, State: callcore.StateActive, CreatedAt: t0}),
		&events.CallBridged{SessionRef: ref(id), PeerSessionID: "n1.other"},
		&events.RecordingFinished{SessionRef: ref(id), RecordingID: "rec_1", FilePath: "/data/rec_1.wav", DurationMS: 1500},
		upd(resumed),
	})
	syncT(t, s)
	if c := getCall(t, s, id); !equalCall(c, resumed) {
		t.Fatalf("after resume/bridge/record:\n got %+v\nwant %+v", c, resumed)
	}

	publishAll(t, b, hangupEvents(resumed, sip))
	syncT(t, s)
	evs := callEvents(t, s, id)
	c := getCall(t, s, id)
	last := findLast(t, evs, "CallUpdated")
	var lastCall struct {
		Call callcore.Call `json:"call"`
	}
	if err := json.Unmarshal(last.Data, &lastCall); err != nil {
		t.Fatal(err)
	}
	if !equalCall(c, lastCall.Call) || c.State != callcore.StateTerminated || c.EndReason != callcore.EndLocalHangup {
		t.Fatalf("after hang-up: row %+v, latest CallUpdated %+v", c, lastCall.Call)
	}
	var seq int64
	if err := s.rdb.QueryRowContext(ctxT(t), `SELECT seq FROM calls WHERE id = ?`, id).Scan(&seq); err != nil || uint64(seq) != last.Seq {
		t.Fatalf("row seq %d (%v), want the latest CallUpdated's %d", seq, err, last.Seq)
	}

	// The whole flow: every session event and every SIP event of the
	// Call-ID (the INVITE before the session existed, the transaction-only
	// 100, the BYE's response without a Call-ID), none of the other call.
	got := types(t, evs)
	wantTypes := []string{"SipMessageReceived", "SendSipResponse", "IncomingCall", "CallCreated", "CallUpdated", "SendSipResponse",
		"CallStateChanged", "CallRinging", "AnswerCall", "StartMediaStream", "MediaStreamStarted", "CallUpdated", "AcceptCall",
		"SendSipResponse", "SipMessageReceived", "CallEstablished", "CallAnswered", "CallUpdated", "CallHeld", "CallUpdated",
		"CallResumed", "CallUpdated", "CallBridged", "RecordingFinished", "CallUpdated", "HangupCall", "TerminateSession", "CallUpdated",
		"SendSipMessage", "SipResponseReceived", "CallTerminated", "StopMediaStream", "MediaStreamStopped", "CallEnded", "CallUpdated"}
	if !slices.Equal(got, wantTypes) {
		t.Fatalf("flow:\n got %v\nwant %v", got, wantTypes)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq {
			t.Fatalf("flow not in seq order at %d: %d after %d", i, evs[i].Seq, evs[i-1].Seq)
		}
	}
	for _, e := range evs {
		if f := frame(t, e); f.SessionID != "" && f.SessionID != id {
			t.Fatalf("event of session %s in %s's flow: %s", f.SessionID, id, e.Frame)
		}
		if strings.Contains(string(e.Frame), "sip-other@") {
			t.Fatalf("the other call's SIP event in the flow: %s", e.Frame)
		}
	}
	other := getCall(t, s, "n1.other")
	if other.State != callcore.StateActive {
		t.Fatalf("other call state %s", other.State)
	}
}

// findLast returns the last stored event of type typ.
func findLast(t testing.TB, evs []Event, typ string) events.Frame {
	t.Helper()
	for i := len(evs) - 1; i >= 0; i-- {
		if f := frame(t, evs[i]); f.Type == typ {
			return f
		}
	}
	t.Fatalf("no %s in %v", typ, types(t, evs))
	return events.Frame{}
}

// equalCall compares calls with times compared as instants.
func equalCall(a, b callcore.Call) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) || !a.AnsweredAt.Equal(b.AnsweredAt) || !a.EndedAt.Equal(b.EndedAt) {
		return false
	}
	if (a.Media.Quality == nil) != (b.Media.Quality == nil) || (a.Media.Quality != nil && *a.Media.Quality != *b.Media.Quality) {
		return false
	}
	a.CreatedAt, a.AnsweredAt, a.EndedAt, a.Media.Quality = b.CreatedAt, b.AnsweredAt, b.EndedAt, b.Media.Quality
	return a == b
}

// An outbound call's flow holds the INVITE of its Call-ID, which the
// session named in InitiateCall, and the responses matched by transaction.
func TestOutboundFlow(t *testing.T) {
	b, s := attached(t, Config{}, bus.Config{})
	const id, sip = "n1.out1", "sip-out-1@callbus"
	c := callcore.Call{ID: id, Direction: callcore.Outbound, From: "sip:callbus@host", To: "sip:carol@192.0.2.30",
		State: callcore.StateInitiating, CreatedAt: t0, SipCallID: sip, ClientState: "abc"}
	ringing := c
	ringing.State = callcore.StateRinging
	answered := ringing
	answered.State, answered.AnsweredAt, answered.Media.Codec = callcore.StateActive, t0.Add(time.Second), "PCMA"
	ended := answered
	ended.State, ended.EndedAt, ended.EndReason, ended.SipStatus = callcore.StateTerminated, t0.Add(time.Minute), callcore.EndRemoteHangup, 200
	publishAll(t, b, []events.Event{
		&events.CmdMakeCall{SessionRef: ref(id), From: "sip:callbus@host", To: "sip:carol@192.0.2.30", ClientState: "abc"},
		&events.CallCreated{SessionRef: ref(id), Direction: "outbound", From: "sip:callbus@host", To: "sip:carol@192.0.2.30", ClientState: "abc", SipCallID: sip},
		upd(c),
		&events.StartMediaStream{SessionRef: ref(id)},
		&events.MediaStreamStarted{SessionRef: ref(id), LocalPort: 20002, Codec: "PCMU"},
		&events.InitiateCall{SessionRef: ref(id), From: "sip:callbus@host", To: "sip:carol@192.0.2.30", Headers: hdrs(sip)},
		&events.SendSipMessage{Destination: "sip:carol@192.0.2.30", Method: "INVITE", Headers: hdrs(sip, "CSeq", "1 INVITE"), TransactionID: "ct_inv"},
		&events.SipResponseReceived{TransactionID: "ct_inv", StatusCode: 180, ReasonPhrase: "Ringing"},
		&events.CallStateChanged{SessionRef: ref(id), NewState: "ringing"},
		&events.CallRinging{SessionRef: ref(id)},
		upd(ringing),
		&events.SipResponseReceived{TransactionID: "ct_inv", StatusCode: 200, ReasonPhrase: "OK", Headers: hdrs(sip)},
		&events.SendSipMessage{Destination: "sip:carol@192.0.2.30", Method: "ACK", Headers: hdrs(sip)},
		&events.CallEstablished{SessionRef: ref(id)},
		&events.CallAnswered{SessionRef: ref(id), Codec: "PCMA"},
		upd(answered),
		// The far end hangs up.
		&events.SipMessageReceived{Method: "BYE", Headers: hdrs(sip), TransactionID: "st_bye"},
		&events.SendSipResponse{TransactionID: "st_bye", StatusCode: 200, ReasonPhrase: "OK"},
		&events.CallTerminated{SessionRef: ref(id), Reason: "remote_hangup"},
		&events.CallEnded{SessionRef: ref(id), Reason: "remote_hangup", SipStatus: 200},
		upd(ended),
	})
	syncT(t, s)
	if got := getCall(t, s, id); !equalCall(got, ended) {
		t.Fatalf("after BYE:\n got %+v\nwant %+v", got, ended)
	}
	want := []string{"MakeCall", "CallCreated", "CallUpdated", "StartMediaStream", "MediaStreamStarted", "InitiateCall", "SendSipMessage",
		"SipResponseReceived", "CallStateChanged", "CallRinging", "CallUpdated", "SipResponseReceived", "SendSipMessage", "CallEstablished",
		"CallAnswered", "CallUpdated", "SipMessageReceived", "SendSipResponse", "CallTerminated", "CallEnded", "CallUpdated"}
	if got := types(t, callEvents(t, s, id)); !slices.Equal(got, want) {
		t.Fatalf("flow:\n got %v\nwant %v", got, want)
	}
}

func TestCallEventsByCause(t *testing.T) {
	b, s := attached(t, Config{}, bus.Config{})
	const id, sip = "n1.cause", "sip-cause@192.0.2.10"
	inboundSetup(t, b, id, sip)
	bustest.Publish(t, b, &events.SendSipMessage{Destination: "sip:alice@192.0.2.10", Method: "BYE", Headers: hdrs(sip), TransactionID: "ct_bye"})
	syncT(t, s)
	var byeID events.ID
	for _, e := range callEvents(t, s, id) {
		if f := frame(t, e); f.Type == "SendSipMessage" {
			byeID = f.ID
		}
	}
	if byeID.IsZero() {
		t.Fatal("BYE not in the flow")
	}
	// A transport error that names neither transaction nor Call-ID, caused
	// by the BYE; and one caused by it in turn.
	ctx := bus.WithCause(ctxT(t), byeID)
	if err := b.Publish(ctx, &events.TransportError{Error: "write udp: connection refused"}); err != nil {
		t.Fatal(err)
	}
	// An event of nobody: not in the flow.
	bustest.Publish(t, b, &events.TransportError{Error: "unrelated"})
	syncT(t, s)
	evs := callEvents(t, s, id)
	var terr events.Frame
	for _, e := range evs {
		if f := frame(t, e); f.Type == "TransportError" {
			if strings.Contains(string(f.Data), "unrelated") {
				t.Fatalf("unrelated transport error in the flow: %s", e.Frame)
			}
			terr = f
		}
	}
	if terr.Cause != byeID {
		t.Fatalf("caused TransportError missing from the flow: %v", types(t, evs))
	}
	ctx = bus.WithCause(ctxT(t), terr.ID)
	if err := b.Publish(ctx, &events.TransportError{Error: "second-hand"}); err != nil {
		t.Fatal(err)
	}
	syncT(t, s)
	evs = callEvents(t, s, id)
	if last := frame(t, evs[len(evs)-1]); last.Type != "TransportError" || !strings.Contains(string(last.Data), "second-hand") {
		t.Fatalf("event caused by an attributed event missing: last is %s", evs[len(evs)-1].Frame)
	}

	// Paging through the flow: afterSeq and limit.
	all := callEvents(t, s, id)
	page, err := s.CallEvents(ctxT(t), id, all[2].Seq, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 3 || page[0].Seq != all[3].Seq || page[2].Seq != all[5].Seq {
		t.Fatalf("page after %d: %v", all[2].Seq, page)
	}
	if _, err := s.CallEvents(ctxT(t), "n1.nobody", 0, 0); err == nil {
		t.Fatal("CallEvents of an unknown call: no error")
	} else {
		wantCode(t, err, callcore.CodeNotFound, "")
	}
	if _, err := s.Call(ctxT(t), "n1.nobody"); err == nil {
		t.Fatal("Call of an unknown call: no error")
	} else {
		wantCode(t, err, callcore.CodeNotFound, "")
	}
}

func TestCommandOfNoCallMakesNoRow(t *testing.T) {
	b, s := attached(t, Config{}, bus.Config{})
	// A refused MakeCall: the command is published, no call follows.
	bustest.Publish(t, b, &events.CmdMakeCall{SessionRef: ref("n1.refused"), To: "bad"})
	syncT(t, s)
	if _, err := s.Call(ctxT(t), "n1.refused"); err == nil {
		t.Fatal("a call row for a command that made no call")
	}
	calls, _, err := s.Calls(ctxT(t), CallFilter{})
	if err != nil || len(calls) != 0 {
		t.Fatalf("Calls = %v, %v", calls, err)
	}
}

func TestCallsPagination(t *testing.T) {
	b, s := attached(t, Config{}, bus.Config{})
	const n = 120
	ended := map[string]bool{}
	for i := range n {
		id := fmt.Sprintf("n1.c%03d", i)
		c := callcore.Call{ID: id, Direction: callcore.Outbound, From: "a", To: "b", State: callcore.StateInitiating,
			CreatedAt: t0.Add(time.Duration(i) * time.Millisecond)}
		bustest.Publish(t, b, upd(c))
		if i%3 == 0 {
			c.State, c.EndReason, c.EndedAt = callcore.StateTerminated, callcore.EndFailed, c.CreatedAt
			bustest.Publish(t, b, upd(c))
			ended[id] = true
		}
	}
	syncT(t, s)

	page := func(f CallFilter) ([]callcore.Call, string) {
		t.Helper()
		calls, next, err := s.Calls(ctxT(t), f)
		if err != nil {
			t.Fatal(err)
		}
		return calls, next
	}
	for _, tc := range []struct {
		name  string
		state callcore.CallState
		want  int
	}{
		{"state=any", "", n},
		{"state=terminated", callcore.StateTerminated, len(ended)},
		{"state=initiating", callcore.StateInitiating, n - len(ended)},
		{"state=active", callcore.StateActive, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]bool{}
			var all []callcore.Call
			cursor, pages := "", 0
			for {
				calls, next := page(CallFilter{State: tc.state, Limit: 50, Cursor: cursor})
				pages++
				if len(calls) > 50 {
					t.Fatalf("page of %d", len(calls))
				}
				for _, c := range calls {
					if seen[c.ID] {
						t.Fatalf("call %s twice", c.ID)
					}
					seen[c.ID] = true
					if tc.state != "" && c.State != tc.state {
						t.Fatalf("call %s in state %s under filter %s", c.ID, c.State, tc.state)
					}
					if ended[c.ID] != (c.State == callcore.StateTerminated) {
						t.Fatalf("call %s state %s", c.ID, c.State)
					}
				}
				all = append(all, calls...)
				if next == "" {
					break
				}
				if len(calls) != 50 {
					t.Fatalf("short page of %d with a next cursor", len(calls))
				}
				cursor = next
			}
			if len(seen) != tc.want {
				t.Fatalf("%d calls listed, want %d", len(seen), tc.want)
			}
			if wantPages := max(1, (tc.want+49)/50); pages != wantPages {
				t.Fatalf("%d pages, want %d", pages, wantPages)
			}
			for i := 1; i < len(all); i++ {
				a, b := all[i-1], all[i]
				if a.CreatedAt.Before(b.CreatedAt) || (a.CreatedAt.Equal(b.CreatedAt) && a.ID < b.ID) {
					t.Fatalf("not newest first at %d: %s %v then %s %v", i, a.ID, a.CreatedAt, b.ID, b.CreatedAt)
				}
			}
		})
	}
	// Newest first: the last created is listed first.
	calls, _ := page(CallFilter{Limit: 1})
	if len(calls) != 1 || calls[0].ID != fmt.Sprintf("n1.c%03d", n-1) {
		t.Fatalf("first listed = %v", calls)
	}
	if calls, _ := page(CallFilter{}); len(calls) != 50 {
		t.Fatalf("default limit gives %d", len(calls))
	}
	for _, bad := range []string{"!!!", "bm9jb2xvbg", "eHl6OmFiYw"} { // not base64; "nocolon"; "xyz:abc"
		_, _, err := s.Calls(ctxT(t), CallFilter{Cursor: bad})
		wantCode(t, err, callcore.CodeValidationFailed, "cursor")
	}
	_, _, err := s.Calls(ctxT(t), CallFilter{State: "dancing"})
	wantCode(t, err, callcore.CodeValidationFailed, "state")
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	b1, err := bus.New(bus.Config{Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	s1 := newOpen(t, dir, Config{}, nil)
	if err := s1.Attach(b1); err != nil {
		t.Fatal(err)
	}
	inboundSetup(t, b1, "n1.done", "sip-done@x")
	hangup(t, b1, "n1.done", "sip-done@x")
	inboundSetup(t, b1, "n1.live", "sip-live@x")
	before := callEventsAfterSync(t, s1, b1, "n1.done")
	doneBefore := getCall(t, s1, "n1.done")
	var doneSeq int64
	if err := s1.rdb.QueryRowContext(ctxT(t), `SELECT seq FROM calls WHERE id = 'n1.done'`).Scan(&doneSeq); err != nil {
		t.Fatal(err)
	}
	beforeLive := callEventsAfterSync(t, s1, b1, "n1.live")
	// Events still in flight when the bus closes are kept by Close.
	lastLive := answeredCall("n1.live", "sip-live@x")
	lastLive.Media.Quality = &callcore.CallQuality{MOS: 4}
	bustest.Publish(t, b1, &events.MediaQualityUpdate{SessionRef: ref("n1.live"), QualityMetrics: events.QualityMetrics{MOS: 4}})
	bustest.Publish(t, b1, upd(lastLive))
	oldLast := b1.LastSeq()
	if err := b1.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	logged := &logs{}
	s2 := openStoreLog(t, dir, Config{}, slog.New(logged))
	// A CallEnded and the ended call's CallUpdated were recorded for the
	// call left live.
	if got := s2.LastSeq(); got != oldLast+2 {
		t.Fatalf("LastSeq after restart = %d, want the old bus's %d + 2 for the live call's end", got, oldLast)
	}
	if len(logged.find("marked failed")) != 1 {
		t.Fatalf("the ended live call was not logged: %v", logged.recs)
	}
	done := getCall(t, s2, "n1.done")
	var doneSeqAfter int64
	if err := s2.rdb.QueryRowContext(ctxT(t), `SELECT seq FROM calls WHERE id = 'n1.done'`).Scan(&doneSeqAfter); err != nil {
		t.Fatal(err)
	}
	if !equalCall(done, doneBefore) || doneSeqAfter != doneSeq {
		t.Fatalf("ended call across the restart: %+v at seq %d, before %+v at seq %d", done, doneSeqAfter, doneBefore, doneSeq)
	}
	if done.State != callcore.StateTerminated || done.EndReason != callcore.EndLocalHangup {
		t.Fatalf("ended call after restart: %+v", done)
	}
	if after := callEvents(t, s2, "n1.done"); !sameEvents(before, after) {
		t.Fatalf("flow changed across the restart:\n before %v\n after %v", types(t, before), types(t, after))
	}
	live := getCall(t, s2, "n1.live")
	if live.State != callcore.StateTerminated || live.EndReason != callcore.EndFailed || live.EndedAt.IsZero() {
		t.Fatalf("live call after restart: %+v", live)
	}
	if live.Media.Quality == nil || live.Media.Quality.MOS != 4 {
		t.Fatalf("event published just before the bus closed was lost: %+v", live.Media)
	}
	liveEvs := callEvents(t, s2, "n1.live")
	if !sameEvents(beforeLive, liveEvs[:len(beforeLive)]) || len(liveEvs) != len(beforeLive)+4 {
		t.Fatalf("live call's flow after restart: %v", types(t, liveEvs))
	}
	endEv := frame(t, liveEvs[len(liveEvs)-2])
	if endEv.Type != "CallEnded" || endEv.Seq != oldLast+1 || endEv.Node != "n1" ||
		!strings.Contains(string(endEv.Data), `"reason":"failed"`) || !strings.Contains(string(endEv.Data), "restarted") {
		t.Fatalf("no CallEnded saying why the live call ended: %s", liveEvs[len(liveEvs)-2].Frame)
	}
	_, upEv, err := events.Unmarshal(liveEvs[len(liveEvs)-1].Frame)
	if err != nil {
		t.Fatalf("the store's CallUpdated is not a valid frame: %v", err)
	}
	if u, ok := upEv.(*events.CallUpdated); !ok || !equalCall(u.Call, live) || frame(t, liveEvs[len(liveEvs)-1]).Cause != endEv.ID {
		t.Fatalf("the last event of the ended call is %s, want its CallUpdated equal to the row %+v", liveEvs[len(liveEvs)-1].Frame, live)
	}
	if _, _, err := events.Unmarshal(liveEvs[len(liveEvs)-2].Frame); err != nil {
		t.Fatalf("the store's CallEnded is not a valid frame: %v", err)
	}

	// A bus that does not continue the seqs is refused.
	if err := s2.Attach(bustest.NewBus(t, bus.Config{})); err == nil {
		t.Fatal("Attach to a bus numbering from 0 over a store at seq > 0: no error")
	}
	b2 := bustest.NewBus(t, bus.Config{Node: "n1", StartSeq: s2.LastSeq()})
	if err := s2.Attach(b2); err != nil {
		t.Fatal(err)
	}
	newCall := callcore.Call{ID: "n1.new", Direction: callcore.Outbound, State: callcore.StateInitiating, CreatedAt: t0.Add(time.Hour)}
	bustest.Publish(t, b2, upd(newCall))
	syncT(t, s2)
	evs := callEvents(t, s2, "n1.new")
	if len(evs) != 1 || evs[0].Seq != oldLast+3 {
		t.Fatalf("new run's first event: %v, want seq %d", evs, oldLast+3)
	}
	calls, _, err := s2.Calls(ctxT(t), CallFilter{})
	if err != nil || len(calls) != 3 || calls[0].ID != "n1.new" {
		t.Fatalf("Calls after restart: %v, %v", calls, err)
	}
}

// A Close whose deadline has passed commits nothing more but closes at
// once: the batch in hand rolls back whole, what was committed before is
// all there after a restart, and the error says what was not stored.
func TestCloseAtTheDeadline(t *testing.T) {
	dir := t.TempDir()
	b1, err := bus.New(bus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// One batch, committed only by Sync or when the tap is drained.
	s1 := newOpen(t, dir, Config{BatchInterval: time.Hour, BatchSize: 1 << 20}, nil)
	if err := s1.Attach(b1); err != nil {
		t.Fatal(err)
	}
	inboundSetup(t, b1, "n1.a", "sip-a@x")
	hangup(t, b1, "n1.a", "sip-a@x")
	syncT(t, s1)
	committed := b1.LastSeq()
	for range 5000 {
		bustest.Publish(t, b1, &events.MediaQualityUpdate{SessionRef: ref("n1.a"), QualityMetrics: events.QualityMetrics{MOS: 4}})
	}
	all := b1.LastSeq()
	if err := b1.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	begin := time.Now()
	err = s1.Close(ctx)
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("Close with an ended ctx took %v", took)
	}
	if again := s1.Close(t.Context()); again != err {
		t.Fatalf("second Close = %v, want the first's %v", again, err)
	}

	s2 := openStore(t, dir, Config{})
	switch got := s2.LastSeq(); {
	case err == nil && got != all:
		t.Fatalf("Close reported nothing cut, yet LastSeq = %d, want %d", got, all)
	case err != nil && got != committed:
		t.Fatalf("Close cut short (%v), LastSeq = %d, want the committed %d: a batch must roll back whole", err, got, committed)
	case err != nil && !strings.Contains(err.Error(), fmt.Sprintf("cut short before every event through seq %d was stored", all)):
		t.Fatalf("Close = %v, want it to say it was cut short before seq %d", err, all)
	}
	if c := getCall(t, s2, "n1.a"); c.State != callcore.StateTerminated {
		t.Fatalf("committed call after restart: %+v", c)
	}
}

// TestRestartSeqContinues checks LastSeq after a clean shutdown: the old
// bus's LastSeq exactly.
func TestRestartSeqContinues(t *testing.T) {
	dir := t.TempDir()
	b1, err := bus.New(bus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s1 := newOpen(t, dir, Config{}, nil)
	if err := s1.Attach(b1); err != nil {
		t.Fatal(err)
	}
	inboundSetup(t, b1, "n1.a", "sip-a@x")
	hangup(t, b1, "n1.a", "sip-a@x")
	want := b1.LastSeq()
	if err := b1.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dir, Config{})
	if got := s2.LastSeq(); got != want {
		t.Fatalf("LastSeq = %d, want %d", got, want)
	}
	if evs := callEvents(t, s2, "n1.a"); evs[0].Seq != 1 || evs[len(evs)-1].Seq != want || len(evs) != int(want) {
		t.Fatalf("%d events, seqs %d..%d, want 1..%d", len(evs), evs[0].Seq, evs[len(evs)-1].Seq, want)
	}
}

func callEventsAfterSync(t *testing.T, s *Store, b bus.Bus, id string) []Event {
	t.Helper()
	syncT(t, s)
	return callEvents(t, s, id)
}

func sameEvents(a, b []Event) bool {
	return slices.EqualFunc(a, b, func(x, y Event) bool { return x.Seq == y.Seq && string(x.Frame) == string(y.Frame) })
}

func TestSyncCommitsAtOnce(t *testing.T) {
	// A batch would wait an hour: Sync must not.
	b, s := attached(t, Config{BatchInterval: time.Hour}, bus.Config{})
	if err := s.Sync(ctxT(t)); err != nil {
		t.Fatalf("Sync on an idle bus: %v", err)
	}
	for i := range 5 {
		id := fmt.Sprintf("n1.sync%d", i)
		bustest.Publish(t, b, upd(ringingCall(id, id+"@sip")))
		syncT(t, s)
		if c := getCall(t, s, id); c.State != callcore.StateRinging {
			t.Fatalf("call %s after Sync: %+v", id, c)
		}
	}
	if got, want := s.LastSeq(), b.LastSeq(); got != want {
		t.Fatalf("LastSeq = %d, bus at %d", got, want)
	}
	s2 := openStore(t, t.TempDir(), Config{})
	if err := s2.Sync(ctxT(t)); err != ErrNotAttached {
		t.Fatalf("Sync before Attach = %v", err)
	}
}

func TestSyncAfterClose(t *testing.T) {
	b, s := attached(t, Config{}, bus.Config{})
	bustest.Publish(t, b, upd(ringingCall("n1.x", "sip-x@x")))
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Close committed what the tap held; a later event can never be.
	bustest.Publish(t, b, &events.CallRinging{SessionRef: ref("n1.x")})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Sync(ctx); err != ErrClosed {
		t.Fatalf("Sync after Close = %v, want ErrClosed", err)
	}
	if err := s.Attach(b); err != ErrClosed {
		t.Fatalf("Attach after Close = %v", err)
	}
	if _, err := s.Call(ctx, "n1.x"); err != ErrClosed {
		t.Fatalf("Call after Close = %v", err)
	}
	if _, _, err := s.Calls(ctx, CallFilter{}); err != ErrClosed {
		t.Fatalf("Calls after Close = %v", err)
	}
}

// TestInviteBeforeTheCall: the INVITE that came before the session knew
// the call is in its flow, by the Call-ID its IncomingCall named.
func TestInviteBeforeTheCall(t *testing.T) {
	b, s := attached(t, Config{}, bus.Config{})
	const id, sip = "n1.early", "sip-early@x"
	publishAll(t, b, []events.Event{
		&events.SipMessageReceived{Method: "INVITE", Headers: hdrs(sip), TransactionID: "st_e"},
		&events.IncomingCall{SessionRef: ref(id), CallID: sip},
		&events.CallCreated{SessionRef: ref(id), Direction: "inbound"},
		upd(ringingCall(id, sip)),
	})
	syncT(t, s)
	if got := types(t, callEvents(t, s, id)); !slices.Equal(got, []string{"SipMessageReceived", "IncomingCall", "CallCreated", "CallUpdated"}) {
		t.Fatalf("flow %v", got)
	}
}

// TestLateEventAfterEnd: an update of a call that ended in an earlier batch
// (a recording finishing after the hang-up) replaces its row, and a late
// event that is not a CallUpdated changes nothing.
func TestLateEventAfterEnd(t *testing.T) {
	b, s := attached(t, Config{}, bus.Config{})
	const id, sip = "n1.late", "sip-late@x"
	inboundSetup(t, b, id, sip)
	hangup(t, b, id, sip)
	syncT(t, s) // committed
	ended := getCall(t, s, id)
	withRec := ended
	withRec.RecordingID = "rec_late"
	publishAll(t, b, []events.Event{
		&events.RecordingFinished{SessionRef: ref(id), RecordingID: "rec_late", FilePath: "/d/rec_late.wav", DurationMS: 10},
		upd(withRec),
		&events.CallRinging{SessionRef: ref(id)},
	})
	syncT(t, s)
	c := getCall(t, s, id)
	if !equalCall(c, withRec) || c.State != callcore.StateTerminated || c.EndReason != callcore.EndLocalHangup {
		t.Fatalf("after late events: %+v", c)
	}
	if _, err := s.Recording(ctxT(t), "rec_late"); err != nil {
		t.Fatal(err)
	}
}

// A version 1 database (whose events rows kept the frame's fields in
// columns of their own) opens as version 2 with every event kept.
func TestMigrateFromVersion1(t *testing.T) {
	dir := t.TempDir()
	db, err := openDB(dir+"/"+FileName, false)
	if err != nil {
		t.Fatal(err)
	}
	const id = "n1.v1"
	c := answeredCall(id, "sip-v1@x")
	ev := upd(c)
	env := events.Envelope{Seq: 7, ID: events.ID{Hi: 1, Lo: 7}, Time: t0, Node: "n1"}
	f, err := events.Marshal(env, ev)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(c)
	for _, q := range []string{
		`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID`,
		`INSERT INTO meta VALUES ('schema_version', '1')`,
		`CREATE TABLE calls (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, state TEXT NOT NULL, seq INTEGER NOT NULL,
			sip_call_id TEXT, note TEXT, call BLOB NOT NULL) WITHOUT ROWID`,
		`CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, time INTEGER NOT NULL, channel TEXT NOT NULL,
			type TEXT NOT NULL, session_id TEXT, call_id TEXT, sip_call_id TEXT, cause TEXT, frame BLOB NOT NULL)`,
		`CREATE INDEX events_call ON events (call_id, seq) WHERE call_id IS NOT NULL`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO events VALUES (7, ?, ?, 'session_to_app', 'CallUpdated', ?, ?, NULL, NULL, ?)`,
		env.ID.String(), t0.UnixNano(), id, id, f); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO calls VALUES (?, ?, 'active', 7, 'sip-v1@x', NULL, ?)`, id, t0.UnixNano(), raw); err != nil {
		t.Fatal(err)
	}
	db.Close()

	logged := &logs{}
	s := openStoreLog(t, dir, Config{}, slog.New(logged))
	evs := callEvents(t, s, id)
	if len(evs) != 3 || evs[0].Seq != 7 || string(evs[0].Frame) != string(f) || frame(t, evs[1]).Type != "CallEnded" || evs[2].Seq != 9 {
		t.Fatalf("events after the migration: %v", types(t, evs))
	}
	var v string
	if err := s.rdb.QueryRowContext(ctxT(t), `SELECT value FROM meta WHERE key = 'schema_version'`).Scan(&v); err != nil || v != "2" {
		t.Fatalf("schema_version %q (%v)", v, err)
	}
	// The call it held live was ended, as after any restart.
	if got := getCall(t, s, id); got.State != callcore.StateTerminated || got.EndReason != callcore.EndFailed {
		t.Fatalf("call after the migration: %+v", got)
	}
}

// Paging through a flow whose events are stored under two keys (the call,
// and the SIP Call-ID of SIP events no call claimed) in chunks that
// interleave, in one batch and across batches: every page is the next
// events by seq, with no hole and no duplicate.
func TestCallEventsPagesAcrossChunks(t *testing.T) {
	b, s := attached(t, Config{BatchInterval: time.Hour}, bus.Config{})
	const id, sip = "n1.pages", "sip-pages@x"
	bustest.Publish(t, b, upd(ringingCall(id, sip)))
	for round := range 4 {
		for i := range 5 {
			// A SIP message of the Call-ID that no transaction or cause ties
			// to the call: stored under the Call-ID's key.
			bustest.Publish(t, b, &events.SipMessageReceived{Method: "OPTIONS", Headers: hdrs(sip),
				TransactionID: fmt.Sprintf("st_%d_%d", round, i)})
			bustest.Publish(t, b, &events.CallStateChanged{SessionRef: ref(id), NewState: "ringing"})
		}
		syncT(t, s) // a batch per round
	}
	all := callEvents(t, s, id)
	if len(all) != 41 {
		t.Fatalf("%d events, want 41: %v", len(all), types(t, all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq != all[i-1].Seq+1 {
			t.Fatalf("flow not contiguous at %d: %d after %d", i, all[i].Seq, all[i-1].Seq)
		}
	}
	for _, limit := range []int{1, 3, 7, 40} {
		var got []Event
		after := uint64(0)
		for {
			page, err := s.CallEvents(ctxT(t), id, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if len(page) > limit {
				t.Fatalf("limit=%d: a page of %d", limit, len(page))
			}
			got = append(got, page...)
			after = page[len(page)-1].Seq
		}
		if !sameEvents(got, all) {
			t.Fatalf("limit=%d: pages give %d events, want the %d of the flow", limit, len(got), len(all))
		}
	}
}
