package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openStore opens a store on dir, closed at the end of the test.
func openStore(t testing.TB, dir string, cfg Config) *Store {
	t.Helper()
	return openStoreLog(t, dir, cfg, nil)
}

// openStoreLog is openStore logging to log.
func openStoreLog(t testing.TB, dir string, cfg Config, log *slog.Logger) *Store {
	t.Helper()
	s := newOpen(t, dir, cfg, log)
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("store Close: %v", err)
		}
	})
	return s
}

// newOpen returns a store on dir, opened; closing it is the caller's.
func newOpen(t testing.TB, dir string, cfg Config, log *slog.Logger) *Store {
	t.Helper()
	cfg.Dir = dir
	s, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return s
}

// attached returns a bus and a store attached to it. The bus is closed
// after the store (cleanups run last-in first-out).
func attached(t testing.TB, cfg Config, bcfg bus.Config) (*bus.Memory, *Store) {
	t.Helper()
	b := bustest.NewBus(t, bcfg)
	s := openStore(t, t.TempDir(), cfg)
	if err := s.Attach(b); err != nil {
		t.Fatal(err)
	}
	return b, s
}

func syncT(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func ref(id string) events.SessionRef { return events.SessionRef{SessionID: id} }

func hdrs(callID string, more ...string) events.Headers {
	h := events.Headers{{Name: "Call-ID", Value: callID}}
	for i := 0; i+1 < len(more); i += 2 {
		h = append(h, events.Header{Name: more[i], Value: more[i+1]})
	}
	return h
}

// frame decodes a stored frame's envelope.
func frame(t testing.TB, e Event) events.Frame {
	t.Helper()
	var f events.Frame
	if err := json.Unmarshal(e.Frame, &f); err != nil {
		t.Fatalf("seq %d: %v: %s", e.Seq, err, e.Frame)
	}
	if f.Seq != e.Seq {
		t.Fatalf("frame seq %d stored as %d", f.Seq, e.Seq)
	}
	return f
}

// types lists the types of a flow, for comparisons and failure messages.
func types(t testing.TB, evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, frame(t, e).Type)
	}
	return out
}

func callEvents(t testing.TB, s *Store, id string) []Event {
	t.Helper()
	evs, err := s.CallEvents(ctxT(t), id, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func getCall(t testing.TB, s *Store, id string) callcore.Call {
	t.Helper()
	c, err := s.Call(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantCode(t testing.TB, err error, code callcore.Code, field string) {
	t.Helper()
	ce, ok := err.(*callcore.Error)
	if !ok {
		t.Fatalf("err = %v (%T), want *callcore.Error %s", err, err, code)
	}
	if ce.Code != code || ce.Field != field {
		t.Fatalf("err = %s field %q (%v), want %s field %q", ce.Code, ce.Field, ce, code, field)
	}
}

// allFrames returns every stored frame in seq order, read from the chunks.
func allFrames(t testing.TB, s *Store) [][]byte {
	t.Helper()
	rows, err := s.rdb.QueryContext(ctxT(t), `SELECT seq, frames FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type ev struct {
		seq   uint64
		frame []byte
	}
	var all []ev
	for rows.Next() {
		var first int64
		var frames []byte
		if err := rows.Scan(&first, &frames); err != nil {
			t.Fatal(err)
		}
		if err := readChunk(frames, uint64(first), func(seq uint64, f []byte) bool {
			all = append(all, ev{seq, f})
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(all, func(a, b ev) int { return cmp.Compare(a.seq, b.seq) })
	out := make([][]byte, len(all))
	for i, e := range all {
		out[i] = e.frame
	}
	return out
}

// t0 is when the tests' calls start. The tests play the session: the
// CallUpdated events they publish carry the call resource written out in
// full, as the session builds it.
var t0 = time.Date(2026, 11, 27, 3, 14, 7, 0, time.UTC)

// upd is the CallUpdated of c.
func upd(c callcore.Call) *events.CallUpdated {
	return &events.CallUpdated{SessionRef: ref(c.ID), Call: c}
}

// ringingCall is an inbound call as its CallCreated leaves it.
func ringingCall(id, sip string) callcore.Call {
	return callcore.Call{ID: id, Direction: callcore.Inbound, From: "<sip:alice@example.com>", To: "<sip:bob@callbus>",
		State: callcore.StateRinging, CreatedAt: t0, SipCallID: sip}
}

// answeredCall is that call once answered in PCMU.
func answeredCall(id, sip string) callcore.Call {
	c := ringingCall(id, sip)
	c.State, c.AnsweredAt = callcore.StateActive, t0.Add(2*time.Second)
	c.Media = callcore.CallMedia{Codec: "PCMU", LocalRTP: "127.0.0.1:20000", RemoteRTP: "192.0.2.10:49170"}
	return c
}

// attachedStalled is attached with the writer held before it applies its
// first record until release is called, so that the tap falls behind.
func attachedStalled(t testing.TB, cfg Config, bcfg bus.Config, log *slog.Logger) (b *bus.Memory, s *Store, release func()) {
	t.Helper()
	b = bustest.NewBus(t, bcfg)
	s = openStoreLog(t, t.TempDir(), cfg, log)
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	s.testHookAdd = func() { <-ch }
	if err := s.Attach(b); err != nil {
		t.Fatal(err)
	}
	return b, s, release
}

// logs captures log records, to check that a loss is reported.
type logs struct {
	mu   sync.Mutex
	recs []string
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}
func (l *logs) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logs) WithGroup(string) slog.Handler      { return l }

func (l *logs) find(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if strings.Contains(r, sub) {
			out = append(out, r)
		}
	}
	return out
}
