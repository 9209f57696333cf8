package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/callbus/callbus/callcore/calltest"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/callcore/store"
)

// TestCloseWithinDrainTimeout closes a node with calls up, their audio
// flowing, the store busy with a burst of events and a Sync waiting on
// it. The whole shutdown ends within DRAIN_TIMEOUT, plus a margin for the
// steps that stop at once past it, and leaves nothing running; the store
// reopens with its events. With a feed client that never answers the
// close handshake the deadline passes: Close still returns in time, says
// what it cut short, and the store reopens with what it had committed.
func TestCloseWithinDrainTimeout(t *testing.T) {
	const (
		drain  = 2 * time.Second
		margin = 1500 * time.Millisecond
		calls  = 4
		burst  = 20000
	)
	for _, tc := range []struct {
		name   string
		silent bool // a feed client that never reads holds the drain past its deadline
	}{
		{"store=busy", false},
		{"store=busy/feed=silent-client", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			dir := t.TempDir()
			n := openNode(t, env{"CALLBUS_INBOUND": "answer", "CALLBUS_DRAIN_TIMEOUT": drain.String(), "CALLBUS_DATA_DIR": dir})
			alice := calltest.StartPhone(t, calltest.WithUser("alice"))
			var ids []string
			for i := range calls {
				id, _ := callNode(t, n, alice, fmt.Sprintf("bob%d", i))
				ids = append(ids, id)
			}
			if err := n.Store().Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			synced := n.Store().LastSeq()
			var silent *websocket.Conn
			if tc.silent {
				var err error
				silent, _, err = websocket.Dial(t.Context(), "ws://"+n.Addr().String()+"/v1/events", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer silent.CloseNow()
			}

			// The burst goes to the store's tap alone (session_to_app),
			// faster than the store commits it.
			for i := range burst {
				ev := &events.CallDtmfReceived{SessionRef: events.SessionRef{SessionID: ids[i%calls]}, Digits: "1", Method: "rfc4733"}
				if err := n.Bus().Publish(t.Context(), ev); err != nil {
					t.Fatalf("publish #%d: %v", i, err)
				}
			}
			syncDone := make(chan error, 1)
			go func() { syncDone <- n.Store().Sync(context.Background()) }()

			behind := n.Bus().LastSeq() - n.Store().LastSeq()
			begin := time.Now()
			err := n.Close(context.Background())
			took := time.Since(begin)
			t.Logf("Close took %v with %d calls up and the store %d events behind: %v", took, calls, behind, err)
			if took > drain+margin {
				t.Errorf("Close took %v, DRAIN_TIMEOUT is %v (margin %v)", took, drain, margin)
			}
			switch {
			case !tc.silent && err != nil:
				t.Errorf("Close: %v", err)
			case tc.silent && (err == nil || !strings.Contains(err.Error(), "1 connections cut short")):
				t.Errorf("Close = %v, want it to report the feed connection it cut short", err)
			}
			if err := <-syncDone; err != nil && !errors.Is(err, store.ErrClosed) {
				t.Errorf("Sync in flight at Close: %v", err)
			}
			last := n.Bus().LastSeq()

			// Nothing of the node runs on once the phone and the client
			// are gone.
			if silent != nil {
				silent.CloseNow()
			}
			if err := alice.Close(); err != nil {
				t.Fatal(err)
			}
			goleak.VerifyNone(t, before)

			s, err := store.New(store.Config{Dir: dir}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Open(t.Context()); err != nil {
				t.Fatalf("reopen the store: %v", err)
			}
			defer s.Close(context.Background())
			// The calls left up are ended at the reopening, a CallEnded and
			// the ended call's CallUpdated each, numbered after what was
			// stored.
			const ends = 2 * calls
			got := s.LastSeq()
			if !tc.silent && got != last+ends {
				t.Errorf("reopened store at seq %d, want the bus's %d and %d for the %d calls ended", got, last, ends, calls)
			}
			if got < synced+ends || got > last+ends {
				t.Errorf("reopened store at seq %d, want at least the %d synced before Close and %d for the calls ended, at most %d",
					got, synced, ends, last+ends)
			}
			for _, id := range ids {
				seen := appTypes(t, s, id)
				if seen["CallCreated"] != 1 || seen["CallAnswered"] != 1 || seen["CallEnded"] != 1 ||
					(!tc.silent && seen["DtmfReceived"] != burst/calls) {
					t.Errorf("call %s after the restart: %v, want CallCreated, CallAnswered, CallEnded and (unless cut) %d DtmfReceived",
						id, seen, burst/calls)
				}
			}
		})
	}
}

// appTypes counts the session_to_app events of call id in s by type.
func appTypes(t *testing.T, s *store.Store, id string) map[string]int {
	t.Helper()
	evs, err := s.CallEvents(t.Context(), id, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range evs {
		_, ev, err := events.Unmarshal(e.Frame)
		if err != nil {
			t.Fatalf("call %s: stored frame %s: %v", id, e.Frame, err)
		}
		if ev.Channel() == events.ChannelSessionToApp {
			seen[ev.Type()]++
		}
	}
	return seen
}
