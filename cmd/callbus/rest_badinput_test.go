package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/httpapi"
)

// TestRESTBadInput sends bad requests to a whole node: each is answered
// with a precise problem, and none reaches the session.
func TestRESTBadInput(t *testing.T) {
	n, api := openRESTNode(t, nil)
	c := api.call("POST", "/v1/calls", map[string]any{"to": "sip:nobody@127.0.0.1:9"}, http.StatusCreated)
	defer api.do(specValid, "DELETE", "/v1/calls/"+c.ID, nil, nil)
	for _, tc := range []struct {
		name         string
		mode         specMode
		method, path string
		body         string
		header       http.Header
		status       int
		code         callcore.Code
		field        string
	}{
		{"body=malformed", specInvalid, "POST", "/v1/calls", `{"to":`, nil, 400, callcore.CodeBadRequest, ""},
		{"body=unknown-field", specInvalid, "POST", "/v1/calls", `{"to":"sip:a@b","priority":1}`, nil, 422, callcore.CodeValidationFailed, "priority"},
		{"body=too-large", specInvalid, "POST", "/v1/calls", `{"to":"sip:a@b","client_state":"` + strings.Repeat("z", 70000) + `"}`, nil, 413, callcore.CodeTooLarge, ""},
		{"field=to/not-sip", specInvalid, "POST", "/v1/calls", `{"to":"mailto:bob@example.com"}`, nil, 422, callcore.CodeValidationFailed, "to"},
		{"field=digits", specInvalid, "POST", "/v1/calls/" + c.ID + "/dtmf", `{"digits":"1x"}`, nil, 422, callcore.CodeValidationFailed, "digits"},
		{"id=path-characters", specInvalid, "GET", "/v1/recordings/..%2F..%2Fcallbus.db", "", nil, 422, callcore.CodeValidationFailed, "id"},
		{"id=path-characters/audio", specInvalid, "GET", "/v1/recordings/%2Fetc%2Fpasswd/audio", "", nil, 422, callcore.CodeValidationFailed, "id"},
		{"auth=missing", specInvalid, "GET", "/v1/calls", "", http.Header{"Authorization": {""}}, 401, callcore.CodeUnauthorized, ""},
		{"auth=wrong", specValid, "GET", "/v1/calls", "", http.Header{"Authorization": {"Bearer not-the-key-0123456789"}}, 401, callcore.CodeUnauthorized, ""},
		{"auth=basic", specInvalid, "POST", "/v1/calls", `{"to":"sip:a@b"}`, http.Header{"Authorization": {"Basic " + restKey}}, 401, callcore.CodeUnauthorized, ""},
		{"state=held-by-nobody", specValid, "POST", "/v1/calls/" + c.ID + "/resume", "", nil, 409, callcore.CodeInvalidState, ""},
		{"call=unknown", specValid, "POST", "/v1/calls/test.nosuchcall/hold", "", nil, 404, callcore.CodeNotFound, ""},
		{"query=state", specInvalid, "GET", "/v1/calls?state=dead", "", nil, 422, callcore.CodeValidationFailed, "state"},
		{"feed=unknown-channel", specValid, "GET", "/v1/events?channels=session_to_app,nope", "", nil, 422, callcore.CodeValidationFailed, "channels"},
		{"feed=not-websocket", specValid, "GET", "/v1/events", "", nil, 400, callcore.CodeBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			before := len(n.rec.all())
			resp, raw := api.do(tc.mode, tc.method, tc.path, body, tc.header)
			wantRESTProblem(t, resp, raw, tc.status, tc.code, tc.field)
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.status == 409 || tc.status == 404 {
				return // these went to the session, which refused them
			}
			for _, r := range n.rec.all()[before:] {
				if r.Event != nil && r.Event.Channel() == "api_to_session" {
					t.Errorf("a refused request reached the session: %s", r.Event.Type())
				}
			}
		})
	}

	// A WebSocket client naming an unknown channel is refused before the
	// upgrade, with the problem in the handshake's answer.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws://"+n.Addr().String()+"/v1/events?channels=nope",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + restKey}}})
	if err == nil || resp == nil || resp.StatusCode != 422 {
		t.Errorf("WS dial with channels=nope: %v, %v; want a 422 answer", err, resp)
	}
}

// TestRESTIdempotency retries POST /v1/calls with one Idempotency-Key.
func TestRESTIdempotency(t *testing.T) {
	n, api := openRESTNode(t, nil)
	body := map[string]any{"to": "sip:nobody@127.0.0.1:9", "client_state": "x"}
	key := http.Header{httpapi.HeaderIdempotencyKey: {"order-7"}}
	resp, raw := api.do(specValid, "POST", "/v1/calls", body, key)
	if resp.StatusCode != 201 {
		t.Fatalf("first = %d %s", resp.StatusCode, raw)
	}
	first := decodeStrict[callcore.Call](t, raw)
	defer api.do(specValid, "DELETE", "/v1/calls/"+first.ID, nil, nil)
	resp, raw = api.do(specValid, "POST", "/v1/calls", body, key)
	if again := decodeStrict[callcore.Call](t, raw); resp.StatusCode != 201 || again.ID != first.ID ||
		resp.Header.Get(httpapi.HeaderIdempotentReplayed) != "true" {
		t.Errorf("replay = %d %s %v", resp.StatusCode, raw, resp.Header)
	}
	made := 0
	for _, r := range n.rec.all() {
		if r.Event != nil && r.Event.Type() == "MakeCall" {
			made++
		}
	}
	if made != 1 {
		t.Errorf("%d MakeCall on the bus, want 1", made)
	}
	resp, raw = api.do(specValid, "POST", "/v1/calls", map[string]any{"to": "sip:other@127.0.0.1:9"}, key)
	wantRESTProblem(t, resp, raw, 422, callcore.CodeValidationFailed, httpapi.HeaderIdempotencyKey)
}

// TestRESTRateLimit runs a node with a low limit: past the burst, 429
// with Retry-After.
func TestRESTRateLimit(t *testing.T) {
	n := openFlowNode(t, env{"CALLBUS_API_KEYS": restKey, "CALLBUS_RATE_LIMIT": "1", "CALLBUS_RATE_BURST": "2"})
	api := newREST(t, n.Main, restKey)
	var resp *http.Response
	var raw []byte
	passed := 0
	for range 50 {
		if resp, raw = api.do(specValid, "GET", "/v1/calls", nil, nil); resp.StatusCode != 200 {
			break
		}
		passed++
	}
	if passed == 0 || passed == 50 {
		t.Fatalf("%d requests passed, want some, then a refusal", passed)
	}
	wantRESTProblem(t, resp, raw, http.StatusTooManyRequests, callcore.CodeRateLimited, "")
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	// Probes are not limited.
	if resp, _ := api.do(specValid, "GET", "/readyz", nil, nil); resp.StatusCode != 200 {
		t.Errorf("/readyz while limited = %d", resp.StatusCode)
	}
}

// TestOpenAPIServedByNode checks that the node serves the repository's
// openapi.yaml.
func TestOpenAPIServedByNode(t *testing.T) {
	_, api := openRESTNode(t, nil)
	resp, raw := api.do(specValid, "GET", "/openapi.yaml", nil, http.Header{"Authorization": {""}})
	file, err := os.ReadFile("../../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(raw, file) {
		t.Errorf("GET /openapi.yaml = %d %q, %d bytes (file %d)", resp.StatusCode, resp.Header.Get("Content-Type"), len(raw), len(file))
	}
}
