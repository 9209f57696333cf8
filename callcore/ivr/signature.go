package ivr

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Header names of a webhook request.
const (
	// HeaderSignature carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" of
	// the timestamp and the body (Sign).
	HeaderSignature = "Callbus-Signature"
	// HeaderEventID carries the id of the event a request reports, the
	// same on every attempt, so that an app can drop a repeat.
	HeaderEventID = "Callbus-Event-Id"
)

// MaxSignatureAge is how old a signature's timestamp may be before Verify
// refuses it (a replayed request), and how far in the future.
const MaxSignatureAge = 5 * time.Minute

// Errors of Verify.
var (
	ErrNoSignature  = errors.New("ivr: no " + HeaderSignature + " header")
	ErrBadSignature = errors.New("ivr: malformed " + HeaderSignature + " header")
	ErrStale        = errors.New("ivr: signature timestamp outside the allowed window")
	ErrMismatch     = errors.New("ivr: signature does not match the body")
)

// Sign returns the Callbus-Signature value of body sent at t with secret:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a Callbus-Signature header value against body and secret,
// as an app receiving callbus's webhooks should before it trusts one. It
// returns ErrNoSignature for an empty header, ErrBadSignature when the
// header is not "t=…,v1=…", ErrStale when its timestamp is more than
// MaxSignatureAge away from now, and ErrMismatch when no v1 value is the
// body's HMAC (compared in constant time). Several v1 values are allowed,
// so that a secret can be rotated.
func Verify(secret []byte, header string, body []byte, now time.Time) error {
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrNoSignature
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrBadSignature
		}
		switch k {
		case "t":
			if ts != "" {
				return ErrBadSignature
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return ErrBadSignature
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return ErrBadSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 {
		return ErrBadSignature
	}
	if age := now.Sub(time.Unix(sec, 0)); age > MaxSignatureAge || age < -MaxSignatureAge {
		return ErrStale
	}
	want := mac(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return ErrMismatch
}
