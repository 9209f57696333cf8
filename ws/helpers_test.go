package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server is a feed behind a real HTTP server, as httpapi mounts it: the
// handler calls Handle and, on an error, writes a plain 400.
type server struct {
	feed     *Feed
	srv      *httptest.Server
	errs     chan error   // what Handle returned, when not nil
	returned atomic.Int64 // Handle calls that have returned
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newServer serves a feed of b configured by cfg until the test ends.
func newServer(t testing.TB, b bus.Bus, cfg Config) *server {
	t.Helper()
	f, err := New(cfg, b, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	s := &server{feed: f, errs: make(chan error, 64)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := f.Handle(w, r)
		s.returned.Add(1)
		if err != nil {
			select {
			case s.errs <- err:
			default:
			}
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}))
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() { _ = f.Close(context.Background()) }) // runs first: clients end before the server
	return s
}

// newFeed returns a memory bus and a feed of it, both closed with the test.
func newFeed(t testing.TB, bcfg bus.Config, cfg Config) (*bus.Memory, *server) {
	t.Helper()
	b := bustest.NewBus(t, bcfg)
	return b, newServer(t, b, cfg)
}

func (s *server) url(query string) string {
	u := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/v1/events"
	if query != "" {
		u += "?" + query
	}
	return u
}

// dial connects a feed client, closed (abruptly) at the end of the test.
func (s *server) dial(t testing.TB, query string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	return dialURL(t, s.url(query), opts)
}

// dialURL connects a WebSocket client, closed (abruptly) at the end of the test.
func dialURL(t testing.TB, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	return conn
}

// handleErr returns the next error Handle returned.
func (s *server) handleErr(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.errs:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Handle returned no error")
		return nil
	}
}

// smallReceiveBuffer has a client's socket take little before its reader
// must read, so that a client that does not read blocks the server soon.
func smallReceiveBuffer() *websocket.DialOptions {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}}
}

// frame is one feed frame as a client sees it.
type frame struct {
	Seq       uint64          `json:"seq"`
	ID        string          `json:"id"`
	Time      time.Time       `json:"time"`
	Node      string          `json:"node"`
	Channel   string          `json:"channel"`
	Type      string          `json:"type"`
	SessionID string          `json:"session_id"`
	Data      json.RawMessage `json:"data"`
	raw       []byte
}

func (f frame) isGap() bool { return f.Channel == ChannelFeed && f.Type == TypeGap }

func (f frame) gap(t testing.TB) bus.Gap {
	t.Helper()
	var g bus.Gap
	if err := json.Unmarshal(f.Data, &g); err != nil {
		t.Fatalf("gap data %s: %v", f.Data, err)
	}
	return g
}

func (f frame) String() string {
	if f.isGap() {
		return "Gap" + string(f.Data)
	}
	return fmt.Sprintf("%d:%s/%s/%s", f.Seq, f.Channel, f.Type, f.SessionID)
}

func decodeFrame(typ websocket.MessageType, b []byte) (frame, error) {
	if typ != websocket.MessageText {
		return frame{}, fmt.Errorf("message type %v, want text", typ)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return frame{}, fmt.Errorf("frame %s: %w", b, err)
	}
	f.raw = b
	return f, nil
}

// decodeSeq is decodeFrame for load tests, which read thousands of big
// frames, slow to decode under the race detector: of an event frame with
// a seq it reads only the seq.
func decodeSeq(typ websocket.MessageType, b []byte) (frame, error) {
	if rest, ok := bytes.CutPrefix(b, []byte(`{"seq":`)); ok && typ == websocket.MessageText {
		if i := bytes.IndexByte(rest, ','); i > 0 {
			if seq, err := strconv.ParseUint(string(rest[:i]), 10, 64); err == nil {
				return frame{Seq: seq, raw: b}, nil
			}
		}
	}
	return decodeFrame(typ, b)
}

// readFrame reads one frame, failing the test after 10 seconds.
func readFrame(t testing.TB, conn *websocket.Conn) frame {
	t.Helper()
	return readWith(t, conn, decodeFrame)
}

func readWith(t testing.TB, conn *websocket.Conn, decode func(websocket.MessageType, []byte) (frame, error)) frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	f, err := decode(typ, b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// readUntil reads frames until last returns true for one, and returns
// them all, that one included.
func readUntil(t testing.TB, conn *websocket.Conn, last func(frame) bool) []frame {
	t.Helper()
	var out []frame
	for {
		f := readFrame(t, conn)
		out = append(out, f)
		if last(f) {
			return out
		}
	}
}

// readSeqsUntil is readUntil for load tests: event frames carry their seq
// only (see decodeSeq).
func readSeqsUntil(t testing.TB, conn *websocket.Conn, last func(frame) bool) []frame {
	t.Helper()
	var out []frame
	for {
		f := readWith(t, conn, decodeSeq)
		out = append(out, f)
		if last(f) {
			return out
		}
	}
}

// readClose reads (and drops) frames until the connection ends, and
// returns the error that ended it.
func readClose(t testing.TB, conn *websocket.Conn) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if _, _, err := conn.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatalf("connection still open: %v", err)
			}
			return err
		}
	}
}

func seqIs(seq uint64) func(frame) bool { return func(f frame) bool { return f.Seq == seq } }

func ref(id string) events.SessionRef { return events.SessionRef{SessionID: id} }

func created(id string) *events.CallCreated {
	return &events.CallCreated{SessionRef: ref(id), Direction: "inbound", From: "sip:alice@example.com", To: "sip:bob@example.com"}
}

func stateChanged(id, state string) *events.CallStateChanged {
	return &events.CallStateChanged{SessionRef: ref(id), NewState: state}
}

func ended(id string) *events.CallEnded {
	return &events.CallEnded{SessionRef: ref(id), Reason: "remote_hangup"}
}

func rtpIn(id string, ts uint32) *events.RtpPacketReceived {
	return &events.RtpPacketReceived{SessionRef: ref(id), Timestamp: ts, PayloadType: 0, Payload: []byte{0xff, 0xfe}}
}

func sipMessage(callID string, body string) *events.SipMessageReceived {
	return &events.SipMessageReceived{
		Source: "127.0.0.1:5062", Method: "INVITE", TransactionID: "z9hG4bK" + callID,
		Headers: events.Headers{{Name: "Call-ID", Value: callID}, {Name: "CSeq", Value: "1 INVITE"}},
		Body:    body,
	}
}

// publishAll publishes evs in order, failing the test on an error.
func publishAll(t testing.TB, b bus.Bus, evs ...events.Event) {
	t.Helper()
	for _, ev := range evs {
		bustest.Publish(t, b, ev)
	}
}
