package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/callbus/callbus/callcore"
)

// The syntactic rules of the request bodies. The session layer checks
// them again (it serves the IVR too); checking here answers the caller
// without a bus round trip and names the REST field, not the event's.

// maxIDLen bounds the ids of calls, recordings and registrations.
const maxIDLen = 128

// validID reports whether id can name a call, recording or registration:
// 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or a
// digit. Session ids ("node.xxxx"), recording ids ("rec_xxxx") and
// registration ids ("reg_xxxx") all fit; anything that could act on a
// path ('/', '%', "..." first) cannot.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen || !isAlnum(id[0]) {
		return false
	}
	for i := 1; i < len(id); i++ {
		if b := id[i]; !isAlnum(b) && b != '.' && b != '_' && b != '-' {
			return false
		}
	}
	return true
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// pathID returns the {id} of the request's path, unescaped, or a
// validation_failed error naming "id" when it is not a valid id. A
// malformed id is refused rather than answered not_found, so that a
// client learns its request is wrong rather than that nothing is there.
func pathID(r *http.Request) (string, error) {
	raw := chi.URLParam(r, "id")
	id, err := url.PathUnescape(raw)
	if err != nil || !validID(id) {
		return "", invalid("id", "id %q: want 1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit",
			raw, maxIDLen)
	}
	return id, nil
}

// requireSIPURI checks that the field's value is a SIP URI.
func requireSIPURI(field, v string) error {
	if v == "" {
		return invalid(field, "%s is required: a sip: or sips: URI", field)
	}
	if !callcore.ValidSIPURI(v) {
		return invalid(field, "%s %q is not a sip: or sips: URI", field, v)
	}
	return nil
}

// oneLine reports whether s holds no line break or NUL, so that it can
// travel in a SIP header.
func oneLine(s string) bool { return !strings.ContainsAny(s, "\r\n\x00") }

// The limits of the fields that have one.
const (
	maxDigits       = 64
	minDtmfMS       = 40
	maxDtmfMS       = 5000
	maxRingTimeoutS = 600
	maxHeaders      = 32
	maxHeaderValue  = 1024
	maxClientState  = 4096
	maxReason       = 256
	maxRegExpires   = 86400
)

// validDigits reports whether d is 1 to 64 DTMF digits: 0-9, *, #, A-D
// (letters in either case).
func validDigits(d string) bool {
	if d == "" || len(d) > maxDigits {
		return false
	}
	for i := 0; i < len(d); i++ {
		b := d[i]
		if !(b >= '0' && b <= '9' || b == '*' || b == '#' || b >= 'A' && b <= 'D' || b >= 'a' && b <= 'd') {
			return false
		}
	}
	return true
}

// validHeaderName reports whether n is an X- header name made of RFC 3261
// token characters.
func validHeaderName(n string) bool {
	if len(n) < 3 || !strings.EqualFold(n[:2], "X-") {
		return false
	}
	for _, r := range n {
		if !(r < 0x80 && isAlnum(byte(r))) && !strings.ContainsRune("-.!%*_+`'~", r) {
			return false
		}
	}
	return true
}

// callStateOK reports whether s is a call state.
func callStateOK(s string) bool { return callcore.CallState(s).Valid() }
