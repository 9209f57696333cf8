// Package store keeps callbus's durable history in SQLite (DESIGN.md §1):
// the call resources, every control-plane event of the bus as the §6 JSON
// frame the WebSocket feed sends, recordings and registrations.
//
// The store learns everything from a bus tap (Attach), and from nothing
// else: a call's row is the call of its latest CallUpdated event, stored
// with that event's seq. The bus never waits on disk: a writer goroutine batches what the tap yields into one
// transaction per BatchInterval or BatchSize. A tap that falls behind is
// reopened with a replay of the bus's history, so nothing is lost unless
// the history itself was too short; that loss is logged and counted (Lost),
// never silent. Queries (Call, Calls, CallEvents…) read through a pool of
// read-only connections with prepared statements; WAL lets them run while
// the writer commits.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go)
)

// FileName is the name of the database file inside Config.Dir.
const FileName = "callbus.db"

// Config configures a Store. Only Dir is required.
type Config struct {
	// Dir is the data directory (CALLBUS_DATA_DIR); the database is
	// Dir/callbus.db. Open creates Dir when it is missing.
	Dir string
	// BatchInterval is how long a batch may wait before it is committed.
	// Default 100ms: most of a call's events then share one transaction
	// and its row is written once, not once per event (Sync commits at
	// once for readers that must see their own writes).
	BatchInterval time.Duration
	// BatchSize bounds the events committed in one transaction. Default 4096.
	BatchSize int
	// TapBuffer is the Buffer of the store's bus tap. Default 65536.
	TapBuffer int
}

func (c Config) withDefaults() Config {
	if c.BatchInterval <= 0 {
		c.BatchInterval = 100 * time.Millisecond
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 4096
	}
	if c.TapBuffer <= 0 {
		c.TapBuffer = 65536
	}
	return c
}

// Store is the durable history of one callbus node. Its query methods are
// safe for concurrent use.
type Store struct {
	cfg   Config
	log   *slog.Logger
	path  string
	wdb   *sql.DB       // the one writer connection
	rdb   *sql.DB       // read-only pool
	cdb   *sql.DB       // the checkpointer's connection
	ckpt  chan struct{} // the writer tells the checkpointer of a commit
	q     queries
	cache *callCache
	ids   idSource

	lastSeq   atomic.Uint64 // highest seq stored (committed)
	lost      atomic.Uint64 // control-plane events the store never received
	committed atomic.Uint64 // every seq <= committed is applied and committed (or known lost)
	want      atomic.Uint64 // the highest seq a Sync waits for

	mu       sync.Mutex
	opened   bool // Open was called
	attached bool
	closed   bool
	bus      bus.Bus
	tap      bus.Tap
	tick     chan struct{} // closed and replaced at every commit: wakes Sync
	flush    chan struct{} // Sync asks the writer to commit now
	done     chan struct{} // closed when the writer has returned
	// g runs the pump and the writer; ctx, its context, bounds their
	// reads and SQL, and ends only when Close cuts them short.
	g   *callcore.Group
	ctx context.Context

	closeOnce  sync.Once
	closeErr   error
	closedFlag atomic.Bool
	openFlag   atomic.Bool // Open succeeded

	testHookAdd func() // tests only: called before the writer applies each record
}

// Errors of the store's lifecycle.
var (
	ErrClosed      = errors.New("store: closed")
	ErrNotAttached = errors.New("store: not attached to a bus")
	ErrAttached    = errors.New("store: already attached to a bus")
	ErrOpen        = errors.New("store: already open")
	ErrNotOpen     = errors.New("store: not open")
	// ErrBusBehind means the bus numbers its events below what the store
	// already holds: it was not started with StartSeq = Store.LastSeq().
	ErrBusBehind = errors.New("store: bus seq is behind the stored events")
)

// New returns a store of cfg logging to log (nil takes slog.Default()). It
// opens nothing: Open opens the database, and Attach starts the writer on a
// bus, which cmd/callbus creates between the two, numbering on from the
// store's LastSeq. It returns an error when cfg.Dir is empty.
func New(cfg Config, log *slog.Logger) (*Store, error) {
	cfg = cfg.withDefaults()
	if cfg.Dir == "" {
		return nil, errors.New("store: new: Config.Dir is empty")
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Store{cfg: cfg, log: log, path: filepath.Join(cfg.Dir, FileName), tick: make(chan struct{}),
		flush: make(chan struct{}, 1), ckpt: make(chan struct{}, 1), cache: newCallCache(1 << 14)}
	s.ids.init()
	return s, nil
}

// Open opens the database Dir/callbus.db, creating Dir, the file and its
// tables when missing. It binds nothing else and starts no goroutine.
//
// Calls that a previous run left live (not terminated) are ended: their SIP
// dialogs did not survive the restart. Each such call row becomes state
// terminated, end_reason failed, ended_at now, and a CallEnded event with
// that reason and a message saying why is stored for it with the next seq,
// followed by the CallUpdated of the ended call, so GET
// /v1/calls/{id}/events shows what happened and ends with the call as the
// row has it. Open returns an error wrapping the SQLite error when the
// file cannot be opened or migrated, ErrOpen when called twice and
// ErrClosed after Close; after an error the store stays closed.
func (s *Store) Open(ctx context.Context) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.opened:
		return ErrOpen
	}
	s.opened = true
	defer func() {
		if err != nil {
			s.closed = true
		} else {
			s.openFlag.Store(true)
		}
	}()
	path := s.path
	if err := os.MkdirAll(s.cfg.Dir, 0o750); err != nil {
		return fmt.Errorf("store: open: create data dir: %w", err)
	}
	if s.wdb, err = openDB(path, false); err != nil {
		return err
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	if err := migrate(ctx, s.wdb); err != nil {
		s.wdb.Close()
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	if s.cdb, err = openDB(path, false); err != nil {
		s.closeDBs()
		return err
	}
	s.cdb.SetMaxOpenConns(1)
	s.cdb.SetMaxIdleConns(1)
	s.cdb.SetConnMaxLifetime(0)
	s.cdb.SetConnMaxIdleTime(0)
	if s.rdb, err = openDB(path, true); err != nil {
		s.wdb.Close()
		return err
	}
	s.rdb.SetMaxOpenConns(8)
	s.rdb.SetMaxIdleConns(8)
	s.rdb.SetConnMaxLifetime(0)
	s.rdb.SetConnMaxIdleTime(0)
	if err := s.q.prepare(ctx, s.rdb); err != nil {
		s.closeDBs()
		return fmt.Errorf("store: open %s: prepare: %w", path, err)
	}
	var last sql.NullString
	err = s.wdb.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'last_seq'`).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		s.closeDBs()
		return fmt.Errorf("store: open %s: last seq: %w", path, err)
	}
	if last.Valid {
		n, perr := strconv.ParseUint(last.String, 10, 64)
		if perr != nil {
			s.closeDBs()
			return fmt.Errorf("store: open %s: last seq %q: %w", path, last.String, perr)
		}
		s.lastSeq.Store(n)
	}
	if err := s.endOrphans(ctx); err != nil {
		s.closeDBs()
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	s.committed.Store(s.lastSeq.Load())
	return nil
}

func openDB(path string, readOnly bool) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	if readOnly {
		q.Set("_query_only", "1")
	} else {
		q.Set("_txlock", "immediate")
		// The checkpointer copies the WAL into the file, off the
		// writer's path (see checkpoint).
		q.Add("_pragma", "wal_autocheckpoint(0)")
	}
	dsn := "file:" + path + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return db, nil
}

func (s *Store) closeDBs() error {
	s.q.close()
	var errs []error
	if s.cdb != nil {
		errs = append(errs, s.cdb.Close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	return errors.Join(errs...)
}

// isClosed reports whether the store is not open (before Open, or since
// Close); queries then return ErrClosed.
func (s *Store) isClosed() bool { return s.closedFlag.Load() || !s.openFlag.Load() }

// LastSeq returns the highest control-plane seq stored. cmd/callbus starts
// the bus with bus.Config.StartSeq = LastSeq() so that seqs continue and are
// never reused across restarts.
func (s *Store) LastSeq() uint64 { return s.lastSeq.Load() }

// Lost returns how many control-plane events this store never received
// because the bus no longer retained them when its tap caught up. Each loss
// is also logged with the missed seq range and kept in the gaps table.
func (s *Store) Lost() uint64 { return s.lost.Load() }

// Attach opens a control-plane tap on b, replaying what b retains after the
// store's LastSeq, and starts the writer goroutines. It returns ErrBusBehind
// when b's LastSeq is below the store's (b was not started with StartSeq =
// LastSeq()), ErrAttached when called twice, ErrNotOpen before Open,
// ErrClosed after Close, and the bus's error when the tap cannot be opened.
func (s *Store) Attach(b bus.Bus) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.openFlag.Load() {
		return ErrNotOpen
	}
	if s.attached {
		return ErrAttached
	}
	since := s.lastSeq.Load()
	if bl := b.LastSeq(); bl < since {
		return fmt.Errorf("%w: bus at seq %d, store at %d; start the bus with StartSeq = store.LastSeq()", ErrBusBehind, bl, since)
	}
	tap, err := b.Tap(s.tapConfig(since))
	if err != nil {
		return fmt.Errorf("store: attach: open tap: %w", err)
	}
	s.attached, s.bus, s.tap = true, b, tap
	s.g = callcore.NewGroup(context.Background(), "store")
	s.ctx = s.g.Context()
	done := make(chan struct{})
	s.done = done
	recs := make(chan bus.Record, 1024)
	w := newWriter(s)
	s.g.Go("tap pump", func(context.Context) { s.pump(tap, since, recs) })
	s.g.Go("checkpointer", func(ctx context.Context) { s.checkpoint(ctx, done) })
	// The writer returns once the pump has closed recs.
	s.g.Go("writer", func(context.Context) { defer close(done); w.run(recs) })
	return nil
}

func (s *Store) tapConfig(since uint64) bus.TapConfig {
	return bus.TapConfig{Name: "store", Buffer: s.cfg.TapBuffer, Replay: true, Since: since}
}

// Sync returns once every event with seq <= b.LastSeq(), read when Sync is
// called, is applied and committed, so that queries made after Sync see
// them. It returns ErrNotAttached before Attach, ErrClosed when the store
// closes first, and ctx's error when ctx ends first.
func (s *Store) Sync(ctx context.Context) error {
	s.mu.Lock()
	if !s.attached {
		s.mu.Unlock()
		return ErrNotAttached
	}
	b, done := s.bus, s.done
	s.mu.Unlock()
	target := b.LastSeq()
	for {
		w := s.want.Load()
		if w >= target || s.want.CompareAndSwap(w, target) {
			break
		}
	}
	for {
		s.mu.Lock()
		tick := s.tick
		s.mu.Unlock()
		if s.committed.Load() >= target {
			return nil
		}
		select {
		case s.flush <- struct{}{}:
		default:
		}
		select {
		case <-tick:
		case <-done:
			if s.committed.Load() >= target {
				return nil
			}
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("store: sync to seq %d (at %d): %w", target, s.committed.Load(), ctx.Err())
		}
	}
}

// advance publishes a commit: seqs through seq are applied and durable.
func (s *Store) advance(seq, stored uint64) {
	if stored > s.lastSeq.Load() {
		s.lastSeq.Store(stored)
	}
	s.mu.Lock()
	if seq > s.committed.Load() {
		s.committed.Store(seq)
	}
	close(s.tick)
	s.tick = make(chan struct{})
	s.mu.Unlock()
}

// Close stops the store: it closes the tap, commits what the tap still
// held (call it after the bus has closed to keep every event), and closes
// the database. It commits until ctx ends; then it stops reading the tap,
// interrupts the transaction in flight, which rolls back whole, and closes
// the database at once. Nothing committed is lost that way, so a deadline
// already gone gets no grace: the error says so (the seqs not stored are
// the next run's to reuse, as after a crash). Close is idempotent: a
// later call waits for the first and returns its result.
func (s *Store) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Store) close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.closedFlag.Store(true)
	tap := s.tap
	s.mu.Unlock()
	var errs []error
	if tap != nil {
		_ = tap.Close() // queued records stay readable; the pump drains them
		err := s.g.Wait(ctx)
		s.g.Stop()
		if err != nil {
			// Cancelled, the pump's read and the writer's SQL return at
			// once; the database cannot close before they have.
			_ = s.g.Wait(context.Background())
			errs = append(errs, fmt.Errorf("store: close %s: cut short before every event through seq %d was stored: %w",
				s.path, s.bus.LastSeq(), err))
		}
	}
	if err := s.closeDBs(); err != nil {
		errs = append(errs, fmt.Errorf("store: close %s: %w", s.path, err))
	}
	return errors.Join(errs...)
}

// idSource makes event ids for the events the store itself records (the
// CallEnded of a call a restart cut off), the way the bus makes them: a
// random high half and a counter.
type idSource struct {
	hi uint64
	lo atomic.Uint64
}

func (g *idSource) init() {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	g.hi = binary.BigEndian.Uint64(b[:])
}

func (g *idSource) next() events.ID { return events.ID{Hi: g.hi, Lo: g.lo.Add(1)} }

// notFound returns the *callcore.Error of an unknown resource.
func notFound(kind, id string) error {
	return &callcore.Error{Code: callcore.CodeNotFound, Message: fmt.Sprintf("%s %q not found", kind, id)}
}

// checkpointEvery is how often, at most, the checkpointer copies the WAL
// into the database file while commits come.
const checkpointEvery = 250 * time.Millisecond

// checkpoint runs until the writer is done (or ctx ends, when Close cuts
// the store short), copying what the writer committed to the
// WAL into the database file (a passive checkpoint: it never blocks the
// writer or a reader). SQLite would do it on the writer's connection after
// a commit, every 1000 pages, where it was an eighth of the store's time;
// here it runs beside the writer, and each page the batches rewrote is
// copied once per round.
func (s *Store) checkpoint(ctx context.Context, writerDone <-chan struct{}) {
	t := time.NewTimer(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-writerDone:
			return // closing the last connection checkpoints the rest
		case <-s.ckpt:
		}
		select {
		case <-ctx.Done():
			return
		case <-writerDone:
			return
		case <-t.C:
		}
		if _, err := s.cdb.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil && ctx.Err() == nil {
			s.log.Warn("store: checkpoint failed; the WAL grows until one succeeds", "err", err)
		}
		t.Reset(checkpointEvery)
	}
}
