package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callbus/callbus/callcore"
)

// queries are the read statements, prepared once on the read pool.
type queries struct {
	call, calls, callsAfter, callsState, callsStateAfter *sql.Stmt
	callSip, callEvents                                  *sql.Stmt
	recording, recordings, recordingsAfter               *sql.Stmt
	registration, registrations                          *sql.Stmt
	all                                                  []*sql.Stmt
}

func (q *queries) prepare(ctx context.Context, db *sql.DB) error {
	const callCols = `SELECT id, seq, call FROM calls `
	const page = ` ORDER BY created_at DESC, id DESC LIMIT ?`
	const recCols = `SELECT id, call_id, file_path, format, duration_ms, created_at FROM recordings `
	const regCols = `SELECT id, registrar, aor, username, status, error, expires, updated_at FROM registrations `
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&q.call, callCols + `WHERE id = ?`},
		{&q.calls, callCols + page},
		{&q.callsAfter, callCols + `WHERE (created_at, id) < (?, ?)` + page},
		{&q.callsState, callCols + `WHERE state = ?` + page},
		{&q.callsStateAfter, callCols + `WHERE state = ? AND (created_at, id) < (?, ?)` + page},
		{&q.callSip, `SELECT sip_call_id FROM calls WHERE id = ?`},
		// The chunks of the call's flow and of its SIP Call-ID's, by their
		// first seq; CallEvents merges their events.
		{&q.callEvents, `SELECT seq, frames FROM events WHERE flow IN (?1, ?2) AND last_seq > ?3 ORDER BY seq`},
		{&q.recording, recCols + `WHERE id = ?`},
		{&q.recordings, recCols + page},
		{&q.recordingsAfter, recCols + `WHERE (created_at, id) < (?, ?)` + page},
		{&q.registration, regCols + `WHERE id = ?`},
		{&q.registrations, regCols + `ORDER BY id`},
	} {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("%s: %w", strings.Join(strings.Fields(p.sql), " "), err)
		}
		*p.dst = st
		q.all = append(q.all, st)
	}
	return nil
}

func (q *queries) close() {
	for _, st := range q.all {
		st.Close()
	}
	q.all = nil
}

// Call returns the call id as last stored. It returns a *callcore.Error
// with code not_found when the store has no such call, and ErrClosed after
// Close.
func (s *Store) Call(ctx context.Context, id string) (callcore.Call, error) {
	if s.isClosed() {
		return callcore.Call{}, ErrClosed
	}
	rows, err := s.q.call.QueryContext(ctx, id)
	if err != nil {
		return callcore.Call{}, fmt.Errorf("store: call %s: %w", id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return callcore.Call{}, fmt.Errorf("store: call %s: %w", id, err)
		}
		return callcore.Call{}, notFound("call", id)
	}
	c, err := s.scanCall(rows)
	if err != nil {
		return callcore.Call{}, fmt.Errorf("store: call %s: %w", id, err)
	}
	return c, nil
}

// scanCall reads a row of callCols, decoding the call only when the cache
// does not hold it at that seq.
func (s *Store) scanCall(rows *sql.Rows) (callcore.Call, error) {
	var id string
	var seq int64
	var raw sql.RawBytes
	if err := rows.Scan(&id, &seq, &raw); err != nil {
		return callcore.Call{}, err
	}
	if c, ok := s.cache.get(id, seq); ok {
		return c, nil
	}
	var c callcore.Call
	if err := json.Unmarshal(raw, &c); err != nil {
		return callcore.Call{}, fmt.Errorf("decode call %s: %w", id, err)
	}
	s.cache.put(id, seq, c)
	return c, nil
}

// callCache keeps decoded calls by id and row seq: a row's seq changes
// with every update of it, so a hit is always current. Decoding JSON is
// most of the cost of listing calls. Two generations bound it.
type callCache struct {
	mu       sync.Mutex
	cur, old map[string]cachedCall
	max      int
}

type cachedCall struct {
	seq  int64
	call callcore.Call
}

func newCallCache(max int) *callCache {
	return &callCache{cur: make(map[string]cachedCall), old: make(map[string]cachedCall), max: max}
}

func (c *callCache) get(id string, seq int64) (callcore.Call, bool) {
	c.mu.Lock()
	e, ok := c.cur[id]
	if !ok {
		if e, ok = c.old[id]; ok {
			c.putLocked(id, e)
		}
	}
	c.mu.Unlock()
	if !ok || e.seq != seq {
		return callcore.Call{}, false
	}
	if q := e.call.Media.Quality; q != nil {
		// The caller owns what it gets.
		cp := *q
		e.call.Media.Quality = &cp
	}
	return e.call, true
}

func (c *callCache) put(id string, seq int64, call callcore.Call) {
	if q := call.Media.Quality; q != nil {
		cp := *q
		call.Media.Quality = &cp
	}
	c.mu.Lock()
	if e, ok := c.cur[id]; !ok || e.seq <= seq {
		c.putLocked(id, cachedCall{seq, call})
	}
	c.mu.Unlock()
}

func (c *callCache) putLocked(id string, e cachedCall) {
	c.cur[id] = e
	if len(c.cur) >= c.max {
		c.old, c.cur = c.cur, make(map[string]cachedCall, c.max)
	}
}

// CallFilter selects a page of calls.
type CallFilter struct {
	// State keeps only the calls in that state; "" keeps every call.
	State callcore.CallState
	// Limit is the page size: 0 means 50, more than 500 means 500.
	Limit int
	// Cursor is the next value of the previous page, "" for the first.
	Cursor string
}

// Calls returns a page of calls, newest first (created_at, then id,
// descending), filtered by state, and the cursor of the next page ("" after
// the last). It returns a *callcore.Error with code validation_failed and
// Field "cursor" for a malformed cursor, or Field "state" for an unknown
// state, and ErrClosed after Close.
func (s *Store) Calls(ctx context.Context, f CallFilter) ([]callcore.Call, string, error) {
	if s.isClosed() {
		return nil, "", ErrClosed
	}
	limit := clampLimit(f.Limit, 50, 500)
	if f.State != "" && !f.State.Valid() {
		return nil, "", &callcore.Error{Code: callcore.CodeValidationFailed, Field: "state",
			Message: fmt.Sprintf("state %q is not a call state", f.State)}
	}
	var rows *sql.Rows
	var err error
	switch at, id, ok, cerr := parseCursor(f.Cursor); {
	case cerr != nil:
		return nil, "", cerr
	case !ok && f.State == "":
		rows, err = s.q.calls.QueryContext(ctx, limit+1)
	case !ok:
		rows, err = s.q.callsState.QueryContext(ctx, string(f.State), limit+1)
	case f.State == "":
		rows, err = s.q.callsAfter.QueryContext(ctx, at, id, limit+1)
	default:
		rows, err = s.q.callsStateAfter.QueryContext(ctx, string(f.State), at, id, limit+1)
	}
	if err != nil {
		return nil, "", fmt.Errorf("store: list calls: %w", err)
	}
	defer rows.Close()
	calls := make([]callcore.Call, 0, min(limit+1, 64))
	for rows.Next() {
		c, err := s.scanCall(rows)
		if err != nil {
			return nil, "", fmt.Errorf("store: list calls: %w", err)
		}
		calls = append(calls, c)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("store: list calls: %w", err)
	}
	next := ""
	if len(calls) > limit {
		calls = calls[:limit]
		last := calls[limit-1]
		next = makeCursor(last.CreatedAt, last.ID)
	}
	return calls, next, nil
}

func clampLimit(n, def, most int) int {
	switch {
	case n <= 0:
		return def
	case n > most:
		return most
	}
	return n
}

// A cursor is base64url("<unix nanos>:<id>") of the last item of a page.
func makeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixNano(), 10) + ":" + id))
}

func parseCursor(c string) (at int64, id string, ok bool, err error) {
	if c == "" {
		return 0, "", false, nil
	}
	bad := &callcore.Error{Code: callcore.CodeValidationFailed, Field: "cursor",
		Message: "cursor is not one this server returned"}
	raw, derr := base64.RawURLEncoding.DecodeString(c)
	if derr != nil {
		bad.Err = derr
		return 0, "", false, bad
	}
	ns, id, found := strings.Cut(string(raw), ":")
	if !found || id == "" {
		return 0, "", false, bad
	}
	at, perr := strconv.ParseInt(ns, 10, 64)
	if perr != nil {
		bad.Err = perr
		return 0, "", false, bad
	}
	return at, id, true, nil
}

// Event is one stored bus event: its seq and its §6 frame, exactly the
// bytes the WebSocket feed sends for it.
type Event struct {
	Seq   uint64
	Frame json.RawMessage
}

// CallEvents returns the flow of call id in seq order, after afterSeq and at
// most limit events (0 means 1000, more than 10000 means 10000): every
// control-plane event of the call's session, every SIP transport event of
// its SIP Call-ID (by Call-ID header, else by transaction, else by cause),
// and every event caused by one of those. It returns a *callcore.Error with
// code not_found when the store has no such call, and ErrClosed after Close.
func (s *Store) CallEvents(ctx context.Context, id string, afterSeq uint64, limit int) ([]Event, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	limit = clampLimit(limit, 1000, 10000)
	var sip sql.NullString
	err := s.q.callSip.QueryRowContext(ctx, id).Scan(&sip)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("call", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: events of call %s: %w", id, err)
	}
	sipFlow := "\x00" // a flow key no chunk has
	if sip.String != "" {
		sipFlow = sipKey(sip.String)
	}
	rows, err := s.q.callEvents.QueryContext(ctx, id, sipFlow, int64(afterSeq))
	if err != nil {
		return nil, fmt.Errorf("store: events of call %s: %w", id, err)
	}
	defer rows.Close()
	// Chunks come by first seq, but the chunks of the two flows in one
	// batch interleave: once limit events are collected, a chunk that
	// starts past the limit-th seq can hold none of the first limit.
	var out []Event
	sorted := true
	for rows.Next() {
		var first int64
		var frames []byte
		if err := rows.Scan(&first, &frames); err != nil {
			return nil, fmt.Errorf("store: events of call %s: %w", id, err)
		}
		if len(out) >= limit {
			if !sorted {
				slices.SortFunc(out, func(a, b Event) int { return cmp.Compare(a.Seq, b.Seq) })
				sorted = true
			}
			if uint64(first) > out[limit-1].Seq {
				break
			}
		}
		err := readChunk(frames, uint64(first), func(seq uint64, frame []byte) bool {
			if seq > afterSeq {
				if n := len(out); n > 0 && out[n-1].Seq > seq {
					sorted = false
				}
				out = append(out, Event{Seq: seq, Frame: frame})
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("store: events of call %s: chunk at seq %d: %w", id, first, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: events of call %s: %w", id, err)
	}
	if !sorted {
		slices.SortFunc(out, func(a, b Event) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	if len(out) > limit {
		out = out[:limit:limit]
	}
	return out, nil
}

// Recording is a finished recording, from RecordingFinished.
type Recording struct {
	ID         string
	CallID     string
	FilePath   string
	Format     string // the file's extension without the dot, e.g. "wav"
	DurationMS int64
	CreatedAt  time.Time
}

func scanRecording(sc interface{ Scan(...any) error }) (Recording, error) {
	var r Recording
	var at int64
	if err := sc.Scan(&r.ID, &r.CallID, &r.FilePath, &r.Format, &r.DurationMS, &at); err != nil {
		return Recording{}, err
	}
	r.CreatedAt = time.Unix(0, at).UTC()
	return r, nil
}

// Recordings returns a page of recordings, newest first, and the cursor of
// the next page ("" after the last); limit 0 means 50, more than 500 means
// 500. It returns a *callcore.Error with code validation_failed and Field
// "cursor" for a malformed cursor, and ErrClosed after Close.
func (s *Store) Recordings(ctx context.Context, cursor string, limit int) ([]Recording, string, error) {
	if s.isClosed() {
		return nil, "", ErrClosed
	}
	limit = clampLimit(limit, 50, 500)
	at, id, ok, err := parseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	var rows *sql.Rows
	if ok {
		rows, err = s.q.recordingsAfter.QueryContext(ctx, at, id, limit+1)
	} else {
		rows, err = s.q.recordings.QueryContext(ctx, limit+1)
	}
	if err != nil {
		return nil, "", fmt.Errorf("store: list recordings: %w", err)
	}
	defer rows.Close()
	var out []Recording
	for rows.Next() {
		r, err := scanRecording(rows)
		if err != nil {
			return nil, "", fmt.Errorf("store: list recordings: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("store: list recordings: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = makeCursor(out[limit-1].CreatedAt, out[limit-1].ID)
	}
	return out, next, nil
}

// Recording returns recording id. It returns a *callcore.Error with code
// not_found when the store has no such recording, and ErrClosed after Close.
func (s *Store) Recording(ctx context.Context, id string) (Recording, error) {
	if s.isClosed() {
		return Recording{}, ErrClosed
	}
	r, err := scanRecording(s.q.recording.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Recording{}, notFound("recording", id)
	}
	if err != nil {
		return Recording{}, fmt.Errorf("store: recording %s: %w", id, err)
	}
	return r, nil
}

// DeleteRecording removes the row of recording id and returns what it was;
// the caller removes the file. It returns a *callcore.Error with code
// not_found when the store has no such recording, and ErrClosed after Close.
func (s *Store) DeleteRecording(ctx context.Context, id string) (Recording, error) {
	if s.isClosed() {
		return Recording{}, ErrClosed
	}
	// Through the writer connection: one writer at a time is SQLite's rule,
	// and the read pool is query-only.
	row := s.wdb.QueryRowContext(ctx, `DELETE FROM recordings WHERE id = ?
		RETURNING id, call_id, file_path, format, duration_ms, created_at`, id)
	r, err := scanRecording(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Recording{}, notFound("recording", id)
	}
	if err != nil {
		return Recording{}, fmt.Errorf("store: delete recording %s: %w", id, err)
	}
	return r, nil
}

// Registration is an outbound SIP registration made with CmdRegister.
type Registration struct {
	ID        string
	Registrar string
	AOR       string
	Username  string
	// Status is "registering" until the first RegistrationChanged, then its
	// status ("registered", "failed"…), and "unregistered" once
	// CmdUnregister removed it.
	Status    string
	Error     string
	Expires   int
	UpdatedAt time.Time
}

func scanRegistration(sc interface{ Scan(...any) error }) (Registration, error) {
	var r Registration
	var at int64
	if err := sc.Scan(&r.ID, &r.Registrar, &r.AOR, &r.Username, &r.Status, &r.Error, &r.Expires, &at); err != nil {
		return Registration{}, err
	}
	r.UpdatedAt = time.Unix(0, at).UTC()
	return r, nil
}

// Registrations returns every registration, removed ones included, by id.
// It returns ErrClosed after Close.
func (s *Store) Registrations(ctx context.Context) ([]Registration, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	rows, err := s.q.registrations.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: list registrations: %w", err)
	}
	defer rows.Close()
	var out []Registration
	for rows.Next() {
		r, err := scanRegistration(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list registrations: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list registrations: %w", err)
	}
	return out, nil
}

// Registration returns registration id. It returns a *callcore.Error with
// code not_found when the store has no such registration, and ErrClosed
// after Close.
func (s *Store) Registration(ctx context.Context, id string) (Registration, error) {
	if s.isClosed() {
		return Registration{}, ErrClosed
	}
	r, err := scanRegistration(s.q.registration.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Registration{}, notFound("registration", id)
	}
	if err != nil {
		return Registration{}, fmt.Errorf("store: registration %s: %w", id, err)
	}
	return r, nil
}
