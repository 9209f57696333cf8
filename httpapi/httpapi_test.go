package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testKey = "test-key-0123456789"

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serve starts h on a real loopback socket and returns its base URL and a
// client whose connections are closed when the test ends.
func serve(t *testing.T, h http.Handler) (string, *http.Client) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return srv.URL, &http.Client{Transport: tr}
}

func do(t *testing.T, c *http.Client, method, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, body
}

// wantProblem checks that resp is an RFC 9457 problem with status and code.
func wantProblem(t *testing.T, resp *http.Response, body []byte, status int, code callcore.Code) Problem {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != ContentTypeProblem {
		t.Errorf("Content-Type = %q, want %q", ct, ContentTypeProblem)
	}
	var p Problem
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body %s: %v", body, err)
	}
	if p.Type == "" || p.Title == "" || p.Status != status || p.Code != code || p.Detail == "" {
		t.Errorf("problem = %+v, want type, title, detail, status %d and code %q", p, status, code)
	}
	return p
}

func TestNewRequiresItsDependencies(t *testing.T) {
	e := newEnv(t, Config{})
	full := Config{Metrics: http.NotFoundHandler(), Store: e.store, Feed: e.feed}
	if _, err := New(full, e.bus, nil); err != nil {
		t.Fatalf("New with every dependency: %v", err)
	}
	for _, tc := range []struct {
		name string
		drop func(*Config)
	}{
		{"missing=Metrics", func(c *Config) { c.Metrics = nil }},
		{"missing=Store", func(c *Config) { c.Store = nil }},
		{"missing=Feed", func(c *Config) { c.Feed = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := full
			tc.drop(&cfg)
			if _, err := New(cfg, e.bus, nil); err == nil {
				t.Error("New succeeded")
			}
		})
	}
	t.Run("missing=bus", func(t *testing.T) {
		if _, err := New(full, nil, nil); err == nil {
			t.Error("New succeeded")
		}
	})
}

func TestHealthz(t *testing.T) {
	url, c := newAPI(t, Config{})
	resp, body := do(t, c, "GET", url+"/healthz", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /healthz = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got map[string]string
	if err := json.Unmarshal(body, &got); err != nil || got["status"] != "ok" {
		t.Errorf("GET /healthz body %s (%v), want {\"status\":\"ok\"}", body, err)
	}
	if resp.Header.Get(HeaderRequestID) == "" {
		t.Error("no X-Request-Id in the response")
	}
	// HEAD is answered wherever GET is.
	resp, body = do(t, c, "HEAD", url+"/healthz", nil)
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("HEAD /healthz = %d with %d bytes of body", resp.StatusCode, len(body))
	}
}

func TestReadyz(t *testing.T) {
	var mu sync.Mutex
	var notReady error
	url, c := newAPI(t, Config{Ready: func() error {
		mu.Lock()
		defer mu.Unlock()
		return notReady
	}})
	resp, body := do(t, c, "GET", url+"/readyz", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ready"`) {
		t.Fatalf("GET /readyz while ready = %d %s", resp.StatusCode, body)
	}

	mu.Lock()
	notReady = errors.New("draining")
	mu.Unlock()
	resp, body = do(t, c, "GET", url+"/readyz", nil)
	p := wantProblem(t, resp, body, 503, callcore.CodeUnavailable)
	if p.Detail != "draining" {
		t.Errorf("detail = %q, want the Ready error", p.Detail)
	}
}

func TestMetricsIsServed(t *testing.T) {
	url, c := newAPI(t, Config{})
	resp, body := do(t, c, "GET", url+"/metrics", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "test_metric 1") {
		t.Errorf("GET /metrics = %d %s, want the Metrics handler's answer", resp.StatusCode, body)
	}
}

func TestCatalogue(t *testing.T) {
	url, c := newAPI(t, Config{})
	resp, body := do(t, c, "GET", url+"/v1/events/catalogue", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/events/catalogue = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got struct {
		Channels []struct {
			Name   string            `json:"name"`
			Events []json.RawMessage `json:"events"`
		} `json:"channels"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("decode catalogue: %v", err)
	}
	if len(got.Channels) == 0 {
		t.Fatal("catalogue lists no channel")
	}
	want, _ := json.Marshal(events.Catalogue())
	if !bytes.Equal(body, want) {
		t.Error("served catalogue differs from events.Catalogue()")
	}
}

func TestNotFound(t *testing.T) {
	url, c := newAPI(t, Config{})
	for _, path := range []string{"/nope", "/v1/events/nope", "/v1"} {
		resp, body := do(t, c, "GET", url+path, nil)
		wantProblem(t, resp, body, 404, callcore.CodeNotFound)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	url, c := newAPI(t, Config{})
	for _, tc := range []struct{ method, path string }{
		{"POST", "/healthz"},
		{"DELETE", "/readyz"},
		{"PUT", "/metrics"},
		{"POST", "/v1/events/catalogue"},
	} {
		t.Run("method="+tc.method+"/path="+tc.path, func(t *testing.T) {
			resp, body := do(t, c, tc.method, url+tc.path, nil)
			wantProblem(t, resp, body, 405, callcore.CodeBadRequest)
			if allow := resp.Header.Get("Allow"); allow != "GET, HEAD" {
				t.Errorf("Allow = %q, want %q", allow, "GET, HEAD")
			}
		})
	}
}

func TestAPIKeys(t *testing.T) {
	url, c := newAPI(t, Config{APIKeys: []string{"other-key-0123456789", testKey}})
	for _, tc := range []struct {
		name, auth string
		ok         bool
	}{
		{"auth=none", "", false},
		{"auth=wrong", "Bearer nope-nope-nope-nope", false},
		{"auth=basic", "Basic " + testKey, false},
		{"auth=prefix", "Bearer " + testKey[:10], false},
		{"auth=good", "Bearer " + testKey, true},
		{"auth=good/lowercase-scheme", "bearer " + testKey, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.auth != "" {
				h.Set("Authorization", tc.auth)
			}
			resp, body := do(t, c, "GET", url+"/v1/events/catalogue", h)
			if tc.ok {
				if resp.StatusCode != 200 {
					t.Errorf("status = %d, want 200; %s", resp.StatusCode, body)
				}
				return
			}
			wantProblem(t, resp, body, 401, callcore.CodeUnauthorized)
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// Probes and scrapers need no key.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, body := do(t, c, "GET", url+path, nil); resp.StatusCode != 200 {
			t.Errorf("GET %s without a key = %d %s", path, resp.StatusCode, body)
		}
	}
}

func TestRequestID(t *testing.T) {
	url, c := newAPI(t, Config{})
	resp, _ := do(t, c, "GET", url+"/healthz", http.Header{HeaderRequestID: {"abc-123"}})
	if got := resp.Header.Get(HeaderRequestID); got != "abc-123" {
		t.Errorf("X-Request-Id = %q, want the caller's abc-123", got)
	}
	resp, _ = do(t, c, "GET", url+"/healthz", http.Header{HeaderRequestID: {"has space"}})
	if got := resp.Header.Get(HeaderRequestID); got == "" || got == "has space" {
		t.Errorf("X-Request-Id = %q, want a fresh id in place of an unsafe one", got)
	}
}

func TestAccessLogAtDebug(t *testing.T) {
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	url, c := newAPILog(t, Config{}, log)
	resp, _ := do(t, c, "GET", url+"/nope", nil)
	id := resp.Header.Get(HeaderRequestID)
	line := logs.String()
	for _, want := range []string{`msg="http request"`, "path=/nope", "status=404", "request_id=" + id} {
		if !strings.Contains(line, want) {
			t.Errorf("access log %q lacks %q", line, want)
		}
	}

	var quiet logBuffer
	url, c = newAPILog(t, Config{}, slog.New(slog.NewTextHandler(&quiet, nil)))
	do(t, c, "GET", url+"/healthz", nil)
	if quiet.String() != "" {
		t.Errorf("access log written at info level: %q", quiet.String())
	}
}

func TestRecoverPanic(t *testing.T) {
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	mux := http.NewServeMux()
	mux.HandleFunc("/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	mux.HandleFunc("/late", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(200)
		io.WriteString(w, "partial")
		panic("late boom")
	})
	url, c := serve(t, withRequestID(recoverPanic(log)(mux)))

	resp, body := do(t, c, "GET", url+"/boom", nil)
	p := wantProblem(t, resp, body, 500, callcore.CodeInternal)
	if strings.Contains(p.Detail, "boom") {
		t.Errorf("problem detail %q leaks the panic", p.Detail)
	}
	if l := logs.String(); !strings.Contains(l, "http handler panicked") || !strings.Contains(l, "panic=boom") ||
		!strings.Contains(l, "request_id="+resp.Header.Get(HeaderRequestID)) {
		t.Errorf("panic log %q lacks the message, value or request id", l)
	}

	// Once the answer has begun, the connection is cut so the client
	// cannot mistake the partial body for a whole one.
	req, _ := http.NewRequest("GET", url+"/late", nil)
	resp, err := c.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a panic after the header was written ended in a complete response")
	}
}

func TestWriteError(t *testing.T) {
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   callcore.Code
		field  string
	}{
		{"code=validation_failed", &callcore.Error{Code: callcore.CodeValidationFailed, Message: "to is required", Field: "to"}, 422, callcore.CodeValidationFailed, "to"},
		{"code=invalid_state/wrapped", errorsJoin(callcore.Errorf(callcore.CodeInvalidState, "call is ended")), 409, callcore.CodeInvalidState, ""},
		{"code=internal/plain", errors.New("disk on fire"), 500, callcore.CodeInternal, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeError(rec, httptest.NewRequest("GET", "/x", nil), log, tc.err)
			resp := rec.Result()
			p := wantProblem(t, resp, rec.Body.Bytes(), tc.status, tc.code)
			if p.Field != tc.field {
				t.Errorf("field = %q, want %q", p.Field, tc.field)
			}
			if tc.code == callcore.CodeInternal {
				if strings.Contains(p.Detail, "fire") {
					t.Errorf("internal detail %q leaks the cause", p.Detail)
				}
				if !strings.Contains(logs.String(), "disk on fire") {
					t.Error("internal error not logged")
				}
			}
		})
	}
}

func errorsJoin(err error) error { return errors.Join(errors.New("context"), err) }

// TestCodeStatusCoversEveryCode reads callcore/error.go so that a code added
// there without an HTTP status here fails.
func TestCodeStatusCoversEveryCode(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../callcore/error.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []callcore.Code
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for _, v := range vs.Values {
				lit := v.(*ast.BasicLit)
				s, _ := strconv.Unquote(lit.Value)
				codes = append(codes, callcore.Code(s))
			}
		}
	}
	if len(codes) < 9 {
		t.Fatalf("found only %d codes in callcore/error.go: %q", len(codes), codes)
	}
	want := map[callcore.Code]int{ // DESIGN.md §5
		"bad_request": 400, "unauthorized": 401, "not_found": 404, "invalid_state": 409,
		"validation_failed": 422, "too_large": 413, "rate_limited": 429, "unavailable": 503,
		"internal": 500,
	}
	for _, c := range codes {
		s, ok := codeStatus[c]
		if !ok {
			t.Errorf("code %q has no HTTP status in codeStatus", c)
			continue
		}
		if w, ok := want[c]; ok && s != w {
			t.Errorf("code %q → %d, DESIGN.md §5 says %d", c, s, w)
		}
	}
	if StatusOf("no_such_code") != 500 {
		t.Error("an unknown code does not answer 500")
	}
}

func TestWriteErrorOfEndedContexts(t *testing.T) {
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/calls", nil).WithContext(ctx)
	writeError(rec, req, log, fmt.Errorf("store: list calls: %w", context.Canceled))
	wantProblem(t, rec.Result(), rec.Body.Bytes(), 503, callcore.CodeUnavailable)
	if logs.String() != "" {
		t.Errorf("a client that went away was logged at info or above: %s", logs.String())
	}

	rec = httptest.NewRecorder()
	writeError(rec, httptest.NewRequest("POST", "/v1/calls", nil), log,
		fmt.Errorf("store: sync to seq 9: %w", context.DeadlineExceeded))
	wantProblem(t, rec.Result(), rec.Body.Bytes(), 503, callcore.CodeUnavailable)
}
