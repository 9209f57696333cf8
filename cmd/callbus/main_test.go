package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

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

// testRTPPorts keeps this package's RTP sockets apart from the media and
// rtp packages' tests, which run at the same time.
const testRTPPorts = "28000-29998"

// testConfig is the default configuration on free loopback ports.
func testConfig(t *testing.T, extra env) Config {
	t.Helper()
	e := env{"CALLBUS_HTTP_ADDR": "127.0.0.1:0", "CALLBUS_NODE_ID": "test", "CALLBUS_DRAIN_TIMEOUT": "5s",
		"CALLBUS_SIP_ADDR": "127.0.0.1:0", "CALLBUS_RTP_PORTS": testRTPPorts, "CALLBUS_DATA_DIR": t.TempDir()}
	for k, v := range extra {
		e[k] = v
	}
	cfg, err := load(t, e)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

// openMain opens a node on a free loopback port and closes it when the
// test ends. It returns the node, its base URL and a client whose
// connections are closed when the test ends.
func openMain(t *testing.T, extra env) (*Main, string, *http.Client, *logBuffer) {
	t.Helper()
	m := NewMain(testConfig(t, extra))
	logs := &logBuffer{}
	m.LogOutput = logs
	if err := m.Open(t.Context()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Tests that care about Close's result call it themselves; Close is
	// idempotent.
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return m, "http://" + m.Addr().String(), &http.Client{Transport: tr, Timeout: 10 * time.Second}, logs
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}

type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

func wantProblem(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("got %d %q, want %d application/problem+json; body %s",
			resp.StatusCode, resp.Header.Get("Content-Type"), status, body)
	}
	var p problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem %s: %v", body, err)
	}
	if p.Status != status || p.Code != code || p.Type == "" || p.Title == "" {
		t.Errorf("problem = %+v, want status %d code %q", p, status, code)
	}
}

func TestMainServes(t *testing.T) {
	m, url, c, logs := openMain(t, nil)

	if !strings.Contains(logs.String(), `msg="callbus listening" http=`+m.Addr().String()+" node=test") {
		t.Errorf("start-up log %q lacks the bound address and node", logs.String())
	}

	resp, body := get(t, c, url+"/healthz")
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Errorf("GET /healthz = %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, c, url+"/readyz")
	if resp.StatusCode != 200 {
		t.Errorf("GET /readyz = %d %s", resp.StatusCode, body)
	}

	resp, body = get(t, c, url+"/v1/events/catalogue")
	var cat events.CatalogueDoc
	if err := json.Unmarshal(body, &cat); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/events/catalogue = %d, decode: %v", resp.StatusCode, err)
	}
	if len(cat.Channels) == 0 || len(cat.Channels[0].Events) == 0 {
		t.Errorf("catalogue has no channel or no event: %+v", cat)
	}

	resp, body = get(t, c, url+"/no/such/route")
	wantProblem(t, resp, body, 404, "not_found")

	resp, err := c.Post(url+"/healthz", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	wantProblem(t, resp, body, 405, "bad_request")
	if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("405 Allow = %q, want GET listed", allow)
	}
}

func TestMainMetrics(t *testing.T) {
	m, url, c, _ := openMain(t, nil)

	// One event through the bus, so that its per-type metrics exist.
	ev := &events.TerminateSession{SessionRef: events.SessionRef{SessionID: "s-metrics"}, Reason: "test"}
	if err := m.bus.Publish(t.Context(), ev); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	resp, body := get(t, c, url+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds", "callbus_bus_seq", "callbus_bus_published_total"} {
		if families[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if f := families["callbus_bus_seq"]; f != nil && f.GetMetric()[0].GetGauge().GetValue() < 1 {
		t.Errorf("callbus_bus_seq = %v after one publish", f.GetMetric()[0].GetGauge().GetValue())
	}
	for name := range families {
		if !strings.HasPrefix(name, "callbus_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("unexpected metric family %s", name)
		}
	}
}

// blockingSubscriber subscribes a handler to TerminateSession that holds
// each event until release is closed or the bus stops it.
func blockingSubscriber(t *testing.T, m *Main) (started <-chan struct{}, release chan struct{}) {
	t.Helper()
	st := make(chan struct{}, 16)
	release = make(chan struct{})
	_, err := m.bus.Subscribe(bus.Subscriber{
		Name:     "test-blocker",
		Channels: []string{events.ChannelSessionToDialog},
		Handle: func(ctx context.Context, _ events.Envelope, _ events.Event) error {
			st <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		},
	})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return st, release
}

func publishTerminate(t *testing.T, m *Main, session string) {
	t.Helper()
	ev := &events.TerminateSession{SessionRef: events.SessionRef{SessionID: session}, Reason: "test"}
	if err := m.bus.Publish(t.Context(), ev); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// TestMainCloseOrder holds the bus drain open with a busy handler and
// checks what Close has done by then: the node reports not ready and the
// HTTP listener is shut; once the handler returns, Close returns cleanly.
func TestMainCloseOrder(t *testing.T) {
	m, url, c, logs := openMain(t, nil)
	started, release := blockingSubscriber(t, m)
	publishTerminate(t, m, "s-drain")
	<-started

	closed := make(chan error, 1)
	go func() { closed <- m.Close(context.Background()) }()

	bustest.CheckFor(t, 5*time.Second, func() error {
		if m.Ready() == nil {
			return fmt.Errorf("still ready after Close began")
		}
		if _, err := net.DialTimeout("tcp", m.Addr().String(), time.Second); err == nil {
			return fmt.Errorf("HTTP listener still accepts while the bus drains")
		}
		return nil
	})
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a handler was still busy", err)
	default:
	}
	// While draining, readiness fails with 503 (asked in-process: the
	// listener is already shut).
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	wantProblem(t, rec.Result(), rec.Body.Bytes(), 503, "unavailable")
	if _, err := c.Get(url + "/healthz"); err == nil {
		t.Error("GET /healthz succeeded after Close began")
	}

	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close after a complete drain: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return once the handler returned")
	}
	if !strings.Contains(logs.String(), "callbus stopped") {
		t.Errorf("no stop logged: %s", logs.String())
	}
}

// TestMainCloseReportsUndrained runs out DRAIN_TIMEOUT with an event still
// queued: Close logs it and returns the error.
func TestMainCloseReportsUndrained(t *testing.T) {
	m, _, _, logs := openMain(t, env{"CALLBUS_DRAIN_TIMEOUT": "100ms"})
	started, _ := blockingSubscriber(t, m)
	publishTerminate(t, m, "s-stuck")
	publishTerminate(t, m, "s-stuck") // queued behind the first: same key
	<-started

	err := m.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "undelivered") {
		t.Fatalf("Close = %v, want an error naming the undelivered event; log:\n%s", err, logs.String())
	}
	if l := logs.String(); !strings.Contains(l, "bus drain incomplete") || !strings.Contains(l, "undelivered") {
		t.Errorf("log %q does not report what remained", l)
	}
	if again := m.Close(context.Background()); again == nil || again.Error() != err.Error() {
		t.Errorf("second Close = %v, want the first result %v", again, err)
	}
}

func TestMainCloseIdempotent(t *testing.T) {
	// Close before Open does nothing.
	if err := NewMain(testConfig(t, nil)).Close(context.Background()); err != nil {
		t.Errorf("Close before Open: %v", err)
	}

	m, url, c, logs := openMain(t, nil)
	get(t, c, url+"/healthz")
	c.Transport.(*http.Transport).CloseIdleConnections()
	for i := 0; i < 3; i++ {
		if err := m.Close(context.Background()); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if n := strings.Count(logs.String(), "callbus stopped"); n != 1 {
		t.Errorf("logged %d stops, want 1", n)
	}
	if _, err := c.Get(url + "/healthz"); err == nil {
		t.Error("server still answers after Close")
	}
	if err := m.Open(t.Context()); err == nil {
		t.Error("Open after Close succeeded")
	}
}

func TestMainOpenFailsOnBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m := NewMain(testConfig(t, env{"CALLBUS_HTTP_ADDR": ln.Addr().String()}))
	m.LogOutput = io.Discard
	err = m.Open(t.Context())
	if err == nil {
		m.Close(context.Background())
		t.Fatal("Open on a busy port succeeded")
	}
	if !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Open error %q does not name the address", err)
	}
	if m.Ready() == nil {
		t.Error("Ready after a failed Open")
	}
	if err := m.Close(context.Background()); err != nil {
		t.Errorf("Close after a failed Open: %v", err)
	}
}

func TestRunConfigError(t *testing.T) {
	setenv(t, env{"CALLBUS_LOG_LEVEL": "loud"})
	var stderr bytes.Buffer
	code := run(&stderr)
	if code != exitConfig {
		t.Errorf("exit code %d, want %d", code, exitConfig)
	}
	want := "callbus: CALLBUS_LOG_LEVEL: \"loud\" is not one of debug, info, warn, error\n"
	if stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}

func TestLogFormat(t *testing.T) {
	for _, format := range []string{LogFormatText, LogFormatJSON} {
		t.Run("format="+format, func(t *testing.T) {
			_, _, _, logs := openMain(t, env{"CALLBUS_LOG_FORMAT": format})
			line, _, _ := strings.Cut(logs.String(), "\n")
			var rec map[string]any
			isJSON := json.Unmarshal([]byte(line), &rec) == nil
			if isJSON != (format == LogFormatJSON) {
				t.Errorf("LOG_FORMAT=%s wrote %q", format, line)
			}
		})
	}
}
