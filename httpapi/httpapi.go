// Package httpapi is callbus's HTTP surface: the REST API (DESIGN.md §5),
// answered as JSON with RFC 9457 problem+json errors, and the operational
// endpoints /healthz, /readyz and /metrics.
//
// httpapi talks to the rest of callbus only through the bus, the event
// catalogue and the shared vocabulary of callcore; it imports no layer.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// Config is what the HTTP API needs from the process that serves it.
type Config struct {
	// Ready reports whether this node takes new work: nil when it does, an
	// error saying why not (starting, draining) otherwise. A nil Ready
	// means always ready.
	Ready func() error
	// Metrics answers GET /metrics (promhttp in cmd/callbus). Required.
	Metrics http.Handler
	// APIKeys are the bearer keys accepted on /v1. Empty means /v1 is open,
	// which cmd/callbus allows only on a loopback listener. The ops
	// endpoints (/healthz, /readyz, /metrics) are always open, for probes
	// and scrapers.
	APIKeys []string
	// Logger receives request errors, panics, and the access log at debug
	// level. Nil discards.
	Logger *slog.Logger
}

// New returns the HTTP handler of callbus. It starts nothing. It returns
// an error when cfg.Metrics is nil or the event catalogue cannot be
// encoded.
func New(cfg Config) (http.Handler, error) {
	if cfg.Metrics == nil {
		return nil, errors.New("httpapi: Config.Metrics is nil")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ready := cfg.Ready
	if ready == nil {
		ready = func() error { return nil }
	}
	// The catalogue is fixed at build time: encode it once.
	catalogue, err := json.Marshal(events.Catalogue())
	if err != nil {
		return nil, fmt.Errorf("httpapi: encode event catalogue: %w", err)
	}

	mux := chi.NewRouter()
	mux.Use(withRequestID, accessLog(log), recoverPanic(log), middleware.GetHead)
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

	mux.Route("/v1", func(r chi.Router) {
		r.Use(requireKey(cfg.APIKeys))
		r.Get("/events/catalogue", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(catalogue)
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
		// middleware.GetHead answers HEAD wherever GET is routed.
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
