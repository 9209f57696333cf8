package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/callbus/callbus/callcore"
)

// keyAuth checks bearer keys. It compares digests, so that the time taken
// says nothing about a key's length or how much of it matched.
type keyAuth struct {
	sums [][sha256.Size]byte
}

func newKeyAuth(keys []string) *keyAuth {
	a := &keyAuth{sums: make([][sha256.Size]byte, len(keys))}
	for i, k := range keys {
		a.sums[i] = sha256.Sum256([]byte(k))
	}
	return a
}

// match returns the index of the key token is, or -1. It compares with
// every key, whatever matched, in constant time.
func (a *keyAuth) match(token string) int {
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i := range a.sums {
		if subtle.ConstantTimeCompare(sum[:], a.sums[i][:]) == 1 {
			found = i
		}
	}
	return found
}

type callerKey struct{}

// caller returns who made the request, for rate limits and idempotency
// keys: "key:N" for the Nth API key, else "ip:ADDR".
func caller(r *http.Request) string {
	if c, ok := r.Context().Value(callerKey{}).(string); ok {
		return c
	}
	return "ip:" + remoteIP(r)
}

// remoteIP is the client's address without the port. callbus is reached
// directly (no trusted proxy), so X-Forwarded-For is not read.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// require answers 401 unless the request carries one of the keys as a
// bearer token or, when tokens is not nil, a valid token in the query
// parameter "token" (GET /v1/events only: a browser cannot set headers on
// a WebSocket). With no keys it lets every request through.
func (a *keyAuth) require(tokens *tokens) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if len(a.sums) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			bearerToken, hasBearer := bearer(r.Header.Get("Authorization"))
			if hasBearer {
				if i := a.match(bearerToken); i >= 0 {
					ctx := context.WithValue(r.Context(), callerKey{}, "key:"+strconv.Itoa(i))
					next.ServeHTTP(w, r.WithContext(ctx))
					return
				}
			}
			detail := "missing bearer token"
			if hasBearer {
				detail = "unknown API key"
			}
			if q := r.URL.Query().Get("token"); q != "" {
				if tokens == nil {
					detail = "a token in the query is accepted on GET /v1/events only; send Authorization: Bearer <key>"
				} else if err := tokens.verify(q); err != nil {
					detail = err.Error()
				} else if !hasBearer {
					next.ServeHTTP(w, r)
					return
				}
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="callbus"`)
			writeProblem(w, http.StatusUnauthorized, callcore.CodeUnauthorized, detail)
		})
	}
}

// bearer returns the token of an "Authorization: Bearer <token>" value.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
