package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/callbus/callbus/internal/apitest"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pb33f/libopenapi"
	openapivalidator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/httpapi"
	"github.com/callbus/callbus/ws"
)

// The REST tests drive a whole node over HTTP through a client that
// checks every request and response against openapi.yaml (the repository
// root's, which is httpapi's), and watch the node through its WebSocket
// feed, checking every frame against the spec's Frame schema.

const restKey = "rest-test-key-0123456789"

// spec is openapi.yaml, parsed once per test binary.
type openAPISpec struct {
	v     openapivalidator.Validator
	frame *base.Schema
	mu    sync.Mutex // the schema validator is not documented as safe for concurrent use
	sv    schema_validation.SchemaValidator
}

var loadSpecOnce = sync.OnceValues(func() (*openAPISpec, error) {
	raw, err := os.ReadFile("../../openapi.yaml")
	if err != nil {
		return nil, err
	}
	v, err := apitest.NewValidator(raw)
	if err != nil {
		return nil, err
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		return nil, err
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, err
	}
	frame := model.Model.Components.Schemas.GetOrZero("Frame")
	if frame == nil {
		return nil, errors.New("openapi.yaml has no Frame schema")
	}
	return &openAPISpec{v: v, frame: frame.Schema(), sv: schema_validation.NewSchemaValidator()}, nil
})

func loadSpec(t testing.TB) *openAPISpec {
	t.Helper()
	s, err := loadSpecOnce()
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return s
}

// checkFrame fails the test when a feed frame violates the Frame schema.
func (s *openAPISpec) checkFrame(t testing.TB, frame []byte) {
	s.mu.Lock()
	ok, errs := s.sv.ValidateSchemaBytes(s.frame, frame)
	s.mu.Unlock()
	if !ok {
		t.Errorf("frame violates openapi.yaml's Frame:%s\n%s", apitest.DescribeErrs(errs), frame)
	}
}

// How a request is checked against the spec (see apitest.Mode).
type specMode = apitest.Mode

const (
	specValid   = apitest.Valid   // the request must be valid
	specInvalid = apitest.Invalid // the request must be invalid: the spec states the rule the server enforces
	specSkip    = apitest.Skip    // the request is not checked (the response still is)
)

// rest is a client of one node's API.
type rest struct {
	t    *testing.T
	base string // http://host:port
	key  string
	c    *http.Client
	spec *openAPISpec
}

func newREST(t *testing.T, m *Main, key string) *rest {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	s := loadSpec(t)
	return &rest{t: t, base: "http://" + m.Addr().String(), key: key, spec: s,
		c: &http.Client{Timeout: 20 * time.Second, Transport: &apitest.Transport{T: t, Spec: s.v, Base: tr}}}
}

// do sends a request, with the key unless header sets Authorization; body
// is sent as JSON unless it is a string. It returns the response and its
// body.
func (r *rest) do(mode specMode, method, path string, body any, header http.Header) (*http.Response, []byte) {
	r.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			r.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	ctx := apitest.WithMode(r.t.Context(), mode)
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.key != "" {
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := r.c.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp, raw
}

// call sends a valid request that must answer status with a call.
func (r *rest) call(method, path string, body any, status int) callcore.Call {
	r.t.Helper()
	resp, raw := r.do(specValid, method, path, body, nil)
	if resp.StatusCode != status {
		r.t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, raw, status)
	}
	return decodeStrict[callcore.Call](r.t, raw)
}

// get sends a valid GET that must answer 200, decoding the body into a T.
func getJSON[T any](r *rest, path string) T {
	r.t.Helper()
	resp, raw := r.do(specValid, "GET", path, nil, nil)
	if resp.StatusCode != 200 {
		r.t.Fatalf("GET %s = %d %s", path, resp.StatusCode, raw)
	}
	return decodeStrict[T](r.t, raw)
}

// waitCall polls GET /v1/calls/{id} until ok accepts the call, and
// returns it; after 10 s it fails the test with the last state.
func (r *rest) waitCall(id, what string, ok func(callcore.Call) bool) callcore.Call {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The store commits in batches: a call the node has just seen
		// may be not_found for a moment.
		var c callcore.Call
		resp, raw := r.do(specValid, "GET", "/v1/calls/"+id, nil, nil)
		switch resp.StatusCode {
		case http.StatusOK:
			c = decodeStrict[callcore.Call](r.t, raw)
			if ok(c) {
				return c
			}
		case http.StatusNotFound:
		default:
			r.t.Fatalf("GET /v1/calls/%s = %d %s", id, resp.StatusCode, raw)
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("call %s: no %s within 10s; last %+v", id, what, c)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inState waits for call id to reach state.
func (r *rest) inState(id string, state callcore.CallState) callcore.Call {
	r.t.Helper()
	return r.waitCall(id, string(state), func(c callcore.Call) bool { return c.State == state })
}

// history returns the records of GET /v1/calls/{id}/events, every page.
func (r *rest) history(id string) []bus.Record {
	r.t.Helper()
	var out []bus.Record
	var after uint64
	for {
		page := getJSON[httpapi.EventList](r, fmt.Sprintf("/v1/calls/%s/events?after_seq=%d&limit=200", id, after))
		for _, f := range page.Events {
			out = append(out, frameRecord(r.t, f))
		}
		if len(page.Events) < 200 {
			return out
		}
		after = out[len(out)-1].Envelope.Seq
	}
}

// frameRecord decodes a §6 frame into a record.
func frameRecord(t *testing.T, frame []byte) bus.Record {
	t.Helper()
	env, ev, err := events.Unmarshal(frame)
	if err != nil {
		t.Fatalf("frame %s: %v", frame, err)
	}
	return bus.Record{Envelope: env, Event: ev}
}

func decodeStrict[T any](t *testing.T, raw []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, raw, err)
	}
	return v
}

// feed is a WebSocket client of GET /v1/events that keeps every frame.
type feed struct {
	t    *testing.T
	conn *websocket.Conn
	done chan struct{}
	mu   sync.Mutex
	recs []bus.Record
	gaps int
	err  error
}

// openFeed connects to the node's feed with query (e.g. "channels=…"),
// checking the handshake request against the spec, and reads frames until
// the test ends.
func openFeed(t *testing.T, r *rest, query string) *feed {
	t.Helper()
	url := r.base + "/v1/events"
	if query != "" {
		url += "?" + query
	}
	h := http.Header{}
	if r.key != "" {
		h.Set("Authorization", "Bearer "+r.key)
	}
	// The upgrade cannot go through apitest.Transport (its body is the
	// connection): check the request alone.
	req, _ := http.NewRequest("GET", url, nil)
	req.Header = h.Clone()
	if ok, errs := r.spec.v.ValidateHttpRequest(req); !ok {
		t.Errorf("GET /v1/events?%s violates openapi.yaml:%s", query, apitest.DescribeErrs(errs))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http"), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial the feed: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("feed handshake = %d", resp.StatusCode)
	}
	conn.SetReadLimit(1 << 20)
	f := &feed{t: t, conn: conn, done: make(chan struct{})}
	go f.run(r.spec)
	t.Cleanup(func() {
		conn.Close(websocket.StatusNormalClosure, "test over")
		<-f.done
	})
	return f
}

func (f *feed) run(s *openAPISpec) {
	defer close(f.done)
	for {
		typ, data, err := f.conn.Read(context.Background())
		if err != nil {
			f.mu.Lock()
			f.err = err
			f.mu.Unlock()
			return
		}
		if typ != websocket.MessageText {
			f.t.Errorf("feed sent a %v message", typ)
			continue
		}
		s.checkFrame(f.t, data)
		var head struct {
			Channel string `json:"channel"`
			Type    string `json:"type"`
		}
		_ = json.Unmarshal(data, &head)
		f.mu.Lock()
		if head.Channel == "feed" {
			f.gaps++
			f.mu.Unlock()
			continue
		}
		env, ev, err := events.Unmarshal(data)
		if err != nil {
			f.mu.Unlock()
			f.t.Errorf("feed frame %s: %v", data, err)
			continue
		}
		f.recs = append(f.recs, bus.Record{Envelope: env, Event: ev})
		f.mu.Unlock()
	}
}

// all returns the records read so far.
func (f *feed) all() []bus.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bus.Record(nil), f.recs...)
}

// waitFlow waits until the feed's records of the call hold the steps.
func (f *feed) waitFlow(t *testing.T, id, callID string, steps ...step) []bus.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		call := callRecords(f.all(), id, callID)
		if ok, _ := matchFlow(call, steps); ok || time.Now().After(deadline) {
			wantFlow(t, call, steps...)
			return call
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openRESTNode starts a node with API keys and no rate limit, plus extra.
func openRESTNode(t *testing.T, extra env) (*node, *rest) {
	t.Helper()
	e := env{"CALLBUS_API_KEYS": restKey, "CALLBUS_RATE_LIMIT": "0"}
	for k, v := range extra {
		e[k] = v
	}
	n := openFlowNode(t, e)
	return n, newREST(t, n.Main, restKey)
}

// wantRESTProblem checks a problem answer, including its field.
func wantRESTProblem(t *testing.T, resp *http.Response, body []byte, status int, code callcore.Code, field string) httpapi.Problem {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != httpapi.ContentTypeProblem {
		t.Errorf("got %d %q, want %d problem+json; body %s", resp.StatusCode, resp.Header.Get("Content-Type"), status, body)
	}
	p := decodeStrict[httpapi.Problem](t, body)
	if p.Status != status || p.Code != code || p.Field != field || p.Detail == "" {
		t.Errorf("problem %+v, want status %d code %s field %q", p, status, code, field)
	}
	return p
}

// TestOpenAPIFrameSchema checks the spec's Frame against what the feed
// sends: an event frame and a Gap frame pass, a frame missing its channel
// does not.
func TestOpenAPIFrameSchema(t *testing.T) {
	s := loadSpec(t)
	ev, err := events.Marshal(events.Envelope{Seq: 7, ID: events.ID{Hi: 1, Lo: 2}, Time: time.Now(), Node: "a",
		Cause: events.ID{Hi: 1, Lo: 1}}, &events.CallCreated{SessionRef: events.SessionRef{SessionID: "a.x"}, Direction: "inbound"})
	if err != nil {
		t.Fatal(err)
	}
	gap := ws.GapFrame("a", time.Now(), bus.Gap{FromSeq: 3, ToSeq: 9, Dropped: 7, Reason: bus.GapLagging})
	for name, frame := range map[string][]byte{"event": ev, "gap": gap} {
		s.mu.Lock()
		ok, errs := s.sv.ValidateSchemaBytes(s.frame, frame)
		s.mu.Unlock()
		if !ok {
			t.Errorf("%s frame %s violates Frame:%s", name, frame, apitest.DescribeErrs(errs))
		}
	}
	bad := bytes.Replace(ev, []byte(`"channel":"session_to_app",`), nil, 1)
	s.mu.Lock()
	ok, _ := s.sv.ValidateSchemaBytes(s.frame, bad)
	s.mu.Unlock()
	if ok || bytes.Equal(bad, ev) {
		t.Errorf("a frame without a channel passes Frame: %s", bad)
	}
}
