package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/store"
	"github.com/callbus/callbus/httpapi"
	"github.com/callbus/callbus/ws"
)

// Main is a callbus node: every component, wired. The end-to-end tests use
// it as main does: NewMain, Open, then Close.
type Main struct {
	// Config is the configuration Open wires from.
	Config Config
	// LogOutput receives the log. Nil means os.Stderr.
	LogOutput io.Writer

	logger   *slog.Logger
	store    *store.Store
	bus      *bus.Memory
	layers   layers
	feed     *ws.Feed
	registry *prometheus.Registry
	handler  http.Handler
	listener net.Listener
	server   *http.Server

	ready    atomic.Bool
	serveErr chan error    // the HTTP server's failure, if it fails
	served   chan struct{} // closed when the serving goroutine returns

	opened    bool
	closeOnce sync.Once
	closeErr  error
}

// storeTapBuffer is how many events the store may fall behind the bus
// before its tap reports a gap, and how many the bus retains for replay
// (so that the store then catches up without loss, and a WebSocket client
// may resume as far back).
const storeTapBuffer = 1 << 17

// NewMain returns a Main for cfg. It starts nothing.
func NewMain(cfg Config) *Main {
	return &Main{Config: cfg}
}

// Open opens the store (CALLBUS_DATA_DIR), creates the bus numbering on
// from the store's last seq and attaches the store to it, opens the
// layers, the WebSocket feed, the metrics registry and the HTTP API, binds
// the HTTP listener (so that with port 0 Addr reports the port taken) and
// starts serving in a goroutine that Close stops. On error everything
// opened so far is closed again. Open may be called once.
func (m *Main) Open(ctx context.Context) (err error) {
	if m.opened {
		return errors.New("callbus: Open called twice")
	}
	m.opened = true
	cfg := m.Config

	out := m.LogOutput
	if out == nil {
		out = os.Stderr
	}
	m.logger = newLogger(out, cfg.LogLevel, cfg.LogFormat)

	// The store opens first: the bus numbers its events on from the last
	// seq stored, so that seqs are never reused across restarts.
	if m.store, err = store.New(store.Config{Dir: cfg.DataDir, TapBuffer: storeTapBuffer}, m.logger); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err = m.store.Open(ctx); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	// The history covers the store's tap buffer: a store that fell that
	// far behind catches up by replay instead of losing events.
	m.bus, err = bus.New(bus.Config{Node: cfg.NodeID, Logger: m.logger, StartSeq: m.store.LastSeq(),
		History: storeTapBuffer})
	if err != nil {
		_ = m.store.Close(ctx) // not attached: nothing to drain
		return fmt.Errorf("create bus: %w", err)
	}
	defer func() {
		if err != nil {
			// What was opened closes within one drain timeout, even when
			// ctx has ended (Open was interrupted).
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainTimeout)
			defer cancel()
			if m.feed != nil {
				_ = m.feed.Close(ctx)
			}
			_ = m.closeLayers(ctx)
			// What was published is drained into the store, which closes last.
			_ = m.bus.Close(ctx)
			m.bus = nil
			_ = m.store.Close(ctx)
		}
	}()
	if err := m.store.Attach(m.bus); err != nil {
		return fmt.Errorf("attach store: %w", err)
	}

	if err := m.openLayers(ctx); err != nil {
		return err
	}

	m.feed, err = ws.New(ws.Config{}, m.bus, m.logger)
	if err != nil {
		return err
	}

	m.registry = prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.bus,
	} {
		if err := m.registry.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	metrics := promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(m.logger.Handler(), slog.LevelError),
	})

	m.handler, err = httpapi.New(httpapi.Config{
		Ready:     m.Ready,
		Metrics:   metrics,
		Store:     m.store,
		Feed:      m.feed,
		APIKeys:   cfg.APIKeys,
		RateLimit: cfg.RateLimit,
		RateBurst: cfg.RateBurst,
	}, m.bus, m.logger)
	if err != nil {
		return err
	}

	m.listener, err = (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	m.server = &http.Server{
		Handler:           m.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	m.serveErr = make(chan error, 1)
	m.served = make(chan struct{})
	go m.serve()

	m.ready.Store(true)
	m.logger.Info("callbus listening", "http", m.listener.Addr().String(), "node", m.bus.Node())
	return nil
}

func (m *Main) serve() {
	defer close(m.served)
	if err := m.server.Serve(m.listener); !errors.Is(err, http.ErrServerClosed) {
		m.serveErr <- err
	}
}

// Addr returns the address the HTTP listener is bound to, or nil before Open.
func (m *Main) Addr() net.Addr {
	if m.listener == nil {
		return nil
	}
	return m.listener.Addr()
}

// Handler returns the HTTP handler that Open built, or nil before Open.
func (m *Main) Handler() http.Handler { return m.handler }

// Logger returns the logger that Open built, or a discarding one before.
func (m *Main) Logger() *slog.Logger {
	if m.logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.logger
}

// Err delivers the HTTP server's error if it stops serving on its own.
func (m *Main) Err() <-chan error { return m.serveErr }

// Ready reports whether the node takes new work: an unavailable
// *callcore.Error before Open has finished and from the moment Close
// starts.
func (m *Main) Ready() error {
	if m.ready.Load() {
		return nil
	}
	if m.opened {
		return callcore.Errorf(callcore.CodeUnavailable, "node %s is not serving (starting or draining)", m.Config.NodeID)
	}
	return callcore.Errorf(callcore.CodeUnavailable, "node %s is not open", m.Config.NodeID)
}

// Close stops the node: it marks it not ready, shuts the HTTP server down
// (letting in-flight requests finish) and closes the WebSocket feed, stops
// the layers, drains the bus, then closes the store, which by then holds
// every event the bus delivered. The whole shutdown shares one deadline,
// DrainTimeout from now, bounded further by ctx: each step gets what the
// ones before it left, and once it has passed every step still stops what
// it owns, at once. What could not be drained is logged and returned as
// the error. Close is idempotent; later calls return the first call's
// result.
func (m *Main) Close(ctx context.Context) error {
	m.closeOnce.Do(func() { m.closeErr = m.close(ctx) })
	return m.closeErr
}

func (m *Main) close(ctx context.Context) error {
	m.ready.Store(false)
	if m.bus == nil { // never opened, or Open failed and cleaned up
		return nil
	}
	log := m.Logger()
	// The one deadline of the whole shutdown. Past it each step stops what
	// it owns without waiting, except that the bus gives a handler still
	// running its StopGrace to return.
	ctx, cancel := context.WithTimeout(ctx, m.Config.DrainTimeout)
	defer cancel()

	var errs []error
	if m.server != nil {
		if err := m.server.Shutdown(ctx); err != nil {
			// In-flight requests outlived the deadline: cut them off.
			_ = m.server.Close()
			log.Warn("http shutdown incomplete; open connections closed", "err", err)
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		<-m.served
	}
	// Shutdown does not wait for hijacked connections: the feed's
	// WebSockets are ended here.
	if m.feed != nil {
		if err := m.feed.Close(ctx); err != nil {
			log.Warn("feed close", "err", err)
			errs = append(errs, err)
		}
	}
	if err := m.closeLayers(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := m.bus.Close(ctx); err != nil {
		log.Warn("bus drain incomplete", "err", err)
		errs = append(errs, fmt.Errorf("drain bus: %w", err))
	}
	// The store commits what the bus delivered until the deadline; past
	// it, it closes the database at once. It needs no grace of its own:
	// a commit cut short rolls back whole, so nothing committed is lost.
	if err := m.store.Close(ctx); err != nil {
		log.Warn("store close", "err", err)
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		log.Info("callbus stopped")
	}
	return errors.Join(errs...)
}

// Store returns the node's store, or nil before Open.
func (m *Main) Store() *store.Store { return m.store }

// newLogger returns a slog logger writing text or JSON records at level
// and above to out.
func newLogger(out io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == LogFormatJSON {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}
