package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
)

// attribution is what the writer knows an event belongs to.
type attribution struct {
	call string // the call (session id) whose flow it is part of
	sip  string // the SIP Call-ID of a SIP transport event
}

// writer turns tap records into rows and commits them in batches. It is
// owned by one goroutine (run). A call's row is its latest CallUpdated:
// the writer keeps no call state across batches, only which calls the
// batch changed.
type writer struct {
	s        *Store
	interval time.Duration
	size     int

	// The batch being built.
	chunks  []chunkBuf          // the batch's events, one chunk per flow key
	chunkOf map[string]int      // flow key → index in chunks
	spare   [][]byte            // chunk buffers of earlier batches, reused
	n       int                 // events in the batch
	first   uint64              // the seq of the batch's first event
	dirty   map[string]*callRow // the latest CallUpdated of each call in the batch
	recs    []Recording
	regs    []regOp
	gaps    []bus.Gap
	applied uint64 // every seq <= applied is in the batch or committed
	stored  uint64 // the highest seq of an event in the batch

	sipCall *genMap[string, string]      // SIP Call-ID → call
	txs     *genMap[string, attribution] // transaction id → attribution
	causes  *genMap[events.ID, attribution]

	ins      struct{ chunk, chunks, lastSeq, call, rec, reg, regChanged, unreg, gap *sql.Stmt }
	args     []any  // reused arguments of ins.chunks
	callJSON []byte // reused encoding of a call row
}

// chunksPerInsert is how many chunks one multi-row INSERT writes: one
// statement for 64 rows costs a fraction of 64 statements.
const chunksPerInsert = 64

// chunkBuf is a chunk being built: the events of one flow key in a batch.
type chunkBuf struct {
	key         string
	first, last uint64
	b           []byte
}

type regOp struct {
	reg  Registration
	kind int // regRegister, regChanged, regUnregister
}

const (
	regRegister = iota
	regChanged
	regUnregister
)

// callRow is a call row to write: the call of a CallUpdated and its seq.
type callRow struct {
	call callcore.Call
	seq  uint64
}

func newWriter(s *Store) *writer {
	return &writer{
		s:        s,
		interval: s.cfg.BatchInterval,
		size:     s.cfg.BatchSize,
		dirty:    make(map[string]*callRow),
		chunkOf:  make(map[string]int),
		applied:  s.committed.Load(),
		sipCall:  newGenMap[string, string](1 << 14),
		txs:      newGenMap[string, attribution](1 << 14),
		causes:   newGenMap[events.ID, attribution](1 << 15),
	}
}

func (w *writer) prepare(ctx context.Context) error {
	db := w.s.wdb
	var err error
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.ins.chunk, insertChunkSQL},
		{&w.ins.chunks, insertChunksSQL(chunksPerInsert)},
		{&w.ins.lastSeq, setLastSeqSQL},
		{&w.ins.call, upsertCallSQL},
		{&w.ins.rec, upsertRecordingSQL},
		{&w.ins.reg, upsertRegistrationSQL},
		{&w.ins.regChanged, `INSERT INTO registrations (id, registrar, aor, username, status, error, expires, updated_at)
			VALUES (?, '', ?, '', ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET status = excluded.status, error = excluded.error, expires = excluded.expires,
			updated_at = excluded.updated_at, aor = CASE WHEN excluded.aor != '' THEN excluded.aor ELSE aor END`},
		{&w.ins.unreg, `UPDATE registrations SET status = 'unregistered', error = '', expires = 0, updated_at = ? WHERE id = ?`},
		{&w.ins.gap, insertGapSQL},
	} {
		if *p.dst, err = db.PrepareContext(ctx, p.sql); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	return nil
}

func (w *writer) closeStmts() {
	for _, st := range []*sql.Stmt{w.ins.chunk, w.ins.chunks, w.ins.lastSeq, w.ins.call, w.ins.rec, w.ins.reg, w.ins.regChanged, w.ins.unreg, w.ins.gap} {
		if st != nil {
			st.Close()
		}
	}
}

// run applies records until recs is closed, committing a batch when it is
// BatchSize events long, when it has waited BatchInterval, or at once when a
// Sync waits for what it holds.
func (w *writer) run(recs <-chan bus.Record) {
	s := w.s
	if err := w.prepare(s.ctx); err != nil {
		s.log.Error("store: writer cannot start; events will not be stored", "err", err)
		for r := range recs {
			w.add(r) // keep seqs moving so that Sync does not wait forever
			w.drop(err)
		}
		return
	}
	defer w.closeStmts()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	commit := func() {
		if armed {
			timer.Stop()
			armed = false
		}
		w.commit()
	}
	for {
		select {
		case r, ok := <-recs:
			if !ok {
				commit()
				return
			}
			w.add(r)
			if !armed {
				timer.Reset(w.interval)
				armed = true
			}
			if w.n >= w.size || w.syncWaiting() {
				commit()
			}
		case <-timer.C:
			armed = false
			w.commit()
		case <-s.flush:
			if w.syncWaiting() {
				commit()
			}
		}
	}
}

// syncWaiting reports whether a Sync waits for a seq the batch now covers.
func (w *writer) syncWaiting() bool {
	want := w.s.want.Load()
	return want > w.s.committed.Load() && w.applied >= want
}

// add applies one record to the batch.
func (w *writer) add(r bus.Record) {
	if h := w.s.testHookAdd; h != nil {
		h()
	}
	if g := r.Gap; g != nil {
		w.gaps = append(w.gaps, *g)
		if g.FromSeq != 0 {
			w.s.lost.Add(g.ToSeq - g.FromSeq + 1)
		}
		w.s.log.Error("store: events lost: the bus no longer held them when the store's tap caught up",
			"from_seq", g.FromSeq, "to_seq", g.ToSeq, "reason", g.Reason)
		if g.ToSeq > w.applied {
			w.applied = g.ToSeq
		}
		return
	}
	env, ev := r.Envelope, r.Event
	if env.Seq <= w.applied {
		return
	}
	w.applied = env.Seq
	frame, _, err := r.Frame()
	if err != nil {
		w.s.lost.Add(1)
		w.s.log.Error("store: event not stored: cannot encode it", "seq", env.Seq, "type", ev.Type(), "err", err)
		return
	}
	at := w.attribute(env, ev)
	w.addFrame(flowKey(at), env.Seq, frame)
	w.stored = env.Seq
	switch e := ev.(type) {
	case *events.CallUpdated:
		w.dirty[e.SessionID] = &callRow{call: e.Call, seq: env.Seq}
	case *events.RecordingFinished:
		w.recs = append(w.recs, Recording{ID: e.RecordingID, CallID: e.SessionID, FilePath: e.FilePath,
			Format: formatOf(e.FilePath), DurationMS: e.DurationMS, CreatedAt: env.Time.UTC()})
	case *events.CmdRegister:
		w.regs = append(w.regs, regOp{kind: regRegister, reg: Registration{ID: e.RegistrationID, Registrar: e.Registrar,
			AOR: e.AOR, Username: e.Username, Status: "registering", Expires: e.Expires, UpdatedAt: env.Time}})
	case *events.RegistrationChanged:
		w.regs = append(w.regs, regOp{kind: regChanged, reg: Registration{ID: e.RegistrationID, AOR: e.AOR,
			Status: e.Status, Error: e.Error, Expires: e.Expires, UpdatedAt: env.Time}})
	case *events.CmdUnregister:
		w.regs = append(w.regs, regOp{kind: regUnregister, reg: Registration{ID: e.RegistrationID, UpdatedAt: env.Time}})
	}
}

// attribute decides which call's flow an event belongs to and, for a SIP
// transport event, its Call-ID; see the schema.
func (w *writer) attribute(env events.Envelope, ev events.Event) attribution {
	var a attribution
	a.call = events.SessionOf(ev)
	sip, tx, transport := sipOf(ev)
	a.sip = sip
	if tx != "" {
		if t, ok := w.txs.get(tx); ok {
			if a.sip == "" {
				a.sip = t.sip
			}
			if a.call == "" {
				a.call = t.call
			}
		}
	}
	if a.call == "" && a.sip != "" {
		a.call, _ = w.sipCall.get(a.sip)
	}
	if !env.Cause.IsZero() && (a.call == "" || (transport && a.sip == "")) {
		if c, ok := w.causes.get(env.Cause); ok {
			if a.call == "" {
				a.call = c.call
			}
			if transport && a.sip == "" {
				a.sip = c.sip
			}
		}
	}
	if a.call == "" && a.sip == "" {
		return a
	}
	if a.call != "" && a.sip != "" {
		w.sipCall.put(a.sip, a.call)
	}
	if tx != "" {
		w.txs.put(tx, a)
	}
	w.causes.put(env.ID, a)
	if !transport {
		// A session event names its call; only transport events are
		// matched by Call-ID, so the column stays theirs.
		if _, ok := ev.(*events.IncomingCall); !ok {
			a.sip = ""
		}
	}
	return a
}

func (w *writer) pending() bool {
	return w.n > 0 || len(w.gaps) > 0 || len(w.dirty) > 0 || len(w.recs) > 0 || len(w.regs) > 0
}

// commit writes the batch in one transaction and tells Sync.
func (w *writer) commit() {
	if !w.pending() {
		if w.applied > w.s.committed.Load() {
			w.s.advance(w.applied, 0)
		}
		return
	}
	start := time.Now()
	if err := w.write(); err != nil {
		w.drop(err)
	} else {
		if d := time.Since(start); d > time.Second {
			w.s.log.Warn("store: slow commit", "events", w.n, "chunks", len(w.chunks), "took", d)
		}
		select {
		case w.s.ckpt <- struct{}{}:
		default:
		}
	}
	w.reset()
}

// drop reports a batch that could not be written: its events are lost to
// the store, and it says so.
func (w *writer) drop(err error) {
	if w.n > 0 {
		w.s.lost.Add(uint64(w.n))
		w.s.log.Error("store: batch not written; its events are lost to the store", "err", err,
			"from_seq", w.first, "to_seq", w.stored, "events", w.n)
	}
	w.stored = 0 // LastSeq names what is on disk, as meta's last_seq does
	w.reset()
}

// reset clears the batch and publishes the applied seq.
func (w *writer) reset() {
	stored := w.stored
	for i := range w.chunks {
		if cap(w.chunks[i].b) <= maxSpareChunk {
			w.spare = append(w.spare, w.chunks[i].b[:0])
		}
	}
	clear(w.chunks)
	w.chunks = w.chunks[:0]
	clear(w.chunkOf)
	w.n = 0
	clear(w.dirty)
	w.recs = w.recs[:0]
	w.regs = w.regs[:0]
	w.gaps = w.gaps[:0]
	w.stored = 0
	w.s.advance(w.applied, stored)
}

func (w *writer) write() error {
	ctx := w.s.ctx
	tx, err := w.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	rest := w.chunks
	if len(rest) >= chunksPerInsert {
		many := tx.StmtContext(ctx, w.ins.chunks)
		for ; len(rest) >= chunksPerInsert; rest = rest[chunksPerInsert:] {
			w.args = w.args[:0]
			for i := range chunksPerInsert {
				w.args = appendChunkArgs(w.args, &rest[i])
			}
			if _, err := many.ExecContext(ctx, w.args...); err != nil {
				return fmt.Errorf("insert events %d-%d: %w", rest[0].first, rest[chunksPerInsert-1].last, err)
			}
		}
	}
	if len(rest) > 0 {
		one := tx.StmtContext(ctx, w.ins.chunk)
		for i := range rest {
			w.args = appendChunkArgs(w.args[:0], &rest[i])
			if _, err := one.ExecContext(ctx, w.args...); err != nil {
				return fmt.Errorf("insert events %d-%d: %w", rest[i].first, rest[i].last, err)
			}
		}
	}
	if w.stored > 0 {
		if _, err := tx.StmtContext(ctx, w.ins.lastSeq).ExecContext(ctx, strconv.FormatUint(w.stored, 10)); err != nil {
			return fmt.Errorf("last seq: %w", err)
		}
	}
	clear(w.args) // let the frames go
	if len(w.dirty) > 0 {
		up := tx.StmtContext(ctx, w.ins.call)
		for id, cr := range w.dirty {
			w.callJSON = cr.call.AppendJSON(w.callJSON[:0])
			raw := w.callJSON
			if _, err := up.ExecContext(ctx, id, cr.call.CreatedAt.UnixNano(), string(cr.call.State), int64(cr.seq),
				nullStr(cr.call.SipCallID), raw); err != nil {
				return fmt.Errorf("call %s: %w", id, err)
			}
		}
	}
	for _, r := range w.recs {
		if _, err := tx.StmtContext(ctx, w.ins.rec).ExecContext(ctx, r.ID, r.CallID, r.FilePath, r.Format,
			r.DurationMS, r.CreatedAt.UnixNano()); err != nil {
			return fmt.Errorf("recording %s: %w", r.ID, err)
		}
	}
	for _, op := range w.regs {
		r := op.reg
		var err error
		switch op.kind {
		case regRegister:
			_, err = tx.StmtContext(ctx, w.ins.reg).ExecContext(ctx, r.ID, r.Registrar, r.AOR, r.Username, r.Status,
				r.Error, r.Expires, r.UpdatedAt.UnixNano())
		case regChanged:
			_, err = tx.StmtContext(ctx, w.ins.regChanged).ExecContext(ctx, r.ID, r.AOR, r.Status, r.Error,
				r.Expires, r.UpdatedAt.UnixNano())
		case regUnregister:
			_, err = tx.StmtContext(ctx, w.ins.unreg).ExecContext(ctx, r.UpdatedAt.UnixNano(), r.ID)
		}
		if err != nil {
			return fmt.Errorf("registration %s: %w", r.ID, err)
		}
	}
	now := time.Now().UnixNano()
	for _, g := range w.gaps {
		if _, err := tx.StmtContext(ctx, w.ins.gap).ExecContext(ctx, int64(g.FromSeq), int64(g.ToSeq),
			int64(g.Dropped), g.Reason, now); err != nil {
			return fmt.Errorf("gap %d-%d: %w", g.FromSeq, g.ToSeq, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func appendChunkArgs(args []any, c *chunkBuf) []any {
	return append(args, c.key, int64(c.first), int64(c.last), packChunk(c.b))
}

// maxSpareChunk bounds the chunk buffers kept for the next batch, so that
// one burst of a huge flow does not pin its memory.
const maxSpareChunk = 64 << 10

// addFrame appends an event's frame to the batch's chunk of key.
func (w *writer) addFrame(key string, seq uint64, frame []byte) {
	if w.n == 0 {
		w.first = seq
	}
	w.n++
	i, ok := w.chunkOf[key]
	if !ok {
		var b []byte
		if n := len(w.spare); n > 0 {
			b, w.spare = w.spare[n-1], w.spare[:n-1]
		}
		i = len(w.chunks)
		w.chunks = append(w.chunks, chunkBuf{key: key, first: seq, b: b})
		w.chunkOf[key] = i
	}
	c := &w.chunks[i]
	c.b = appendChunkFrame(c.b, c.first, seq, frame)
	c.last = seq
}

// genMap is a bounded map that forgets its oldest half: two generations,
// the older dropped when the newer fills. Lookups of recent keys (a call's
// transactions, the causes of its events) always hit.
type genMap[K comparable, V any] struct {
	cur, old map[K]V
	max      int
}

func newGenMap[K comparable, V any](max int) *genMap[K, V] {
	return &genMap[K, V]{cur: make(map[K]V), old: make(map[K]V), max: max}
}

func (m *genMap[K, V]) get(k K) (V, bool) {
	if v, ok := m.cur[k]; ok {
		return v, true
	}
	v, ok := m.old[k]
	return v, ok
}

func (m *genMap[K, V]) put(k K, v V) {
	m.cur[k] = v
	if len(m.cur) >= m.max {
		m.old, m.cur = m.cur, make(map[K]V, m.max)
	}
}
