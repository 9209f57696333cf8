// Package ws is the WebSocket event feed of callbus (DESIGN.md §6): it taps
// the bus and streams every event, or a filtered subset, to each client as
// one JSON text frame per event.
//
// Frames are exactly what events.Marshal writes. When a client falls behind,
// or asks with since for more history than the node retains, it is sent a
// Gap frame naming the missed seqs instead (see GapFrame), so that in an
// unfiltered feed a hole in seq never goes unannounced; the client resumes
// with since. A slow client never slows the bus or the other clients: each
// connection reads from its own bounded bus tap, and a client that cannot
// take a single frame within Config.WriteTimeout is disconnected.
package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
)

// Config configures a Feed. Only Bus is required.
type Config struct {
	// PingInterval is how often each client is pinged; a client that does
	// not answer a ping within PingInterval is closed. Default 15s.
	PingInterval time.Duration
	// WriteTimeout bounds the write of one frame; a client that cannot take
	// a frame in time is disconnected with StatusTryAgainLater (1013) and a
	// reason. Default 10s.
	WriteTimeout time.Duration
	// Buffer is each client's tap buffer in records; a client further
	// behind than that is sent a Gap frame. Default 4096.
	Buffer int
}

// Defaults of Config.
const (
	DefaultPingInterval = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultBuffer       = 4096
)

// Feed serves the WebSocket event feed. Its methods are safe for
// concurrent use.
type Feed struct {
	bus      bus.Bus
	log      *slog.Logger
	cfg      Config
	corkBufs *sync.Pool

	// g counts the connections, each served on its Handle call; Close
	// stops it, and every connection ends when its context does.
	g *callcore.Group

	mu   sync.Mutex
	live map[*client]struct{} // upgraded connections
	cut  bool                 // Close's deadline passed: live connections are cut

	closeOnce sync.Once
	closeErr  error

	clients         atomic.Int64
	accepted        atomic.Uint64
	framesSent      atomic.Uint64
	gapsSent        atomic.Uint64
	slowDisconnects atomic.Uint64
	pingTimeouts    atomic.Uint64
	encoded         atomic.Uint64
}

// New returns a feed of b logging to log (nil takes slog.Default()). It
// starts nothing: each Handle serves one connection on the caller's
// goroutine. It returns an error when b is nil or a duration or the buffer
// is negative.
func New(cfg Config, b bus.Bus, log *slog.Logger) (*Feed, error) {
	if b == nil {
		return nil, errors.New("ws: new feed: nil bus")
	}
	if cfg.PingInterval < 0 || cfg.WriteTimeout < 0 || cfg.Buffer < 0 {
		return nil, errors.New("ws: new feed: PingInterval, WriteTimeout and Buffer must not be negative")
	}
	if log == nil {
		log = slog.Default()
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Buffer == 0 {
		cfg.Buffer = DefaultBuffer
	}
	return &Feed{
		bus:      b,
		log:      log,
		cfg:      cfg,
		corkBufs: newCorkBufs(),
		g:        callcore.NewGroup(context.Background(), "ws"),
		live:     make(map[*client]struct{}),
	}, nil
}

// Handle serves one feed request (GET /v1/events). The query:
//
//   - channels: channel names, comma-separated and/or repeated;
//   - types: event types, likewise; a type names that type in every channel
//     that has it (SendDtmf is session_to_dialog's and session_to_media's);
//     the RTP packet events SendRtpPacket and RtpPacketReceived are sent
//     only when named here;
//   - session_id: session ids, likewise;
//   - since: a seq; the retained events after it are replayed, then the
//     live ones follow with no gap and no duplicate (a history Gap frame
//     comes first when since is older than what is retained).
//
// Filters combine with AND, the values of one list with OR; empty items
// and other parameters (a browser's token) are ignored.
//
// Before upgrading it validates the query and the handshake and opens the
// client's bus tap;
// any failure there is returned as a *callcore.Error, with nothing written
// to w, so that the caller writes the problem+json response:
//
//   - validation_failed, Field naming the parameter ("channels", "types",
//     "session_id", "since"), for an unknown channel or type, a since that
//     is not a non-negative integer or is ahead of the newest seq;
//   - bad_request when the request is not a WebSocket handshake;
//   - unavailable after Close, or once the bus has closed;
//   - internal when w cannot be hijacked (a middleware hides http.Hijacker
//     and has no Unwrap).
//
// After the upgrade it streams until the client leaves, the client is
// disconnected (too slow, no pong) or the feed closes, and returns nil: it
// logs its own errors from then on. (Should websocket.Accept still refuse
// the handshake, it has answered the request itself; Handle logs that and
// returns nil too.)
func (f *Feed) Handle(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r.URL.Query())
	if err != nil {
		return err
	}
	if err := checkHandshake(w, r); err != nil {
		return err
	}
	var herr error
	if !f.g.Do("connection", func(ctx context.Context) { herr = f.handle(ctx, w, r, q) }) {
		return callcore.Errorf(callcore.CodeUnavailable, "the event feed is shut down")
	}
	return herr
}

// handle is Handle once Close is sure to wait for it; the connection ends
// when ctx does.
func (f *Feed) handle(ctx context.Context, w http.ResponseWriter, r *http.Request, q query) error {
	tap, err := f.openTap(q)
	if err != nil {
		return err
	}
	conn, cork, err := acceptConn(w, r, f.corkBufs)
	if err != nil {
		// checkHandshake makes this rare: the library has answered already.
		tap.Close()
		f.log.Warn("ws: accept feed connection", "remote", r.RemoteAddr, "err", err)
		return nil
	}
	f.serve(ctx, conn, cork, tap, q, r.RemoteAddr)
	return nil
}

// Close ends every connection with StatusGoingAway ("server shutting
// down") and waits, until ctx ends, for their goroutines to return. A
// client that does not answer the close handshake holds Close up until
// ctx ends (or the library's close timeouts, about ten seconds, pass); its
// network connection is then closed, and the error, which wraps a
// *callcore.RunningError, says how many connections were cut short. Close
// is idempotent: a later call waits for the first and returns its result.
func (f *Feed) Close(ctx context.Context) error {
	f.closeOnce.Do(func() { f.closeErr = f.close(ctx) })
	return f.closeErr
}

func (f *Feed) close(ctx context.Context) error {
	f.g.Stop()
	err := f.g.Wait(ctx)
	if err == nil {
		return nil
	}
	f.mu.Lock()
	f.cut = true
	n := len(f.live)
	for c := range f.live {
		_ = c.cork.Conn.Close() // ends the close handshake at once
	}
	f.mu.Unlock()
	return fmt.Errorf("ws: close: %d connections cut short: %w", n, err)
}

// track adds c to the live connections, or cuts it at once when Close's
// deadline has passed; untrack removes it.
func (f *Feed) track(c *client) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut {
		_ = c.cork.Conn.Close()
		return
	}
	f.live[c] = struct{}{}
}

func (f *Feed) untrack(c *client) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.live, c)
}

// Clients returns how many feed connections are open.
func (f *Feed) Clients() int { return int(f.clients.Load()) }

// Stats are the feed's counters since New.
type Stats struct {
	// Clients is how many connections are open now.
	Clients int
	// Accepted counts the connections upgraded.
	Accepted uint64
	// FramesSent counts the event frames written, Gap frames excluded.
	FramesSent uint64
	// GapsSent counts the Gap frames written.
	GapsSent uint64
	// SlowDisconnects counts the clients disconnected because a frame
	// could not be written within WriteTimeout.
	SlowDisconnects uint64
	// PingTimeouts counts the clients closed for not answering a ping.
	PingTimeouts uint64
	// Encoded counts the events marshalled; FramesSent minus Encoded is
	// how many frames were shared between clients instead.
	Encoded uint64
}

// Stats returns the feed's counters.
func (f *Feed) Stats() Stats {
	return Stats{
		Clients:         f.Clients(),
		Accepted:        f.accepted.Load(),
		FramesSent:      f.framesSent.Load(),
		GapsSent:        f.gapsSent.Load(),
		SlowDisconnects: f.slowDisconnects.Load(),
		PingTimeouts:    f.pingTimeouts.Load(),
		Encoded:         f.encoded.Load(),
	}
}

// openTap opens the client's tap: data-plane events only when the query
// names one, history first when it gives since.
func (f *Feed) openTap(q query) (bus.Tap, error) {
	tap, err := f.bus.Tap(bus.TapConfig{
		Name:      "ws",
		Buffer:    f.cfg.Buffer,
		DataPlane: q.dataPlane,
		Replay:    q.hasSince,
		Since:     q.since,
	})
	switch {
	case err == nil:
		return tap, nil
	case errors.Is(err, bus.ErrSinceAhead):
		return nil, &callcore.Error{Code: callcore.CodeValidationFailed, Field: "since",
			Message: "since is ahead of the newest seq " + uitoa(f.bus.LastSeq()), Err: err}
	case errors.Is(err, bus.ErrClosed):
		return nil, &callcore.Error{Code: callcore.CodeUnavailable, Message: "the event bus is shut down", Err: err}
	default:
		return nil, &callcore.Error{Code: callcore.CodeInternal, Message: "open a bus tap for the feed", Err: err}
	}
}
