package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/callbus/callbus/callcore"
)

// HeaderRequestID carries a request's id, both ways.
const HeaderRequestID = "X-Request-Id"

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID takes the caller's X-Request-Id when it is a sane token
// (so a caller can follow its own id through our logs), else makes one, and
// echoes it in the response.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if len(id) == 0 || len(id) > 64 || !printableToken(id) {
			id = newRequestID()
		}
		w.Header().Set(HeaderRequestID, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "req_" + hex.EncodeToString(b[:])
}

// printableToken reports whether s is visible ASCII without spaces.
func printableToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// accessLog logs every request at debug level once it is answered. When
// the logger does not take debug records it costs one Enabled call.
func accessLog(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !log.Enabled(r.Context(), slog.LevelDebug) {
				next.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			defer func() {
				status := ww.Status()
				if status == 0 { // nothing written: net/http answers 200
					status = http.StatusOK
				}
				log.DebugContext(r.Context(), "http request",
					"method", r.Method, "path", r.URL.Path, "status", status,
					"bytes", ww.BytesWritten(), "duration", time.Since(start),
					"remote", r.RemoteAddr, "request_id", RequestID(r.Context()))
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

// recoverPanic turns a handler's panic into a logged error and, when
// nothing was written yet, a 500 problem. http.ErrAbortHandler passes
// through: it is net/http's way to abort a response on purpose.
func recoverPanic(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			defer func() {
				rec := recover()
				if rec == nil {
					return
				}
				if rec == http.ErrAbortHandler {
					panic(rec)
				}
				log.ErrorContext(r.Context(), "http handler panicked",
					"panic", fmt.Sprint(rec), "method", r.Method, "path", r.URL.Path,
					"request_id", RequestID(r.Context()), "stack", string(debug.Stack()))
				if ww.Status() != 0 {
					// The answer has begun; abort the connection so the
					// client cannot take a truncated body for a whole one.
					panic(http.ErrAbortHandler)
				}
				writeProblem(w, http.StatusInternalServerError, callcore.CodeInternal, "internal error")
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

// headAsGet routes HEAD as GET. net/http discards the body written for a
// HEAD request (it knows the request's real method), so the handler of
// GET answers both. chi's middleware.GetHead does not reach the routes of
// mounted sub-routers.
func headAsGet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			r = r.WithContext(r.Context())
			r.Method = http.MethodGet
		}
		next.ServeHTTP(w, r)
	})
}
