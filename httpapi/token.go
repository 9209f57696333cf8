package httpapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/callbus/callbus/callcore"
)

// tokenPrefix starts every token, so that one is recognisable in a URL.
const tokenPrefix = "cbt_"

// MaxTokenTTL bounds the ttl_s a caller may ask of POST /v1/tokens.
const MaxTokenTTL = time.Hour

// tokens mints and checks the short-lived tokens of POST /v1/tokens: the
// expiry (Unix milliseconds) and an HMAC-SHA256 of it under a secret drawn
// when the process starts. Nothing is stored: a token is valid on the node
// that minted it, until it expires or the process restarts.
type tokens struct {
	secret [32]byte
	ttl    time.Duration
	now    func() time.Time
}

func newTokens(ttl time.Duration, now func() time.Time) *tokens {
	t := &tokens{ttl: ttl, now: now}
	_, _ = rand.Read(t.secret[:]) // crypto/rand.Read never fails (Go 1.24+)
	return t
}

// mint returns a token that expires after ttl, and its expiry.
func (t *tokens) mint(ttl time.Duration) (string, time.Time) {
	exp := t.now().Add(ttl).UTC().Truncate(time.Millisecond)
	var b [8 + sha256.Size]byte
	binary.BigEndian.PutUint64(b[:8], uint64(exp.UnixMilli()))
	copy(b[8:], t.mac(b[:8]))
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), exp
}

func (t *tokens) mac(msg []byte) []byte {
	h := hmac.New(sha256.New, t.secret[:])
	h.Write(msg)
	return h.Sum(nil)
}

// Errors of verify; their text is the 401's detail.
var (
	errTokenMalformed = errors.New("token is not one this server minted")
	errTokenExpired   = errors.New("token has expired; mint another with POST /v1/tokens")
)

// verify returns nil when tok was minted here and has not expired.
func (t *tokens) verify(tok string) error {
	raw, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok {
		return errTokenMalformed
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) != 8+sha256.Size {
		return errTokenMalformed
	}
	if !hmac.Equal(b[8:], t.mac(b[:8])) {
		return errTokenMalformed
	}
	exp := time.UnixMilli(int64(binary.BigEndian.Uint64(b[:8])))
	if !t.now().Before(exp) {
		return errTokenExpired
	}
	return nil
}

// tokenRequest is the optional body of POST /v1/tokens.
type tokenRequest struct {
	TTLS *int `json:"ttl_s,omitempty"`
}

// Token is the answer of POST /v1/tokens.
type Token struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// createToken serves POST /v1/tokens.
func (a *api) createToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ttl := a.tokens.ttl
	if req.TTLS != nil {
		if *req.TTLS < 1 || time.Duration(*req.TTLS)*time.Second > MaxTokenTTL {
			writeError(w, r, a.log, invalid("ttl_s", "ttl_s %d: want 1 to %d", *req.TTLS, int(MaxTokenTTL/time.Second)))
			return
		}
		ttl = time.Duration(*req.TTLS) * time.Second
	}
	tok, exp := a.tokens.mint(ttl)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, Token{Token: tok, ExpiresAt: exp})
}

// invalid returns a validation_failed error naming field.
func invalid(field, format string, args ...any) *callcore.Error {
	e := callcore.Errorf(callcore.CodeValidationFailed, format, args...)
	e.Field = field
	return e
}
