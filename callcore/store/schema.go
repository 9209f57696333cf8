package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// schemaVersion is the version of the tables below, kept in meta; a newer
// file is refused rather than misread.
const schemaVersion = 2

// The schema. Times are Unix nanoseconds (UTC); empty strings are NULL in
// the indexed columns so the indexes stay small.
//
// Events are stored in chunks (chunk.go): a row holds the frames, byte
// for byte, of the events of one flow in one batch, seq through last_seq.
// A flow is the call (session id) the writer attributed the events to (its
// session, or the call of its SIP Call-ID, transaction or cause), else
// "sip:" + the SIP Call-ID of a SIP transport event no call claimed yet
// (an incoming INVITE comes before its session), else "" for events of no
// call. A call's flow is the chunks of its id and of "sip:" + its Call-ID.
// meta's last_seq is the highest seq stored.
const schema = `
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calls (
	id          TEXT PRIMARY KEY,
	created_at  INTEGER NOT NULL,
	state       TEXT NOT NULL,
	seq         INTEGER NOT NULL,
	sip_call_id TEXT,
	note        TEXT,
	call        BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS calls_created ON calls (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS calls_state ON calls (state, created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS events (
	id       INTEGER PRIMARY KEY,
	flow     TEXT NOT NULL,
	seq      INTEGER NOT NULL,
	last_seq INTEGER NOT NULL,
	frames   BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_flow ON events (flow, last_seq);
CREATE TABLE IF NOT EXISTS recordings (
	id          TEXT PRIMARY KEY,
	call_id     TEXT NOT NULL,
	file_path   TEXT NOT NULL,
	format      TEXT NOT NULL,
	duration_ms INTEGER NOT NULL,
	created_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS recordings_created ON recordings (created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS registrations (
	id         TEXT PRIMARY KEY,
	registrar  TEXT NOT NULL,
	aor        TEXT NOT NULL,
	username   TEXT NOT NULL,
	status     TEXT NOT NULL,
	error      TEXT NOT NULL,
	expires    INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gaps (
	from_seq INTEGER NOT NULL,
	to_seq   INTEGER NOT NULL,
	dropped  INTEGER NOT NULL,
	reason   TEXT NOT NULL,
	at       INTEGER NOT NULL
);
`

func migrate(ctx context.Context, db *sql.DB) error {
	var v sql.NullString
	err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'schema_version'`).Scan(&v)
	if err == nil {
		n, perr := strconv.Atoi(v.String)
		if perr != nil || n > schemaVersion {
			return fmt.Errorf("schema version %q is not one this build knows (%d)", v.String, schemaVersion)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if v.String == "1" {
		if err := migrateV1(ctx, tx); err != nil {
			return fmt.Errorf("migrate from version 1: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('schema_version', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, strconv.Itoa(schemaVersion)); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// migrateV1 moves version 1's events, one row per event, into chunks of
// one event each under the flow the row was attributed to, and records
// their last seq.
func migrateV1(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `ALTER TABLE events RENAME TO events_v1;
		DROP INDEX IF EXISTS events_call; DROP INDEX IF EXISTS events_sip;`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, call_id, sip_call_id, frame FROM events_v1 ORDER BY seq`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var last int64
	var chunk []byte
	for rows.Next() {
		var seq int64
		var call, sip sql.NullString
		var frame []byte
		if err := rows.Scan(&seq, &call, &sip, &frame); err != nil {
			return err
		}
		chunk = appendChunkFrame(chunk[:0], uint64(seq), uint64(seq), frame)
		if _, err := tx.ExecContext(ctx, insertChunkSQL, flowKey(attribution{call: call.String, sip: sip.String}), seq, seq, packChunk(chunk)); err != nil {
			return err
		}
		last = seq
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	if _, err := tx.ExecContext(ctx, `DROP TABLE events_v1`); err != nil {
		return err
	}
	if last > 0 {
		if _, err := tx.ExecContext(ctx, setLastSeqSQL, strconv.FormatInt(last, 10)); err != nil {
			return err
		}
	}
	return nil
}

// restartMessage is the detail of the CallEnded the store records for a call
// a restart cut off.
const restartMessage = "callbus restarted while the call was live; its SIP dialog did not survive the restart"

// endOrphans ends the calls a previous run left live: see Open.
func (s *Store) endOrphans(ctx context.Context) error {
	rows, err := s.wdb.QueryContext(ctx, `SELECT id, call FROM calls WHERE state != ? ORDER BY created_at, id`,
		string(callcore.StateTerminated))
	if err != nil {
		return fmt.Errorf("end live calls: %w", err)
	}
	type orphan struct {
		id   string
		call callcore.Call
	}
	var orphans []orphan
	for rows.Next() {
		var o orphan
		var raw []byte
		if err := rows.Scan(&o.id, &raw); err != nil {
			rows.Close()
			return fmt.Errorf("end live calls: %w", err)
		}
		if err := json.Unmarshal(raw, &o.call); err != nil {
			rows.Close()
			return fmt.Errorf("end live calls: call %s: %w", o.id, err)
		}
		orphans = append(orphans, o)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("end live calls: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("end live calls: %w", err)
	}
	if len(orphans) == 0 {
		return nil
	}
	node := s.lastNode(ctx)
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("end live calls: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UTC()
	seq := s.lastSeq.Load()
	for _, o := range orphans {
		seq++
		c := o.call
		c.State, c.EndReason, c.EndedAt = callcore.StateTerminated, callcore.EndFailed, now
		ev := &events.CallEnded{SessionRef: events.SessionRef{SessionID: o.id}, Reason: string(callcore.EndFailed), Message: restartMessage}
		env := events.Envelope{Seq: seq, ID: s.ids.next(), Time: now, Node: node}
		frame, err := events.Marshal(env, ev)
		if err != nil {
			return fmt.Errorf("end live call %s: %w", o.id, err)
		}
		raw, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("end live call %s: %w", o.id, err)
		}
		chunk := appendChunkFrame(nil, seq, seq, frame)
		// The call's row is its latest CallUpdated, in the history too.
		seq++
		up := &events.CallUpdated{SessionRef: events.SessionRef{SessionID: o.id}, Call: c}
		uenv := events.Envelope{Seq: seq, ID: s.ids.next(), Time: now, Node: node, Cause: env.ID}
		uframe, err := events.Marshal(uenv, up)
		if err != nil {
			return fmt.Errorf("end live call %s: %w", o.id, err)
		}
		chunk = appendChunkFrame(chunk, seq-1, seq, uframe)
		if _, err := tx.ExecContext(ctx, insertChunkSQL, o.id, seq-1, seq, packChunk(chunk)); err != nil {
			return fmt.Errorf("end live call %s: %w", o.id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE calls SET state = ?, seq = ?, note = ?, call = ? WHERE id = ?`,
			string(c.State), seq, restartMessage, raw, o.id); err != nil {
			return fmt.Errorf("end live call %s: %w", o.id, err)
		}
		s.log.Warn("call left live by the previous run marked failed", "session_id", o.id, "seq", seq)
	}
	if _, err := tx.ExecContext(ctx, setLastSeqSQL, strconv.FormatUint(seq, 10)); err != nil {
		return fmt.Errorf("end live calls: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("end live calls: %w", err)
	}
	s.lastSeq.Store(seq)
	return nil
}

// lastNode returns the node of the newest stored event, "local" if none.
func (s *Store) lastNode(ctx context.Context) string {
	var first int64
	var frames []byte
	if err := s.wdb.QueryRowContext(ctx, `SELECT seq, frames FROM events ORDER BY id DESC LIMIT 1`).Scan(&first, &frames); err != nil {
		return "local"
	}
	var last []byte
	_ = readChunk(frames, uint64(first), func(_ uint64, f []byte) bool { last = f; return true })
	var env struct {
		Node string `json:"node"`
	}
	if json.Unmarshal(last, &env) != nil || env.Node == "" {
		return "local"
	}
	return env.Node
}

const insertChunkSQL = `INSERT INTO events (flow, seq, last_seq, frames) VALUES (?, ?, ?, ?)`

// insertChunksSQL is insertChunkSQL for n rows at once.
func insertChunksSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO events (flow, seq, last_seq, frames) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?, ?, ?, ?)")
	}
	return b.String()
}

const setLastSeqSQL = `INSERT INTO meta (key, value) VALUES ('last_seq', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`

const upsertCallSQL = `INSERT INTO calls (id, created_at, state, seq, sip_call_id, call) VALUES (?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at, state = excluded.state, seq = excluded.seq,
	sip_call_id = excluded.sip_call_id, call = excluded.call`

const upsertRecordingSQL = `INSERT INTO recordings (id, call_id, file_path, format, duration_ms, created_at) VALUES (?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET call_id = excluded.call_id, file_path = excluded.file_path, format = excluded.format,
	duration_ms = excluded.duration_ms`

const upsertRegistrationSQL = `INSERT INTO registrations (id, registrar, aor, username, status, error, expires, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET registrar = excluded.registrar, aor = excluded.aor, username = excluded.username,
	status = excluded.status, error = excluded.error, expires = excluded.expires, updated_at = excluded.updated_at`

const insertGapSQL = `INSERT INTO gaps (from_seq, to_seq, dropped, reason, at) VALUES (?, ?, ?, ?, ?)`

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}
