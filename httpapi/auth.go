package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/callbus/callbus/callcore"
)

// requireKey answers 401 unless the request carries one of keys as a
// bearer token. With no keys it lets every request through.
func requireKey(keys []string) func(http.Handler) http.Handler {
	// Compare digests, so that the time taken says nothing about a key's
	// length or how much of it matched.
	sums := make([][sha256.Size]byte, len(keys))
	for i, k := range keys {
		sums[i] = sha256.Sum256([]byte(k))
	}
	return func(next http.Handler) http.Handler {
		if len(keys) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := bearer(r.Header.Get("Authorization"))
			if ok {
				sum := sha256.Sum256([]byte(token))
				match := 0
				for i := range sums {
					match |= subtle.ConstantTimeCompare(sum[:], sums[i][:])
				}
				if match == 1 {
					next.ServeHTTP(w, r)
					return
				}
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="callbus"`)
			detail := "missing bearer token"
			if ok {
				detail = "unknown API key"
			}
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
