package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
)

// The harness starts a whole node (every layer on one bus, real sockets)
// and records its bus through a tap, so tests can assert the events of a
// call as well as what its SIP peer saw.

// node is a running callbus with a recorder on its bus.
type node struct {
	*Main
	rec *recorder
}

// openNode starts a node on free loopback ports with extra settings and
// records every control-plane event from its first.
func openNode(t *testing.T, extra env) *node {
	t.Helper()
	m, _, _, _ := openMain(t, extra)
	tap, err := m.Bus().Tap(bus.TapConfig{Name: "test", Buffer: 1 << 16, Replay: true})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{tap: tap, done: make(chan struct{})}
	go r.run()
	t.Cleanup(func() { tap.Close(); <-r.done })
	return &node{Main: m, rec: r}
}

// sipTarget returns the node's SIP URI host:port for network.
func (n *node) sipTarget(network string) string { return n.SIPAddr(network) }

// recorder keeps every record a tap reads.
type recorder struct {
	tap  bus.Tap
	done chan struct{}
	mu   sync.Mutex
	recs []bus.Record
	gaps int
}

func (r *recorder) run() {
	defer close(r.done)
	for {
		rec, err := r.tap.Next(context.Background())
		if err != nil {
			return
		}
		r.mu.Lock()
		if rec.Gap != nil {
			r.gaps++
		}
		r.recs = append(r.recs, rec)
		r.mu.Unlock()
	}
}

// all returns a copy of the records so far.
func (r *recorder) all() []bus.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bus.Record(nil), r.recs...)
}

// wait polls until fn finds what it wants in the records, or fails.
func (r *recorder) wait(t *testing.T, what string, fn func([]bus.Record) bool) []bus.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := r.all()
		if fn(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s; the bus saw:\n%s", what, describe(recs))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// appEvents returns the session_to_app events of the records, optionally
// of one session, but for CallUpdated (see wantCall).
func appEvents(recs []bus.Record, session string) []events.Event {
	var out []events.Event
	for _, r := range recs {
		if r.Event == nil || r.Event.Channel() != events.ChannelSessionToApp || r.Event.Type() == "CallUpdated" {
			continue
		}
		if session == "" || events.SessionOf(r.Event) == session {
			out = append(out, r.Event)
		}
	}
	return out
}

func count(evs []events.Event, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Type() == typ {
			n++
		}
	}
	return n
}

// describe renders records one per line for failure messages.
func describe(recs []bus.Record) string {
	s := ""
	for _, r := range recs {
		if r.Gap != nil {
			s += fmt.Sprintf("  gap %+v\n", *r.Gap)
			continue
		}
		s += fmt.Sprintf("  %6d %s/%s %s\n", r.Envelope.Seq, r.Event.Channel(), label(r.Event), r.Event.Key())
	}
	return s
}

// label names an event with the SIP method or status it carries.
func label(ev events.Event) string {
	switch e := ev.(type) {
	case *events.SipMessageReceived:
		return "SipMessageReceived(" + e.Method + ")"
	case *events.SendSipMessage:
		return "SendSipMessage(" + e.Method + ")"
	case *events.SipResponseReceived:
		return fmt.Sprintf("SipResponseReceived(%d)", e.StatusCode)
	case *events.SendSipResponse:
		return fmt.Sprintf("SendSipResponse(%d)", e.StatusCode)
	case *events.CallStateChanged:
		return "CallStateChanged(" + e.NewState + ")"
	}
	return ev.Type()
}

// freeUDPPort returns a UDP port free at the time of the call, for peers
// (sipp) that cannot report the port they bound.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// requireTool returns the path of an external peer, skipping the test when
// it is missing unless CALLBUS_E2E=1, where a missing peer fails it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CALLBUS_E2E") == "1" {
		t.Fatalf("%s is not installed, and CALLBUS_E2E=1 requires it (.ci/run installs it)", name)
	}
	t.Skipf("%s is not installed; set CALLBUS_E2E=1 with it installed to run this test", name)
	return ""
}
