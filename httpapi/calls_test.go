package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

func TestMakeCall(t *testing.T) {
	e := newEnv(t, keyedConfig())
	resp, body := e.request(t, specValid, "POST", "/v1/calls", map[string]any{
		"to": "sip:bob@127.0.0.1:5062", "from": "sip:alice@example.com", "client_state": "abc",
		"headers": map[string]string{"X-Campaign": "42", "x-b": "two"}, "ring_timeout_s": 20,
		"webhook_url": "https://app.example.com/hook",
	}, authed())
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/calls = %d %s", resp.StatusCode, body)
	}
	c := decodeJSON[callcore.Call](t, body)
	if !strings.HasPrefix(c.ID, "t.") || c.State != callcore.StateInitiating || c.To != "sip:bob@127.0.0.1:5062" ||
		c.ClientState != "abc" || c.Direction != callcore.Outbound {
		t.Errorf("created call %+v", c)
	}
	if loc := resp.Header.Get("Location"); loc != "/v1/calls/"+c.ID {
		t.Errorf("Location = %q, want /v1/calls/%s", loc, c.ID)
	}
	if resp.Header.Get(HeaderIdempotentReplayed) != "" {
		t.Error("a first request is marked replayed")
	}
	cmd, ok := e.session.last().(*events.CmdMakeCall)
	if !ok {
		t.Fatalf("the session got %v, want MakeCall", e.session.last())
	}
	wantHeaders := events.Headers{{Name: "X-Campaign", Value: "42"}, {Name: "x-b", Value: "two"}}
	if cmd.SessionID != c.ID || cmd.From != "sip:alice@example.com" || cmd.RingTimeoutS != 20 ||
		cmd.WebhookURL != "https://app.example.com/hook" || fmt.Sprint(cmd.Headers) != fmt.Sprint(wantHeaders) {
		t.Errorf("MakeCall %+v, want the request's fields (headers sorted: %v)", *cmd, wantHeaders)
	}

	resp, body = e.request(t, specValid, "GET", "/v1/calls/"+c.ID, nil, authed())
	if got := decodeJSON[callcore.Call](t, body); resp.StatusCode != 200 || got.ID != c.ID {
		t.Errorf("GET /v1/calls/%s = %d %s", c.ID, resp.StatusCode, body)
	}
}

func TestMakeCallIdempotency(t *testing.T) {
	e := newEnv(t, Config{APIKeys: []string{testKey, "other-key-0123456789"}})
	req := map[string]any{"to": "sip:bob@example.com"}
	withKey := func(auth, key string) http.Header {
		return http.Header{"Authorization": {"Bearer " + auth}, HeaderIdempotencyKey: {key}}
	}
	resp, body := e.request(t, specValid, "POST", "/v1/calls", req, withKey(testKey, "k-1"))
	if resp.StatusCode != 201 {
		t.Fatalf("first = %d %s", resp.StatusCode, body)
	}
	first := decodeJSON[callcore.Call](t, body)

	// Same key, same body (other spacing): the same call, marked replayed.
	resp, body = e.request(t, specValid, "POST", "/v1/calls", `{ "to" : "sip:bob@example.com" }`, withKey(testKey, "k-1"))
	again := decodeJSON[callcore.Call](t, body)
	if resp.StatusCode != 201 || again.ID != first.ID || resp.Header.Get(HeaderIdempotentReplayed) != "true" ||
		resp.Header.Get("Location") != "/v1/calls/"+first.ID {
		t.Errorf("replay = %d %v (%s), want 201 with call %s and %s: true", resp.StatusCode, resp.Header, body, first.ID, HeaderIdempotentReplayed)
	}
	if n := e.session.count("MakeCall"); n != 1 {
		t.Errorf("the session got %d MakeCall, want 1", n)
	}

	// Same key, another body: refused, naming the header.
	resp, body = e.request(t, specValid, "POST", "/v1/calls", map[string]any{"to": "sip:carol@example.com"}, withKey(testKey, "k-1"))
	if p := wantProblem(t, resp, body, 422, callcore.CodeValidationFailed); p.Field != HeaderIdempotencyKey {
		t.Errorf("conflict field = %q, want %s", p.Field, HeaderIdempotencyKey)
	}

	// Another API key has keys of its own.
	resp, body = e.request(t, specValid, "POST", "/v1/calls", req, withKey("other-key-0123456789", "k-1"))
	if other := decodeJSON[callcore.Call](t, body); resp.StatusCode != 201 || other.ID == first.ID ||
		resp.Header.Get(HeaderIdempotentReplayed) != "" {
		t.Errorf("another key's k-1 = %d %s, want a new call", resp.StatusCode, body)
	}

	// A refused call is not remembered: the retry is tried again.
	e.session.setReply(func(events.Event) error {
		return callcore.Errorf(callcore.CodeUnavailable, "too many calls")
	})
	resp, body = e.request(t, specValid, "POST", "/v1/calls", req, withKey(testKey, "k-2"))
	wantProblem(t, resp, body, 503, callcore.CodeUnavailable)
	e.session.setReply(nil)
	resp, body = e.request(t, specValid, "POST", "/v1/calls", req, withKey(testKey, "k-2"))
	if resp.StatusCode != 201 || resp.Header.Get(HeaderIdempotentReplayed) != "" {
		t.Errorf("retry after a failure = %d %s, want a new call", resp.StatusCode, body)
	}

	// A key that is not printable ASCII is refused.
	resp, body = e.request(t, specInvalid, "POST", "/v1/calls", req, withKey(testKey, strings.Repeat("k", 300)))
	if p := wantProblem(t, resp, body, 422, callcore.CodeValidationFailed); p.Field != HeaderIdempotencyKey {
		t.Errorf("long key field = %q", p.Field)
	}
}

// TestMakeCallIdempotencyConcurrent sends one key many times at once: one
// call is made, and every answer names it.
func TestMakeCallIdempotencyConcurrent(t *testing.T) {
	e := newEnv(t, keyedConfig())
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			h := authed()
			h.Set(HeaderIdempotencyKey, "same")
			resp, body := e.request(t, specValid, "POST", "/v1/calls", map[string]any{"to": "sip:x@example.com"}, h)
			if resp.StatusCode != 201 {
				t.Errorf("POST = %d %s", resp.StatusCode, body)
				return
			}
			var c callcore.Call
			_ = json.Unmarshal(body, &c)
			ids[i] = c.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Fatalf("ids %q, want one call", ids)
		}
	}
	if got := e.session.count("MakeCall"); got != 1 {
		t.Errorf("the session got %d MakeCall, want 1", got)
	}
}

func TestListCalls(t *testing.T) {
	e := newEnv(t, keyedConfig())
	var made []string
	for i := range 3 {
		made = append(made, e.makeCall(t, fmt.Sprintf("sip:u%d@example.com", i)).ID)
	}
	resp, body := e.request(t, specValid, "GET", "/v1/calls?limit=2", nil, authed())
	page := decodeJSON[CallList](t, body)
	if resp.StatusCode != 200 || len(page.Calls) != 2 || page.NextCursor == "" {
		t.Fatalf("first page = %d %s", resp.StatusCode, body)
	}
	resp, body = e.request(t, specValid, "GET", "/v1/calls?limit=2&cursor="+page.NextCursor, nil, authed())
	page2 := decodeJSON[CallList](t, body)
	if resp.StatusCode != 200 || len(page2.Calls) != 1 || page2.NextCursor != "" {
		t.Fatalf("second page = %d %s", resp.StatusCode, body)
	}
	seen := map[string]bool{}
	for _, c := range append(page.Calls, page2.Calls...) {
		seen[c.ID] = true
	}
	for _, id := range made {
		if !seen[id] {
			t.Errorf("call %s is on no page", id)
		}
	}
	resp, body = e.request(t, specValid, "GET", "/v1/calls?state=initiating", nil, authed())
	if l := decodeJSON[CallList](t, body); resp.StatusCode != 200 || len(l.Calls) != 3 {
		t.Errorf("state=initiating = %d, %d calls", resp.StatusCode, len(l.Calls))
	}
	resp, body = e.request(t, specValid, "GET", "/v1/calls?state=terminated", nil, authed())
	if l := decodeJSON[CallList](t, body); resp.StatusCode != 200 || len(l.Calls) != 0 || !strings.Contains(string(body), `"calls":[]`) {
		t.Errorf("state=terminated = %d %s, want an empty list", resp.StatusCode, body)
	}
}

func TestCallEvents(t *testing.T) {
	e := newEnv(t, keyedConfig())
	c := e.makeCall(t, "sip:bob@example.com")
	resp, body := e.request(t, specValid, "GET", "/v1/calls/"+c.ID+"/events", nil, authed())
	if resp.StatusCode != 200 {
		t.Fatalf("GET events = %d %s", resp.StatusCode, body)
	}
	list := decodeJSON[EventList](t, body)
	var types []string
	var seqs []uint64
	for _, raw := range list.Events {
		var f events.Frame
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("frame %s: %v", raw, err)
		}
		types, seqs = append(types, f.Type), append(seqs, f.Seq)
		if f.SessionID != c.ID {
			t.Errorf("frame %s is not of call %s", raw, c.ID)
		}
	}
	if strings.Join(types, ",") != "MakeCall,CallCreated,CallUpdated" || seqs[1] <= seqs[0] || seqs[2] <= seqs[1] {
		t.Fatalf("events %v (seqs %v), want MakeCall, CallCreated, CallUpdated by seq", types, seqs)
	}
	resp, body = e.request(t, specValid, "GET", fmt.Sprintf("/v1/calls/%s/events?after_seq=%d&limit=1", c.ID, seqs[0]), nil, authed())
	if l := decodeJSON[EventList](t, body); resp.StatusCode != 200 || len(l.Events) != 1 || !strings.Contains(string(l.Events[0]), `"CallCreated"`) {
		t.Errorf("after_seq=%d&limit=1 = %d %s, want CallCreated alone", seqs[0], resp.StatusCode, body)
	}
	resp, body = e.request(t, specValid, "GET", "/v1/calls/t.nosuchcall/events", nil, authed())
	wantProblem(t, resp, body, 404, callcore.CodeNotFound)
}

// TestCommands sends each command and checks what reached the session and
// the 202 answer.
func TestCommands(t *testing.T) {
	e := newEnv(t, keyedConfig())
	c := e.makeCall(t, "sip:bob@example.com")
	peer := e.makeCall(t, "sip:carol@example.com")
	ref := events.SessionRef{SessionID: c.ID}
	for _, tc := range []struct {
		method, path string
		body         any
		want         events.Event
	}{
		{"POST", "/answer", nil, &events.CmdAnswerCall{SessionRef: ref}},
		{"POST", "/answer", map[string]any{}, &events.CmdAnswerCall{SessionRef: ref}},
		{"POST", "/reject", map[string]any{"status": 486, "reason": "Busy Here"}, &events.CmdRejectCall{SessionRef: ref, StatusCode: 486, Reason: "Busy Here"}},
		{"POST", "/reject", nil, &events.CmdRejectCall{SessionRef: ref}},
		{"POST", "/hold", nil, &events.CmdHoldCall{SessionRef: ref}},
		{"POST", "/resume", nil, &events.CmdResumeCall{SessionRef: ref}},
		{"POST", "/transfer", map[string]any{"target": "sip:carol@example.com"}, &events.CmdTransferCall{SessionRef: ref, Target: "sip:carol@example.com", TransferType: "blind"}},
		{"POST", "/transfer", map[string]any{"target": "sip:carol@example.com", "type": "attended", "consult_call_id": peer.ID},
			&events.CmdTransferCall{SessionRef: ref, Target: "sip:carol@example.com", TransferType: "attended", ConsultSessionID: peer.ID}},
		{"POST", "/dtmf", map[string]any{"digits": "12*#AD", "method": "info", "duration_ms": 80}, &events.CmdSendDtmf{SessionRef: ref, Digits: "12*#AD", Method: "info", DurationMS: 80}},
		{"POST", "/dtmf", map[string]any{"digits": "5"}, &events.CmdSendDtmf{SessionRef: ref, Digits: "5"}},
		{"POST", "/play", map[string]any{"file": "prompts/hello.wav", "loop": 2}, &events.CmdPlayAudio{SessionRef: ref, File: "prompts/hello.wav", LoopCount: 2}},
		{"POST", "/play", map[string]any{"url": "https://example.com/a.wav"}, &events.CmdPlayAudio{SessionRef: ref, URL: "https://example.com/a.wav"}},
		{"DELETE", "/play", nil, &events.CmdStopAudio{SessionRef: ref}},
		{"POST", "/record", map[string]any{"max_duration_s": 30}, &events.CmdStartRecording{SessionRef: ref, MaxDurationS: 30}},
		{"POST", "/record", nil, &events.CmdStartRecording{SessionRef: ref}},
		{"DELETE", "/record", nil, &events.CmdStopRecording{SessionRef: ref}},
		{"POST", "/bridge", map[string]any{"call_id": peer.ID}, &events.CmdBridgeCalls{SessionRef: ref, PeerSessionID: peer.ID}},
		{"POST", "/hangup", nil, &events.CmdHangupCall{SessionRef: ref}},
		{"DELETE", "", nil, &events.CmdHangupCall{SessionRef: ref}},
	} {
		t.Run(fmt.Sprintf("method=%s/path=%s/body=%v", tc.method, tc.path, tc.body != nil), func(t *testing.T) {
			resp, body := e.request(t, specValid, tc.method, "/v1/calls/"+c.ID+tc.path, tc.body, authed())
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("= %d %s, want 202", resp.StatusCode, body)
			}
			if got := decodeJSON[callcore.Call](t, body); got.ID != c.ID {
				t.Errorf("answered with call %s, want %s", got.ID, c.ID)
			}
			got, _ := json.Marshal(e.session.last())
			want, _ := json.Marshal(tc.want)
			if e.session.last().Type() != tc.want.Type() || string(got) != string(want) {
				t.Errorf("the session got %s %s, want %s %s", e.session.last().Type(), got, tc.want.Type(), want)
			}
		})
	}
}

// TestCommandErrors checks how the session's refusals are answered.
func TestCommandErrors(t *testing.T) {
	e := newEnv(t, keyedConfig())
	c := e.makeCall(t, "sip:bob@example.com")
	for _, tc := range []struct {
		name   string
		reply  error
		path   string
		body   any
		status int
		code   callcore.Code
		field  string
	}{
		{"code=invalid_state", callcore.Errorf(callcore.CodeInvalidState, "call is ringing"), "/hold", nil, 409, callcore.CodeInvalidState, ""},
		{"code=unavailable", callcore.Errorf(callcore.CodeUnavailable, "no session"), "/hold", nil, 503, callcore.CodeUnavailable, ""},
		{"code=validation_failed/field=status", &callcore.Error{Code: callcore.CodeValidationFailed, Field: "status_code", Message: "x"},
			"/reject", map[string]any{"status": 486}, 422, callcore.CodeValidationFailed, "status"},
		{"code=validation_failed/field=call_id", &callcore.Error{Code: callcore.CodeValidationFailed, Field: "peer_session_id", Message: "call not found"},
			"/bridge", map[string]any{"call_id": "t.other"}, 422, callcore.CodeValidationFailed, "call_id"},
		{"code=validation_failed/field=consult_call_id", &callcore.Error{Code: callcore.CodeValidationFailed, Field: "consult_session_id", Message: "x"},
			"/transfer", map[string]any{"target": "sip:a@b", "type": "attended", "consult_call_id": "t.other"}, 422, callcore.CodeValidationFailed, "consult_call_id"},
		{"code=validation_failed/field=loop", &callcore.Error{Code: callcore.CodeValidationFailed, Field: "loop_count", Message: "x"},
			"/play", map[string]any{"file": "a.wav"}, 422, callcore.CodeValidationFailed, "loop"},
		{"code=internal", fmt.Errorf("session exploded"), "/hold", nil, 500, callcore.CodeInternal, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.session.setReply(func(events.Event) error { return tc.reply })
			defer e.session.setReply(nil)
			resp, body := e.request(t, specValid, "POST", "/v1/calls/"+c.ID+tc.path, tc.body, authed())
			if p := wantProblem(t, resp, body, tc.status, tc.code); p.Field != tc.field {
				t.Errorf("field = %q, want %q", p.Field, tc.field)
			}
		})
	}

	// An unknown call is not_found; a call the session forgot (ended, or
	// before a restart) but the store has is invalid_state.
	resp, body := e.request(t, specValid, "POST", "/v1/calls/t.nosuchcall/hold", nil, authed())
	wantProblem(t, resp, body, 404, callcore.CodeNotFound)
	e.session.forget(c.ID)
	resp, body = e.request(t, specValid, "DELETE", "/v1/calls/"+c.ID, nil, authed())
	if p := wantProblem(t, resp, body, 409, callcore.CodeInvalidState); !strings.Contains(p.Detail, "initiating") {
		t.Errorf("detail %q does not name the call's state", p.Detail)
	}
}
