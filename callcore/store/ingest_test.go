package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

func TestTapGapReplayedLosesNothing(t *testing.T) {
	logged := &logs{}
	b, s, release := attachedStalled(t, Config{TapBuffer: 2, BatchSize: 64}, bus.Config{}, slog.New(logged))
	const id, n = "n1.burst", 3000 // more than the pump's queue and the tap together
	c := callcore.Call{ID: id, Direction: callcore.Outbound, State: callcore.StateActive, CreatedAt: t0}
	bustest.Publish(t, b, upd(c))
	for i := 1; i < n; i++ {
		c.Media.Quality = &callcore.CallQuality{PacketsSent: uint64(i)}
		bustest.Publish(t, b, upd(c))
	}
	release()
	syncT(t, s)
	if len(logged.find("tap lagged")) == 0 {
		t.Fatalf("the tap never lagged, so this test tested nothing; logs: %v", logged.recs)
	}
	if s.Lost() != 0 {
		t.Fatalf("Lost = %d: %v", s.Lost(), logged.find("lost"))
	}
	evs := callEvents(t, s, id)
	if len(evs) != n {
		t.Fatalf("%d events stored, want %d", len(evs), n)
	}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: a hole or a duplicate", i, e.Seq)
		}
	}
	if q := getCall(t, s, id).Media.Quality; q == nil || q.PacketsSent != n-1 {
		t.Fatalf("last quality = %+v", q)
	}
}

func TestTapGapBeyondHistoryIsReported(t *testing.T) {
	logged := &logs{}
	b, s, release := attachedStalled(t, Config{TapBuffer: 2}, bus.Config{History: 64}, slog.New(logged))
	const id, n = "n1.lossy", 2000
	bustest.Publish(t, b, upd(callcore.Call{ID: id, Direction: callcore.Outbound, State: callcore.StateActive, CreatedAt: t0}))
	for i := 1; i < n; i++ {
		bustest.Publish(t, b, &events.MediaQualityUpdate{SessionRef: ref(id)})
	}
	release()
	syncT(t, s) // returns although events are missing: they are accounted for
	evs := callEvents(t, s, id)
	lost := s.Lost()
	if lost == 0 || uint64(len(evs))+lost != n {
		t.Fatalf("%d stored + %d lost, want %d in all with some lost", len(evs), lost, n)
	}
	if len(logged.find("events lost")) == 0 {
		t.Fatalf("the loss was not logged: %v", logged.recs)
	}
	var gapped int64
	if err := s.rdb.QueryRowContext(ctxT(t), `SELECT sum(to_seq - from_seq + 1) FROM gaps`).Scan(&gapped); err != nil || uint64(gapped) != lost {
		t.Fatalf("gaps table holds %d seqs (%v), want %d", gapped, err, lost)
	}
	// Every seq is either stored or inside a recorded gap.
	stored := map[uint64]bool{}
	for _, e := range evs {
		stored[e.Seq] = true
	}
	rows, err := s.rdb.QueryContext(ctxT(t), `SELECT from_seq, to_seq FROM gaps`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var from, to uint64
		if err := rows.Scan(&from, &to); err != nil {
			t.Fatal(err)
		}
		for q := from; q <= to; q++ {
			if stored[q] {
				t.Fatalf("seq %d both stored and in a gap", q)
			}
			stored[q] = true
		}
	}
	for q := uint64(1); q <= n; q++ {
		if !stored[q] {
			t.Fatalf("seq %d neither stored nor reported lost", q)
		}
	}
}

func TestRecordings(t *testing.T) {
	b, s := attached(t, Config{}, bus.Config{})
	c := ringingCall("n1.r", "sip-r@x")
	bustest.Publish(t, b, upd(c))
	for i := range 3 {
		bustest.Publish(t, b, &events.RecordingFinished{SessionRef: ref("n1.r"), RecordingID: fmt.Sprintf("rec_%d", i),
			FilePath: fmt.Sprintf("/data/recordings/rec_%d.wav", i), DurationMS: int64(1000 * (i + 1))})
		c.RecordingID = fmt.Sprintf("rec_%d", i)
		bustest.Publish(t, b, upd(c))
	}
	syncT(t, s)
	evs := callEvents(t, s, "n1.r")
	ctx := ctxT(t)
	r, err := s.Recording(ctx, "rec_1")
	if err != nil {
		t.Fatal(err)
	}
	want := Recording{ID: "rec_1", CallID: "n1.r", FilePath: "/data/recordings/rec_1.wav", Format: "wav", DurationMS: 2000,
		CreatedAt: frame(t, evs[3]).Time}
	if !r.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("created_at %v, want %v", r.CreatedAt, want.CreatedAt)
	}
	r.CreatedAt = want.CreatedAt
	if r != want {
		t.Fatalf("Recording = %+v, want %+v", r, want)
	}
	if c := getCall(t, s, "n1.r"); c.RecordingID != "rec_2" {
		t.Fatalf("call's recording_id = %q", c.RecordingID)
	}
	page, next, err := s.Recordings(ctx, "", 2)
	if err != nil || len(page) != 2 || next == "" {
		t.Fatalf("first page: %v next %q err %v", page, next, err)
	}
	rest, next2, err := s.Recordings(ctx, next, 2)
	if err != nil || len(rest) != 1 || next2 != "" {
		t.Fatalf("second page: %v next %q err %v", rest, next2, err)
	}
	seen := map[string]bool{}
	for _, r := range append(page, rest...) {
		seen[r.ID] = true
	}
	if len(seen) != 3 {
		t.Fatalf("listed %v", seen)
	}
	_, _, err = s.Recordings(ctx, "%%%", 0)
	wantCode(t, err, callcore.CodeValidationFailed, "cursor")

	del, err := s.DeleteRecording(ctx, "rec_1")
	if err != nil || del.FilePath != want.FilePath {
		t.Fatalf("DeleteRecording = %+v, %v", del, err)
	}
	_, err = s.Recording(ctx, "rec_1")
	wantCode(t, err, callcore.CodeNotFound, "")
	_, err = s.DeleteRecording(ctx, "rec_1")
	wantCode(t, err, callcore.CodeNotFound, "")
	if all, _, _ := s.Recordings(ctx, "", 0); len(all) != 2 {
		t.Fatalf("after delete: %v", all)
	}
}

func TestRegistrations(t *testing.T) {
	b, s := attached(t, Config{}, bus.Config{})
	for _, ev := range []events.Event{
		&events.CmdRegister{RegistrationID: "reg_a", Registrar: "sip:pbx.example.com", AOR: "sip:alice@example.com",
			Username: "alice", Password: "hunter2", Expires: 600},
		&events.CmdRegister{RegistrationID: "reg_b", Registrar: "sip:pbx.example.com", AOR: "sip:bob@example.com",
			Username: "bob", Password: "hunter3"},
	} {
		bustest.Publish(t, b, ev)
	}
	syncT(t, s)
	ctx := ctxT(t)
	r, err := s.Registration(ctx, "reg_a")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "registering" || r.Registrar != "sip:pbx.example.com" || r.AOR != "sip:alice@example.com" ||
		r.Username != "alice" || r.Expires != 600 || r.UpdatedAt.IsZero() {
		t.Fatalf("after Register: %+v", r)
	}
	for _, ev := range []events.Event{
		&events.RegistrationChanged{RegistrationID: "reg_a", AOR: "sip:alice@example.com", Status: "registered", Expires: 300},
		&events.RegistrationChanged{RegistrationID: "reg_b", AOR: "sip:bob@example.com", Status: "failed", Error: "403 Forbidden"},
	} {
		bustest.Publish(t, b, ev)
	}
	syncT(t, s)
	all, err := s.Registrations(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("Registrations = %v, %v", all, err)
	}
	if a := all[0]; a.ID != "reg_a" || a.Status != "registered" || a.Expires != 300 || a.Username != "alice" {
		t.Fatalf("reg_a = %+v", a)
	}
	if b := all[1]; b.ID != "reg_b" || b.Status != "failed" || b.Error != "403 Forbidden" {
		t.Fatalf("reg_b = %+v", b)
	}
	bustest.Publish(t, b, &events.CmdUnregister{RegistrationID: "reg_a"})
	syncT(t, s)
	if r, _ := s.Registration(ctx, "reg_a"); r.Status != "unregistered" || r.Expires != 0 {
		t.Fatalf("after Unregister: %+v", r)
	}
	_, err = s.Registration(ctx, "reg_zzz")
	wantCode(t, err, callcore.CodeNotFound, "")

	// The password never reaches the disk.
	var leaked, redacted int
	for _, f := range allFrames(t, s) {
		if strings.Contains(string(f), "hunter") {
			leaked++
		}
		if strings.Contains(string(f), `"password":"[redacted]"`) {
			redacted++
		}
	}
	if leaked != 0 || redacted != 2 {
		t.Fatalf("%d frames hold the password, %d the redaction (want 0 and 2)", leaked, redacted)
	}
	var raw int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE instr(frames, 'hunter') > 0`).Scan(&raw); err != nil || raw != 0 {
		t.Fatalf("%d rows hold the password (%v)", raw, err)
	}
}

// TestConcurrentUse publishes calls from several goroutines while others
// read and Sync; -race checks the store's sharing.
func TestConcurrentUse(t *testing.T) {
	b, s := attached(t, Config{BatchSize: 32}, bus.Config{})
	const writers, perWriter = 4, 10
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	var readers sync.WaitGroup
	errs := make(chan error, 16)
	for r := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			// A bounded number of rounds: under -race the SQLite library
			// (C translated to Go) is slow, and readers must not starve
			// the writer on a small machine.
			for range 25 {
				calls, _, err := s.Calls(ctx, CallFilter{Limit: 10})
				if err == nil && len(calls) > 0 {
					_, err = s.Call(ctx, calls[0].ID)
					if err == nil {
						_, err = s.CallEvents(ctx, calls[0].ID, 0, 0)
					}
				}
				if err == nil && r == 0 {
					err = s.Sync(ctx)
				}
				if err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		}()
	}
	var pubs sync.WaitGroup
	for w := range writers {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for i := range perWriter {
				id := fmt.Sprintf("n1.w%d-%d", w, i)
				sip := id + "@sip"
				for _, ev := range append(inboundEvents(id, sip), hangupEvents(answeredCall(id, sip), sip)...) {
					if err := b.Publish(ctx, ev); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	pubs.Wait()
	syncT(t, s)
	cancel()
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("reader: %v", err)
	}
	calls, _, err := s.Calls(ctxT(t), CallFilter{State: callcore.StateTerminated, Limit: 500})
	if err != nil || len(calls) != writers*perWriter {
		t.Fatalf("%d terminated calls (%v), want %d", len(calls), err, writers*perWriter)
	}
	for _, c := range calls {
		if n := len(callEvents(t, s, c.ID)); n != 28 {
			t.Fatalf("call %s has %d events, want 28", c.ID, n)
		}
	}
	if s.Lost() != 0 {
		t.Fatalf("Lost = %d", s.Lost())
	}
}

// The writer's connection never checkpoints (wal_autocheckpoint 0): the
// checkpointer beside it copies the WAL into the database file while
// commits come. Without it the file would stay at its schema's size.
func TestCheckpointerCopiesTheWAL(t *testing.T) {
	dir := t.TempDir()
	b := bustest.NewBus(t, bus.Config{})
	s := openStore(t, dir, Config{})
	if err := s.Attach(b); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, FileName)
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	empty := st.Size()
	for i := range 200 {
		id := fmt.Sprintf("n1.ck%03d", i)
		publishAll(t, b, append(inboundEvents(id, id+"@sip"), hangupEvents(answeredCall(id, id+"@sip"), id+"@sip")...))
	}
	syncT(t, s)
	bustest.CheckFor(t, 10*time.Second, func() error {
		st, err := os.Stat(file)
		if err != nil {
			return err
		}
		if st.Size() < empty+256<<10 {
			return fmt.Errorf("the database file is %d bytes (%d empty): nothing checkpointed", st.Size(), empty)
		}
		return nil
	})
}
