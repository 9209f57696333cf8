package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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
	cfg.Dir = dir
	s, err := Open(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bustest.Close(t, "store", s.Close) })
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

// findType returns the first stored event of type typ.
func findType(t testing.TB, evs []Event, typ string) events.Frame {
	t.Helper()
	for _, e := range evs {
		if f := frame(t, e); f.Type == typ {
			return f
		}
	}
	t.Fatalf("no %s in %v", typ, types(t, evs))
	return events.Frame{}
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

// snapshots is a Snapshot func backed by a map, standing in for the session.
type snapshots struct {
	mu    sync.Mutex
	calls map[string]callcore.Call
	asked int
}

func (m *snapshots) get(id string) (callcore.Call, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.asked++
	c, ok := m.calls[id]
	return c, ok
}

func (m *snapshots) set(c callcore.Call) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.calls == nil {
		m.calls = make(map[string]callcore.Call)
	}
	m.calls[c.ID] = c
}

func (m *snapshots) forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.calls, id)
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
