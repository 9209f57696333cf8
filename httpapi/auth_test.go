package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
)

func TestTokens(t *testing.T) {
	e := newEnv(t, keyedConfig())
	resp, body := e.request(t, specValid, "POST", "/v1/tokens", nil, authed())
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST /v1/tokens = %d %s", resp.StatusCode, body)
	}
	tok := decodeJSON[Token](t, body)
	if left := time.Until(tok.ExpiresAt); !strings.HasPrefix(tok.Token, tokenPrefix) || left <= 0 || left > DefaultTokenTTL {
		t.Errorf("token %+v: want %s… expiring within %v", tok, tokenPrefix, DefaultTokenTTL)
	}

	// The token opens the feed, and only the feed.
	resp, body = e.request(t, specFeed, "GET", "/v1/events?token="+url.QueryEscape(tok.Token)+"&channels=session_to_app", nil, nil)
	if resp.StatusCode != http.StatusNoContent || e.feed.handled() != 1 {
		t.Errorf("GET /v1/events with a token = %d %s; feed handled %d", resp.StatusCode, body, e.feed.handled())
	}
	resp, body = e.request(t, specSkip, "GET", "/v1/calls?token="+url.QueryEscape(tok.Token), nil, nil)
	if p := wantProblem(t, resp, body, 401, callcore.CodeUnauthorized); !strings.Contains(p.Detail, "GET /v1/events only") {
		t.Errorf("detail %q does not say where tokens are accepted", p.Detail)
	}

	// A tampered token, a foreign one and a wrong bearer key beside a
	// good token are refused.
	bad := tok.Token[:len(tok.Token)-2] + "AA"
	if bad == tok.Token {
		bad = tok.Token[:len(tok.Token)-2] + "BB"
	}
	other := newTokens(time.Minute, time.Now)
	foreign, _ := other.mint(time.Minute)
	for name, q := range map[string]string{"tampered": bad, "foreign": foreign, "garbage": "hello"} {
		resp, body = e.request(t, specSkip, "GET", "/v1/events?token="+url.QueryEscape(q), nil, nil)
		if wantProblem(t, resp, body, 401, callcore.CodeUnauthorized); resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("token=%s: 401 without WWW-Authenticate", name)
		}
	}
	resp, body = e.request(t, specSkip, "GET", "/v1/events?token="+url.QueryEscape(tok.Token), nil,
		http.Header{"Authorization": {"Bearer wrong-key-0123456789"}})
	wantProblem(t, resp, body, 401, callcore.CodeUnauthorized)
	if e.feed.handled() != 1 {
		t.Errorf("the feed handled %d requests, want only the authorised one", e.feed.handled())
	}

	// A bearer key opens the feed too; so does anything without keys.
	resp, _ = e.request(t, specFeed, "GET", "/v1/events", nil, authed())
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("GET /v1/events with the key = %d", resp.StatusCode)
	}

	// ttl_s sets the lifetime.
	resp, body = e.request(t, specValid, "POST", "/v1/tokens", map[string]int{"ttl_s": 600}, authed())
	if tok := decodeJSON[Token](t, body); resp.StatusCode != 201 || time.Until(tok.ExpiresAt) < 9*time.Minute {
		t.Errorf("ttl_s=600 = %d %s", resp.StatusCode, body)
	}
}

func TestTokenExpiry(t *testing.T) {
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	tk := newTokens(time.Minute, func() time.Time { return now })
	tok, exp := tk.mint(time.Minute)
	if !exp.Equal(now.Add(time.Minute)) {
		t.Errorf("expiry %v, want %v", exp, now.Add(time.Minute))
	}
	if err := tk.verify(tok); err != nil {
		t.Errorf("a fresh token: %v", err)
	}
	now = now.Add(59 * time.Second)
	if err := tk.verify(tok); err != nil {
		t.Errorf("a token 1 s before expiry: %v", err)
	}
	now = now.Add(time.Second)
	if err := tk.verify(tok); err != errTokenExpired {
		t.Errorf("an expired token: %v, want %v", err, errTokenExpired)
	}
}

func TestNoKeysLeavesV1Open(t *testing.T) {
	e := newEnv(t, Config{})
	resp, body := e.request(t, specSkip, "GET", "/v1/calls", nil, nil)
	if resp.StatusCode != 200 {
		t.Errorf("GET /v1/calls without keys configured = %d %s", resp.StatusCode, body)
	}
	// Tokens can still be minted (a dashboard need not know whether keys
	// are set) and are accepted.
	resp, body = e.request(t, specSkip, "POST", "/v1/tokens", nil, nil)
	tok := decodeJSON[Token](t, body)
	if resp.StatusCode != 201 {
		t.Fatalf("POST /v1/tokens = %d", resp.StatusCode)
	}
	resp, _ = e.request(t, specOff, "GET", "/v1/events?token="+url.QueryEscape(tok.Token), nil, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("GET /v1/events with a token and no keys = %d", resp.StatusCode)
	}
}

func TestFeedErrorsAreProblems(t *testing.T) {
	e := newEnv(t, keyedConfig())
	e.feed.err = &callcore.Error{Code: callcore.CodeValidationFailed, Field: "channels", Message: `unknown channel "nope"`}
	resp, body := e.request(t, specValid, "GET", "/v1/events?channels=nope", nil, authed())
	if p := wantProblem(t, resp, body, 422, callcore.CodeValidationFailed); p.Field != "channels" {
		t.Errorf("field = %q", p.Field)
	}
	if e.feed.query != "channels=nope" {
		t.Errorf("the feed saw query %q", e.feed.query)
	}
	e.feed.err = callcore.Errorf(callcore.CodeBadRequest, "not a WebSocket handshake")
	resp, body = e.request(t, specValid, "GET", "/v1/events", nil, authed())
	wantProblem(t, resp, body, 400, callcore.CodeBadRequest)
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, Config{APIKeys: []string{testKey, "other-key-0123456789"}, RateLimit: 2, RateBurst: 3})
	var last *http.Response
	var body []byte
	ok := 0
	// 2 per second with bursts of 3: requests sent back to back are
	// refused well before 50, however slow the machine.
	for range 50 {
		last, body = e.request(t, specValid, "GET", "/v1/calls", nil, authed())
		if last.StatusCode != 200 {
			break
		}
		ok++
	}
	if ok == 0 || ok == 50 {
		t.Errorf("%d requests passed before the limit, want some, then a refusal", ok)
	}
	wantProblem(t, last, body, 429, callcore.CodeRateLimited)
	if ra, err := strconv.Atoi(last.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After = %q, want whole seconds ≥ 1", last.Header.Get("Retry-After"))
	}
	// The limit is per key: the other key is not limited by the first.
	resp, body := e.request(t, specValid, "GET", "/v1/calls", nil, http.Header{"Authorization": {"Bearer other-key-0123456789"}})
	if resp.StatusCode != 200 {
		t.Errorf("another key = %d %s", resp.StatusCode, body)
	}
	// The ops endpoints are never limited.
	for range 5 {
		if resp, _ := e.request(t, specValid, "GET", "/healthz", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("/healthz = %d", resp.StatusCode)
		}
	}
}

func TestRateLimitOffByDefault(t *testing.T) {
	e := newEnv(t, keyedConfig())
	for i := range 120 { // past the default burst
		if resp, body := e.request(t, specValid, "GET", "/v1/registrations", nil, authed()); resp.StatusCode != 200 {
			t.Fatalf("request %d = %d %s", i, resp.StatusCode, body)
		}
	}
}
