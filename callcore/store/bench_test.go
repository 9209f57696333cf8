package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// storedCalls returns a store holding n ended calls, each with a short
// flow, and their ids.
func storedCalls(b *testing.B, n int) (*Store, []string) {
	b.Helper()
	bb, s := attached(b, Config{}, bus.Config{})
	ids := make([]string, n)
	for i := range ids {
		id := fmt.Sprintf("n1.bench%05d", i)
		ids[i] = id
		sip := id + "@sip"
		ended := answeredCall(id, sip)
		ended.State, ended.EndReason, ended.EndedAt = callcore.StateTerminated, callcore.EndRemoteHangup, t0.Add(time.Minute)
		ended.Media.Quality = &callcore.CallQuality{MOS: 4.2}
		publishAll(b, bb, []events.Event{
			&events.SipMessageReceived{Method: "INVITE", Headers: hdrs(sip), TransactionID: "st_" + id},
			&events.CallCreated{SessionRef: ref(id), Direction: "inbound", From: "<sip:alice@example.com>", To: "<sip:bob@callbus>", SipCallID: sip},
			&events.CallAnswered{SessionRef: ref(id), Codec: "PCMU"},
			&events.MediaQualityUpdate{SessionRef: ref(id), QualityMetrics: events.QualityMetrics{MOS: 4.2}},
			&events.CallEnded{SessionRef: ref(id), Reason: "remote_hangup"},
			upd(ended),
		})
	}
	syncT(b, s)
	return s, ids
}

// BenchmarkCall reads one call by id (GET /v1/calls/{id}) among 1000.
func BenchmarkCall(b *testing.B) {
	s, ids := storedCalls(b, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Call(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i += 7
	}
}

// BenchmarkCalls reads a page of 50 calls (GET /v1/calls) among 1000: the
// first page and a page deep in the list by cursor, and the first page of
// a state filter.
func BenchmarkCalls(b *testing.B) {
	s, _ := storedCalls(b, 1000)
	ctx := context.Background()
	_, next, err := s.Calls(ctx, CallFilter{Limit: 500})
	if err != nil || next == "" {
		b.Fatal(next, err)
	}
	for _, bc := range []struct {
		name string
		f    CallFilter
	}{
		{"page=first", CallFilter{}},
		{"page=cursor", CallFilter{Cursor: next}},
		{"page=state", CallFilter{State: "terminated"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				calls, _, err := s.Calls(ctx, bc.f)
				if err != nil || len(calls) != 50 {
					b.Fatal(len(calls), err)
				}
			}
		})
	}
}

// BenchmarkCallEvents reads the whole flow of one call (GET
// /v1/calls/{id}/events).
func BenchmarkCallEvents(b *testing.B) {
	s, ids := storedCalls(b, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		evs, err := s.CallEvents(ctx, ids[i%len(ids)], 0, 0)
		if err != nil || len(evs) != 6 {
			b.Fatal(len(evs), err)
		}
		i += 7
	}
}

// BenchmarkIngest measures events/s from Publish to committed rows: whole
// call flows (28 events each, 5 of them CallUpdated, SIP messages included) through the tap into
// SQLite, with a Sync every 40 calls so that the publisher, far faster than
// any disk, does not outrun the bus's history. The baseline is the same
// publishing with no store attached.
func BenchmarkIngest(b *testing.B) {
	flow := func(i int) []events.Event {
		id := fmt.Sprintf("n1.ing%07d", i)
		return append(inboundEvents(id, id+"@sip"), hangupEvents(answeredCall(id, id+"@sip"), id+"@sip")...)
	}
	perCall := len(flow(0))
	for _, bc := range []struct {
		name  string
		store bool
	}{{"store=off", false}, {"store=on", true}} {
		b.Run(bc.name, func(b *testing.B) {
			var bb *bus.Memory
			var s *Store
			if bc.store {
				bb, s = attached(b, Config{}, bus.Config{})
			} else {
				bb = bustest.NewBus(b, bus.Config{})
			}
			ctx := context.Background()
			b.ReportAllocs()
			start := time.Now()
			n := 0
			for b.Loop() {
				for _, ev := range flow(n) {
					if err := bb.Publish(ctx, ev); err != nil {
						b.Fatal(err)
					}
				}
				n++
				if s != nil && n%40 == 0 {
					syncT(b, s)
				}
			}
			if s != nil {
				syncT(b, s)
				if s.Lost() != 0 {
					b.Fatalf("lost %d events", s.Lost())
				}
			}
			b.ReportMetric(float64(n*perCall)/time.Since(start).Seconds(), "events/s")
		})
	}
}
