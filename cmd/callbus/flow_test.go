package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/calltest"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// The flow tests drive a whole node from calltest phones over loopback
// sockets and check three views of each call: the events on the bus (as a
// causal tree: DESIGN.md §4 is a partial order, since events of different
// keys are handled in parallel), the SIP messages on the wire as the phone
// saw them, and the final state on both sides.

// flowCtx bounds a flow test's waits on the phones.
func flowCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openFlowNode is openNode for the flow tests. At the end of the test,
// after the phones started later have closed and before the node closes,
// it quiesces the node, so that a datagram a phone sent last (the ACK of a
// non-2xx, which shows nowhere on the bus) is handled before the node
// closes rather than while it does.
func openFlowNode(t *testing.T, extra env) *node {
	t.Helper()
	m := NewMain(testConfig(t, extra))
	m.LogOutput = &logBuffer{}
	if err := m.Open(t.Context()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	tap, err := m.Bus().Tap(bus.TapConfig{Name: "test", Buffer: 1 << 16, Replay: true})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{tap: tap, done: make(chan struct{})}
	go r.run()
	t.Cleanup(func() { tap.Close(); <-r.done })
	n := &node{Main: m, rec: r}
	t.Cleanup(func() { quiesce(t, n) })
	return n
}

// quiesce waits until the node answered three OPTIONS in a row, sent
// from a socket of its own. The node reads its UDP socket in order, so
// what a phone sent before has been read; but sipgo handles each message
// in a goroutine of its own, so the round trips through the bus are what
// give that goroutine time to run before the node closes. It narrows the
// window of the transport bug of TestFlowCloseWhileRequestsArrive; it
// cannot close it.
func quiesce(t *testing.T, n *node) {
	t.Helper()
	p := newRawPeer(t, n)
	defer p.conn.Close()
	for i := range 3 {
		p.send(sipRequest(p, "OPTIONS", "sip:quiesce@"+n.sipTarget("udp"), fmt.Sprintf("z9hG4bK-quiesce-%d", i),
			"From: <sip:quiesce@127.0.0.1>;tag=q", "To: <sip:quiesce@127.0.0.1>",
			fmt.Sprintf("Call-ID: quiesce-%d-%s", i, p.addr()), "CSeq: 1 OPTIONS", "Max-Forwards: 70"))
		if res := p.response(); !strings.HasPrefix(res, "SIP/2.0 200 ") {
			t.Errorf("OPTIONS at the end of the test: %s", res)
			return
		}
	}
}

// nodeURI is a SIP URI for user at the node's UDP listener.
func nodeURI(n *node, user string) string { return "sip:" + user + "@" + n.sipTarget("udp") }

// sessionRef names a session in a command.
func sessionRef(id string) events.SessionRef { return events.SessionRef{SessionID: id} }

// command sends an api_to_session command and fails the test when the
// session refuses it.
func command(t *testing.T, n *node, cmd events.Event) *events.CommandResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := n.Bus().Request(ctx, cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd.Type(), err)
	}
	return res
}

// callIDOf returns the SIP Call-ID a record carries in its headers (SIP
// message events) or fields (IncomingCall), or "".
func callIDOf(ev events.Event) string {
	switch e := ev.(type) {
	case *events.SipMessageReceived:
		return e.Headers.Get("Call-ID")
	case *events.SipResponseReceived:
		return e.Headers.Get("Call-ID")
	case *events.SendSipMessage:
		return e.Headers.Get("Call-ID")
	case *events.SendSipResponse:
		return e.Headers.Get("Call-ID")
	case *events.IncomingCall:
		return e.CallID
	}
	return ""
}

// callRecords returns the records of one call: every event of session id
// or of SIP Call-ID callID, and every event that descends from one of them
// through its cause chain, in seq order.
func callRecords(recs []bus.Record, id, callID string) []bus.Record {
	in := map[events.ID]bool{}
	var out []bus.Record
	for _, r := range recs { // a cause always has a lower seq than its effects
		if r.Event == nil {
			continue
		}
		mine := (id != "" && events.SessionOf(r.Event) == id) ||
			(callID != "" && callIDOf(r.Event) == callID) ||
			(!r.Envelope.Cause.IsZero() && in[r.Envelope.Cause])
		if mine {
			in[r.Envelope.ID] = true
			out = append(out, r)
		}
	}
	return out
}

// labels returns the sorted labels of recs, leaving out the periodic
// statistics and quality reports: how many a call has depends on how long
// it lasts (one every 5 s, and a final one at the stop, which
// finalReports checks).
func labels(recs []bus.Record) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		if periodic(r.Event) {
			continue
		}
		out = append(out, label(r.Event))
	}
	slices.Sort(out)
	return out
}

// settled waits until the events of the call (session id, SIP Call-ID
// callID) are, as a multiset of labels, exactly want, and returns every
// record so far; when they are not within 5s it fails the test with the
// difference. Layers run in parallel: a flow's last event on the app
// channel (CallAnswered…) may come before the last of another layer
// (UpdateRtpStream…), so tests wait for the whole flow, then check it.
func settled(t *testing.T, n *node, id, callID string, want ...string) []bus.Record {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := n.rec.all()
		if slices.Equal(labels(callRecords(recs, id, callID)), want) || time.Now().After(deadline) {
			wantLabels(t, callRecords(recs, id, callID), want...)
			return recs
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantLabels compares the multiset of the labels of recs with want.
func wantLabels(t *testing.T, recs []bus.Record, want ...string) {
	t.Helper()
	got := labels(recs)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the call's events differ from the flow\n missing: %v\n extra:   %v\nthe call's events:\n%s",
			diffLabels(want, got), diffLabels(got, want), tree(recs))
	}
}

// diffLabels returns the labels of a that b lacks, counting repeats.
func diffLabels(a, b []string) []string {
	left := map[string]int{}
	for _, l := range b {
		left[l]++
	}
	var out []string
	for _, l := range a {
		if left[l] > 0 {
			left[l]--
			continue
		}
		out = append(out, l)
	}
	return out
}

// tree renders recs as their cause tree, one event a line in seq order,
// indented under its cause when the cause is among recs.
func tree(recs []bus.Record) string {
	type pos struct {
		depth int
		seq   uint64
	}
	depth := map[events.ID]pos{}
	var b strings.Builder
	for _, r := range recs {
		if r.Event == nil {
			fmt.Fprintf(&b, "  gap %+v\n", *r.Gap)
			continue
		}
		d, cause := 0, ""
		if p, ok := depth[r.Envelope.Cause]; ok {
			d, cause = p.depth+1, fmt.Sprintf(" (cause %d)", p.seq)
		}
		depth[r.Envelope.ID] = pos{d, r.Envelope.Seq}
		fmt.Fprintf(&b, "  %6d %s%s/%s %s%s\n", r.Envelope.Seq, strings.Repeat("  ", d),
			r.Event.Channel(), label(r.Event), r.Event.Key(), cause)
	}
	return b.String()
}

// step is one event of a flow: its label, the earlier step it is an
// effect of (a descendant through cause links), and earlier steps it must
// follow in seq without a cause link (events of other keys, handled in
// parallel, are ordered only where one layer publishes both).
type step struct {
	label  string
	cause  int   // index of the step this one descends from; noStep for none
	follow []int // indices of steps this one comes after in seq
}

const noStep = -1

// first is the first step of a flow.
func first(label string) step { return step{label: label, cause: noStep} }

// causedBy is a step that descends from step ref.
func causedBy(ref int, label string) step { return step{label: label, cause: ref} }

// after is a step with no cause link to steps refs, later in seq than each.
func after(label string, refs ...int) step { return step{label: label, cause: noStep, follow: refs} }

// and adds steps that s must also follow in seq.
func (s step) and(refs ...int) step { s.follow = append(slices.Clone(s.follow), refs...); return s }

// wantFlow checks that recs hold the steps as a causal chain: each step
// is a distinct event of its label that descends from the event matched
// to its cause step and has a higher seq than those matched to the steps
// it follows. It searches every assignment, so a retransmission matched
// first cannot hide a valid one. steps are numbered from 0.
func wantFlow(t *testing.T, recs []bus.Record, steps ...step) {
	t.Helper()
	for i, s := range steps {
		if s.cause >= i || slices.ContainsFunc(s.follow, func(r int) bool { return r >= i || r < 0 }) {
			t.Fatalf("step %d (%s) refers to a later step", i, s.label)
		}
	}
	ok, deepest := matchFlow(recs, steps)
	if ok {
		return
	}
	s := steps[deepest]
	var want []string
	if s.cause != noStep {
		want = append(want, fmt.Sprintf("caused by step %d (%s)", s.cause, steps[s.cause].label))
	}
	for _, f := range s.follow {
		want = append(want, fmt.Sprintf("after step %d (%s)", f, steps[f].label))
	}
	t.Errorf("flow broken at step %d: no %s %s\nthe call's events:\n%s",
		deepest, s.label, strings.Join(want, " and "), tree(recs))
}

// waitFlow waits until the records of the call (session id, SIP Call-ID
// callID) hold the steps (see wantFlow), and returns every record so far;
// after 10s it fails the test naming the step that is missing. The
// recorder reads the bus behind the network: a message a phone got may
// not be recorded yet.
func waitFlow(t *testing.T, n *node, id, callID string, steps ...step) []bus.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := n.rec.all()
		call := callRecords(recs, id, callID)
		if ok, _ := matchFlow(call, steps); ok || time.Now().After(deadline) {
			wantFlow(t, call, steps...)
			return recs
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// matchFlow reports whether recs hold the steps, and else the index of
// the deepest step any assignment reached.
func matchFlow(recs []bus.Record, steps []step) (bool, int) {
	byID := map[events.ID]bus.Record{}
	for _, r := range recs {
		if r.Event != nil {
			byID[r.Envelope.ID] = r
		}
	}
	descends := func(r bus.Record, from events.ID) bool {
		for c := r.Envelope.Cause; !c.IsZero(); {
			if c == from {
				return true
			}
			p, ok := byID[c]
			if !ok {
				return false
			}
			c = p.Envelope.Cause
		}
		return false
	}
	chosen := make([]bus.Record, len(steps))
	used := map[events.ID]bool{}
	deepest := 0
	var match func(i int) bool
	match = func(i int) bool {
		if i == len(steps) {
			return true
		}
		deepest = max(deepest, i)
		s := steps[i]
	next:
		for _, r := range recs {
			if r.Event == nil || used[r.Envelope.ID] || label(r.Event) != s.label {
				continue
			}
			if s.cause != noStep && !descends(r, chosen[s.cause].Envelope.ID) {
				continue
			}
			for _, f := range s.follow {
				if r.Envelope.Seq <= chosen[f].Envelope.Seq {
					continue next
				}
			}
			chosen[i], used[r.Envelope.ID] = r, true
			if match(i + 1) {
				return true
			}
			used[r.Envelope.ID] = false
		}
		return false
	}
	return match(0), deepest
}

// ended waits for the CallEnded of session id and returns the records.
func ended(t *testing.T, n *node, id string) []bus.Record {
	t.Helper()
	return n.rec.wait(t, "CallEnded of "+id, func(recs []bus.Record) bool {
		return count(appEvents(recs, id), "CallEnded") == 1
	})
}

// wantEnded checks the end of session id: its CallEnded is the last
// session_to_app event, with reason and (when not 0) SIP status, and the
// session's snapshot agrees.
func wantEnded(t *testing.T, n *node, recs []bus.Record, id string, reason callcore.EndReason, status int) {
	t.Helper()
	evs := appEvents(recs, id)
	if len(evs) == 0 {
		t.Fatalf("no session_to_app event for %s", id)
	}
	e, ok := evs[len(evs)-1].(*events.CallEnded)
	if !ok {
		t.Fatalf("last session_to_app event of %s is %s, want CallEnded", id, evs[len(evs)-1].Type())
	}
	if e.Reason != string(reason) || (status != 0 && e.SipStatus != status) {
		t.Errorf("CallEnded %+v, want reason %s, sip_status %d", *e, reason, status)
	}
	c := wantCall(t, n, id)
	if c.State != callcore.StateTerminated || c.EndReason != reason || (status != 0 && c.SipStatus != status) || c.EndedAt.IsZero() {
		t.Errorf("session snapshot %+v, want terminated, %s, sip_status %d", c, reason, status)
	}
}

// wantSnapshot checks the live state of session id.
func wantSnapshot(t *testing.T, n *node, id string, state callcore.CallState, held bool) callcore.Call {
	t.Helper()
	c := wantCall(t, n, id)
	if c.State != state || c.Held != held {
		t.Errorf("session %s is %s (held %v), want %s (held %v)", id, c.State, c.Held, state, held)
	}
	return c
}

// wantCall checks that the three views of call id agree, and returns it:
// the call the session reports, the call of its latest CallUpdated as a
// feed client decodes it from the event's frame, and the store's row,
// read once the store holds every event published so far. It waits until
// the session's resource has been published (a step publishes it last).
func wantCall(t *testing.T, n *node, id string) callcore.Call {
	t.Helper()
	var c, fed callcore.Call
	bustest.CheckFor(t, 10*time.Second, func() error {
		var ok bool
		if c, ok = n.layers.sessions.Get(id); !ok {
			return fmt.Errorf("session %s is not known", id)
		}
		recs := n.rec.all()
		var r *bus.Record
		for i := len(recs) - 1; i >= 0 && r == nil; i-- {
			if u, ok := recs[i].Event.(*events.CallUpdated); ok && u.SessionID == id {
				r = &recs[i]
			}
		}
		if r == nil {
			return fmt.Errorf("no CallUpdated of %s", id)
		}
		b, _, err := r.Frame()
		if err != nil {
			return fmt.Errorf("CallUpdated of %s: %w", id, err)
		}
		_, ev, err := events.Unmarshal(b)
		if err != nil {
			return fmt.Errorf("CallUpdated frame of %s: %w: %s", id, err, b)
		}
		if fed = ev.(*events.CallUpdated).Call; !sameCall(fed, c) {
			return fmt.Errorf("the latest CallUpdated of %s is not the session's call:\n feed    %+v\n session %+v", id, fed, c)
		}
		return nil
	})
	ctx := flowCtx(t)
	if err := n.Store().Sync(ctx); err != nil {
		t.Fatal(err)
	}
	stored, err := n.Store().Call(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !sameCall(stored, fed) {
		t.Errorf("store's call %s\n %+v\nlatest CallUpdated\n %+v", id, stored, fed)
	}
	return c
}

// sameCall compares calls with times compared as instants (a decoded time
// has no monotonic reading).
func sameCall(a, b callcore.Call) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) || !a.AnsweredAt.Equal(b.AnsweredAt) || !a.EndedAt.Equal(b.EndedAt) {
		return false
	}
	qa, qb := a.Media.Quality, b.Media.Quality
	if (qa == nil) != (qb == nil) || qa != nil && *qa != *qb {
		return false
	}
	a.CreatedAt, a.AnsweredAt, a.EndedAt, a.Media.Quality = b.CreatedAt, b.AnsweredAt, b.EndedAt, nil
	b.Media.Quality = nil
	return a == b
}

// wire renders messages as start lines, for failure messages.
func wire(ms []calltest.Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString("  " + m.String() + "\n")
	}
	return b.String()
}

// startLines returns "INVITE", "180 INVITE"… for each message that is not
// a retransmission of the one before it with the same start line and CSeq.
func startLines(ms []calltest.Message) []string {
	var out []string
	var last string
	for _, m := range ms {
		s := m.Method
		if !m.IsRequest() {
			s = fmt.Sprintf("%d %s", m.Status, m.Method)
		}
		key := fmt.Sprintf("%s/%d", s, m.CSeq())
		if key == last {
			continue
		}
		last = key
		out = append(out, s)
	}
	return out
}

// wantWire checks the start lines of ms (retransmissions folded).
func wantWire(t *testing.T, what string, ms []calltest.Message, want ...string) {
	t.Helper()
	if got := startLines(ms); !slices.Equal(got, want) {
		t.Errorf("%s: %v, want %v\n%s", what, got, want, wire(ms))
	}
}

// find returns the first message matching m, failing the test without one.
func find(t *testing.T, ms []calltest.Message, m calltest.Match, what string) calltest.Message {
	t.Helper()
	for _, x := range ms {
		if m(x) {
			return x
		}
	}
	t.Fatalf("no %s among:\n%s", what, wire(ms))
	return calltest.Message{}
}

// direction returns the media direction of an SDP body.
func direction(t *testing.T, body string) string {
	t.Helper()
	s, err := calltest.ParseSDP(body)
	if err != nil {
		t.Fatalf("SDP %q: %v", body, err)
	}
	return s.Direction
}

// tagOf returns the tag parameter of a From or To value.
func tagOf(v string) string {
	for _, p := range strings.Split(v, ";")[1:] {
		if k, val, _ := strings.Cut(strings.TrimSpace(p), "="); strings.EqualFold(k, "tag") {
			return val
		}
	}
	return ""
}

// periodic reports whether ev is a periodic statistics or quality report,
// or a CallUpdated: how many of those a call has depends on how its
// quality changes (wantCall checks the latest).
func periodic(ev events.Event) bool {
	switch ev.(type) {
	case *events.RtpStatisticsUpdate, *events.MediaQualityUpdate, *events.CallUpdated:
		return true
	}
	return false
}

// finalReports checks the end of a call's media: rtp's final
// RtpStatisticsUpdate, caused by StopRtpStream, comes right before
// RtpStreamStopped, and media's final MediaQualityUpdate, caused by it,
// before MediaStreamStopped.
func finalReports(t *testing.T, recs []bus.Record, id string) {
	t.Helper()
	var stop, stats, quality *bus.Record
	for i := range recs {
		r := &recs[i]
		if r.Event == nil || events.SessionOf(r.Event) != id {
			continue
		}
		switch r.Event.(type) {
		case *events.StopRtpStream:
			stop = r
		case *events.RtpStatisticsUpdate:
			if stop != nil && r.Envelope.Cause == stop.Envelope.ID {
				stats = r
			}
		case *events.MediaQualityUpdate:
			if stats != nil && r.Envelope.Cause == stats.Envelope.ID {
				quality = r
			}
		case *events.RtpStreamStopped:
			if stats == nil {
				t.Errorf("RtpStreamStopped (seq %d) without a final RtpStatisticsUpdate before it:\n%s", r.Envelope.Seq, describe(recs))
			}
		case *events.MediaStreamStopped:
			if quality == nil {
				t.Errorf("MediaStreamStopped (seq %d) without the final MediaQualityUpdate before it:\n%s", r.Envelope.Seq, describe(recs))
			}
		}
	}
	if stop == nil {
		t.Errorf("no StopRtpStream for %s", id)
	}
}
