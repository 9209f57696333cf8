// Package httpapi is callbus's HTTP surface: the REST API (DESIGN.md §5),
// answered as JSON with RFC 9457 problem+json errors, the WebSocket feed's
// endpoint, the OpenAPI document, and the operational endpoints /healthz,
// /readyz and /metrics.
//
// Reads come from the store; commands go to the session layer as bus
// requests, and once the session accepted one the API waits until the
// store has applied every event published so far, so that the call it
// answers with already shows the command's first effects.
//
// httpapi talks to the rest of callbus only through the bus, the event
// catalogue, the store and the shared vocabulary of callcore; it imports
// no layer.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/callcore/store"
)

// Store is what the API reads; *store.Store implements it. Errors are
// *callcore.Error where the store gives them a code (not_found,
// validation_failed on a bad cursor); any other error answers 500.
type Store interface {
	// Sync returns once every event published on the bus so far is
	// applied and committed.
	Sync(ctx context.Context) error
	// Call returns a call; not_found when there is none.
	Call(ctx context.Context, id string) (callcore.Call, error)
	// Calls returns a page of calls and the next page's cursor ("" after
	// the last); validation_failed (field cursor) for a bad cursor.
	Calls(ctx context.Context, f store.CallFilter) ([]callcore.Call, string, error)
	// CallEvents returns the §6 frames of a call's events by seq, after
	// afterSeq, at most limit.
	CallEvents(ctx context.Context, id string, afterSeq uint64, limit int) ([]store.Event, error)
	// Recordings returns a page of recordings and the next page's cursor.
	Recordings(ctx context.Context, cursor string, limit int) ([]store.Recording, string, error)
	// Recording returns a recording; not_found when there is none.
	Recording(ctx context.Context, id string) (store.Recording, error)
	// DeleteRecording removes a recording's row and returns it (the
	// caller removes the file); not_found when there is none.
	DeleteRecording(ctx context.Context, id string) (store.Recording, error)
	// Registrations returns every registration.
	Registrations(ctx context.Context) ([]store.Registration, error)
	// Registration returns a registration; not_found when there is none.
	Registration(ctx context.Context, id string) (store.Registration, error)
}

// Feed serves the WebSocket feed of GET /v1/events (package ws). Handle
// returns a *callcore.Error, before it upgrades, when the request is bad;
// the API answers it as problem+json. After the upgrade it returns nil.
type Feed interface {
	Handle(w http.ResponseWriter, r *http.Request) error
}

// Defaults of Config.
const (
	DefaultRateLimit      = 50
	DefaultRateBurst      = 100
	DefaultTokenTTL       = 60 * time.Second
	DefaultCommandTimeout = 10 * time.Second
	// MaxBodyBytes bounds a request body; a larger one answers 413.
	MaxBodyBytes = 64 << 10
)

// Config is what the HTTP API needs from the process that serves it.
type Config struct {
	// Ready reports whether this node takes new work: nil when it does, an
	// error saying why not (starting, draining) otherwise. A nil Ready
	// means always ready.
	Ready func() error
	// Metrics answers GET /metrics (promhttp in cmd/callbus). Required.
	Metrics http.Handler
	// Store answers every read. Required.
	Store Store
	// Feed serves GET /v1/events. Required.
	Feed Feed
	// APIKeys are the bearer keys accepted on /v1. Empty means /v1 is open,
	// which cmd/callbus allows only on a loopback listener. The ops
	// endpoints (/healthz, /readyz, /metrics, /openapi.yaml) are always
	// open, for probes, scrapers and tooling.
	APIKeys []string
	// RateLimit is how many /v1 requests per second each API key (each
	// client IP when there are no keys) may make on average; 0 disables
	// the limit. cmd/callbus sets DefaultRateLimit unless configured.
	RateLimit int
	// RateBurst is how many requests a caller may make at once after a
	// pause; it is raised to RateLimit when below it.
	RateBurst int
	// TokenTTL is the lifetime of the tokens of POST /v1/tokens; 0 takes
	// DefaultTokenTTL.
	TokenTTL time.Duration
	// CommandTimeout bounds how long a command waits for the session's
	// answer and the store's sync; 0 takes DefaultCommandTimeout.
	CommandTimeout time.Duration
}

// api holds what the handlers share.
type api struct {
	bus     bus.Bus
	store   Store
	feed    Feed
	log     *slog.Logger
	timeout time.Duration
	idem    *idempotency
	tokens  *tokens
}

// New returns the HTTP handler of callbus, which carries commands to the
// session layer over b (Request) and logs request errors, panics and, at
// debug level, every request to log (nil discards). It starts nothing. It
// returns an error when b, cfg.Metrics, cfg.Store or cfg.Feed is nil, or
// when the event catalogue cannot be encoded.
func New(cfg Config, b bus.Bus, log *slog.Logger) (http.Handler, error) {
	switch {
	case cfg.Metrics == nil:
		return nil, errors.New("httpapi: Config.Metrics is nil")
	case b == nil:
		return nil, errors.New("httpapi: nil bus")
	case cfg.Store == nil:
		return nil, errors.New("httpapi: Config.Store is nil")
	case cfg.Feed == nil:
		return nil, errors.New("httpapi: Config.Feed is nil")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ready := cfg.Ready
	if ready == nil {
		ready = func() error { return nil }
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	// The catalogue is fixed at build time: encode it once.
	catalogue, err := json.Marshal(events.Catalogue())
	if err != nil {
		return nil, fmt.Errorf("httpapi: encode event catalogue: %w", err)
	}
	a := &api{
		bus:     b,
		store:   cfg.Store,
		feed:    cfg.Feed,
		log:     log,
		timeout: cfg.CommandTimeout,
		idem:    newIdempotency(idempotencyCapacity, idempotencyTTL, time.Now),
		tokens:  newTokens(cfg.TokenTTL, time.Now),
	}
	keys := newKeyAuth(cfg.APIKeys)
	limit := rateLimiter(cfg.RateLimit, cfg.RateBurst)

	mux := chi.NewRouter()
	mux.Use(withRequestID, accessLog(log), recoverPanic(log), headAsGet)
	mux.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, callcore.CodeNotFound, "no route for "+r.URL.Path)
	})
	mux.MethodNotAllowed(methodNotAllowed(mux))

	mux.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(); err != nil {
			writeError(w, r, log, &callcore.Error{Code: callcore.CodeUnavailable, Message: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Method(http.MethodGet, "/metrics", cfg.Metrics)
	mux.Get("/openapi.yaml", serveOpenAPI)

	mux.Route("/v1", func(r chi.Router) {
		// The feed alone also takes a token in the query: browsers cannot
		// set headers on a WebSocket.
		r.Group(func(r chi.Router) {
			r.Use(keys.require(a.tokens), limit)
			r.Get("/events", a.events)
		})
		r.Group(func(r chi.Router) {
			r.Use(keys.require(nil), limit)
			r.Get("/events/catalogue", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(catalogue)
			})
			r.Post("/tokens", a.createToken)

			r.Post("/calls", a.makeCall)
			r.Get("/calls", a.listCalls)
			r.Route("/calls/{id}", func(r chi.Router) {
				r.Get("/", a.getCall)
				r.Delete("/", a.hangup)
				r.Get("/events", a.callEvents)
				r.Post("/hangup", a.hangup)
				r.Post("/answer", a.answer)
				r.Post("/reject", a.reject)
				r.Post("/hold", a.hold)
				r.Post("/resume", a.resume)
				r.Post("/transfer", a.transfer)
				r.Post("/dtmf", a.dtmf)
				r.Post("/play", a.play)
				r.Delete("/play", a.stopPlay)
				r.Post("/record", a.record)
				r.Delete("/record", a.stopRecord)
				r.Post("/bridge", a.bridge)
			})

			r.Get("/recordings", a.listRecordings)
			r.Get("/recordings/{id}", a.getRecording)
			r.Delete("/recordings/{id}", a.deleteRecording)
			r.Get("/recordings/{id}/audio", a.recordingAudio)

			r.Post("/registrations", a.register)
			r.Get("/registrations", a.listRegistrations)
			r.Get("/registrations/{id}", a.getRegistration)
			r.Delete("/registrations/{id}", a.unregister)
		})
	})
	return mux, nil
}

// allMethods are the methods an Allow header may list, in the order listed.
var allMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace,
}

// methodNotAllowed answers 405 with the Allow header RFC 9110 requires.
// chi computes the allowed methods only for its own 405 handler, so this
// asks the router which methods match the path.
func methodNotAllowed(routes chi.Routes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, m := range allMethods {
			if routes.Match(chi.NewRouteContext(), m, r.URL.Path) {
				allowed = append(allowed, m)
			}
		}
		// headAsGet answers HEAD wherever GET is routed.
		if slices.Contains(allowed, http.MethodGet) && !slices.Contains(allowed, http.MethodHead) {
			allowed = append(allowed, http.MethodHead)
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		// §5 has no code for 405; the request is malformed for this resource.
		writeProblem(w, http.StatusMethodNotAllowed, callcore.CodeBadRequest,
			r.Method+" is not allowed on "+r.URL.Path)
	}
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, callcore.CodeInternal, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
