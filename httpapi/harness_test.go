package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	validator "github.com/pb33f/libopenapi-validator"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/callcore/store"
	"github.com/callbus/callbus/internal/apitest"
	"github.com/callbus/callbus/internal/bustest"
)

// The harness runs the API on a real socket with a real bus and a real
// store; a scripted session answers the commands (the session layer
// itself is exercised with the API in cmd/callbus), and a scripted feed
// stands for package ws.

// fakeSession serves api_to_session like the session layer would for the
// parts the API relies on: MakeCall creates the call (CallCreated and
// CallUpdated on the bus, so the store has it), other commands are recorded and answered by
// reply (nil: accepted) for known calls, not_found otherwise.
type fakeSession struct {
	b     bus.Bus
	mu    sync.Mutex
	calls map[string]bool
	cmds  []events.Event
	reply func(cmd events.Event) error
}

func startFakeSession(t *testing.T, b bus.Bus) *fakeSession {
	t.Helper()
	s := &fakeSession{b: b, calls: map[string]bool{}}
	sub, err := b.Subscribe(bus.Subscriber{Name: "fake-session", Channels: []string{events.ChannelAPIToSession},
		Serve: s.serve})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe(context.Background()) })
	return s
}

func (s *fakeSession) serve(ctx context.Context, _ events.Envelope, cmd events.Event) (*events.CommandResult, error) {
	s.mu.Lock()
	s.cmds = append(s.cmds, cmd)
	reply := s.reply
	s.mu.Unlock()
	if reply != nil {
		if err := reply(cmd); err != nil {
			return nil, err
		}
	}
	switch e := cmd.(type) {
	case *events.CmdMakeCall:
		s.mu.Lock()
		s.calls[e.SessionID] = true
		s.mu.Unlock()
		if err := s.b.Publish(ctx, &events.CallCreated{SessionRef: e.SessionRef, Direction: "outbound",
			From: "sip:callbus@localhost", To: e.To, ClientState: e.ClientState}); err != nil {
			return nil, err
		}
		// The store keeps a call as its latest CallUpdated says.
		if err := s.b.Publish(ctx, &events.CallUpdated{SessionRef: e.SessionRef, Call: callcore.Call{ID: e.SessionID,
			Direction: callcore.Outbound, From: "sip:callbus@localhost", To: e.To, State: callcore.StateInitiating,
			CreatedAt: time.Now().UTC(), ClientState: e.ClientState}}); err != nil {
			return nil, err
		}
		return &events.CommandResult{ID: e.SessionID, State: "initiating"}, nil
	case *events.CmdRegister:
		return &events.CommandResult{ID: e.RegistrationID, State: "registering"}, nil
	case *events.CmdUnregister:
		return &events.CommandResult{ID: e.RegistrationID, State: "unregistering"}, nil
	}
	id := events.SessionOf(cmd)
	s.mu.Lock()
	known := s.calls[id]
	s.mu.Unlock()
	if !known {
		return nil, callcore.Errorf(callcore.CodeNotFound, "call %q not found", id)
	}
	return &events.CommandResult{ID: id, State: "active"}, nil
}

// setReply scripts the answer to the next commands.
func (s *fakeSession) setReply(fn func(events.Event) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reply = fn
}

// forget makes the session forget a call, as it does after a restart.
func (s *fakeSession) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.calls, id)
}

// last returns the last command received.
func (s *fakeSession) last() events.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cmds) == 0 {
		return nil
	}
	return s.cmds[len(s.cmds)-1]
}

// count returns how many commands of type typ were received.
func (s *fakeSession) count(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.cmds {
		if c.Type() == typ {
			n++
		}
	}
	return n
}

// fakeFeed answers GET /v1/events with err, or 204 when err is nil (a
// real feed would upgrade; the WebSocket itself is tested with package ws
// in cmd/callbus).
type fakeFeed struct {
	mu    sync.Mutex
	err   error
	calls int
	query string
}

func (f *fakeFeed) Handle(w http.ResponseWriter, r *http.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.query = r.URL.RawQuery
	if f.err != nil {
		return f.err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (f *fakeFeed) handled() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// env is a running API with what stands behind it.
type env struct {
	url     string
	client  *http.Client // validates every exchange against openapi.yaml
	bus     *bus.Memory
	store   *store.Store
	session *fakeSession
	feed    *fakeFeed
	spec    validator.Validator
}

// newEnv starts the API with cfg, filling in Metrics, Bus, Store and Feed
// when cfg leaves them nil.
func newEnv(t *testing.T, cfg Config) *env { t.Helper(); return newEnvLog(t, cfg, nil) }

// newEnvLog is newEnv with the API logging to log.
func newEnvLog(t *testing.T, cfg Config, log *slog.Logger) *env {
	t.Helper()
	st, err := store.New(store.Config{Dir: t.TempDir(), BatchInterval: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-in first-out: the bus closes before the store.
	t.Cleanup(func() { bustest.Close(t, "store", st.Close) })
	b := bustest.NewBus(t, bus.Config{Node: "t", StartSeq: st.LastSeq()})
	if err := st.Attach(b); err != nil {
		t.Fatal(err)
	}
	e := &env{bus: b, store: st, session: startFakeSession(t, b), feed: &fakeFeed{}}
	if cfg.Metrics == nil {
		cfg.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "# TYPE test_metric counter\ntest_metric 1\n")
		})
	}
	if cfg.Store == nil {
		cfg.Store = st
	}
	if cfg.Feed == nil {
		cfg.Feed = e.feed
	}
	h, err := New(cfg, b, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var plain *http.Client
	e.url, plain = serve(t, h)
	e.spec = loadSpec(t)
	e.client = &http.Client{Transport: &apitest.Transport{T: t, Spec: e.spec, Base: plain.Transport}}
	return e
}

func newAPI(t *testing.T, cfg Config) (string, *http.Client) {
	t.Helper()
	return newAPILog(t, cfg, nil)
}

// newAPILog is newAPI with the API logging to log.
func newAPILog(t *testing.T, cfg Config, log *slog.Logger) (string, *http.Client) {
	t.Helper()
	e := newEnvLog(t, cfg, log)
	// The ops and catalogue tests send requests the spec does not describe
	// (405s, unknown paths); they check the answers themselves.
	return e.url, &http.Client{Transport: e.client.Transport.(*apitest.Transport).Base}
}

// specOnce parses openapi.yaml into a validator once per test binary:
// building one takes most of a second under the race detector.
var specOnce = sync.OnceValues(func() (validator.Validator, error) { return apitest.NewValidator(OpenAPI()) })

// loadSpec returns the validator of openapi.yaml.
func loadSpec(t testing.TB) validator.Validator {
	t.Helper()
	v, err := specOnce()
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return v
}

// How a request is checked against the spec (see apitest.Mode).
type specMode = apitest.Mode

const (
	specValid   = apitest.Valid       // the request must be valid
	specInvalid = apitest.Invalid     // the request must be invalid: the spec states the rule the server enforces
	specSkip    = apitest.Skip        // the request is not checked (the response still is)
	specFeed    = apitest.RequestOnly // the request must be valid; the answer of the scripted feed is not checked
	specOff     = apitest.Off         // neither is checked: requests the spec has no operation for (HEAD, 405)
)

// request sends one request through e's validating client. body is sent
// as JSON unless it is a []byte or string; header may be nil.
func (e *env) request(t *testing.T, mode specMode, method, path string, body any, header http.Header) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	ctx := apitest.WithMode(t.Context(), mode)
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, raw
}

// authed returns a header with the test key.
func authed() http.Header {
	return http.Header{"Authorization": {"Bearer " + testKey}}
}

// keyedConfig is a Config with the test key and no rate limit.
func keyedConfig() Config { return Config{APIKeys: []string{testKey}} }

// decodeJSON decodes body into a new T, strictly.
func decodeJSON[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, body, err)
	}
	return v
}

// makeCall originates a call through the API and returns it.
func (e *env) makeCall(t *testing.T, to string) callcore.Call {
	t.Helper()
	resp, body := e.request(t, specValid, "POST", "/v1/calls", map[string]any{"to": to}, authed())
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/calls = %d %s", resp.StatusCode, body)
	}
	return decodeJSON[callcore.Call](t, body)
}
