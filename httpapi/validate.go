package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
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

// validSIPURI reports whether u is a sip: or sips: URI with a host: the
// scheme (any case), an optional user part ending in '@', a host name, an
// IPv4 address or a bracketed IPv6 address, an optional port, and optional
// ;parameters and ?headers. It refuses spaces, control characters and the
// characters of a name-addr (<, >, "): the API takes bare URIs. It is the
// session layer's rule.
func validSIPURI(u string) bool {
	var rest string
	switch l := strings.ToLower(u); {
	case strings.HasPrefix(l, "sip:"):
		rest = u[len("sip:"):]
	case strings.HasPrefix(l, "sips:"):
		rest = u[len("sips:"):]
	default:
		return false
	}
	if strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '<' || r == '>' || r == '"' }) {
		return false
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest = rest[:i]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		if at == 0 {
			return false
		}
		rest = rest[at+1:]
	}
	if i := strings.IndexByte(rest, ';'); i >= 0 {
		rest = rest[:i]
	}
	host, port := rest, ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 || !validIPv6(host[1:end]) {
			return false
		}
		port = host[end+1:]
	} else {
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host, port = host[:i], host[i:]
		}
		if !validHostname(host) {
			return false
		}
	}
	if port != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(port, ":"))
		if !strings.HasPrefix(port, ":") || err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return true
}

func validHostname(h string) bool {
	if h == "" || h[0] == '.' || h[0] == '-' {
		return false
	}
	for i := 0; i < len(h); i++ {
		if b := h[i]; !isAlnum(b) && b != '-' && b != '.' && b != '_' {
			return false
		}
	}
	return true
}

func validIPv6(h string) bool {
	if !strings.Contains(h, ":") {
		return false
	}
	for i := 0; i < len(h); i++ {
		b := h[i]
		if !(b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' || b >= '0' && b <= '9' || b == ':' || b == '.') {
			return false
		}
	}
	return true
}

// requireSIPURI checks that the field's value is a SIP URI.
func requireSIPURI(field, v string) error {
	if v == "" {
		return invalid(field, "%s is required: a sip: or sips: URI", field)
	}
	if !validSIPURI(v) {
		return invalid(field, "%s %q is not a sip: or sips: URI", field, v)
	}
	return nil
}

// validHTTPURL reports whether u is an absolute http or https URL.
func validHTTPURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" &&
		!strings.ContainsAny(u, " \t\r\n")
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

// validMediaFile reports whether f is a relative path that stays below
// the media directory: no leading '/', no ".." element, no backslash or
// control character.
func validMediaFile(f string) bool {
	if f == "" || strings.HasPrefix(f, "/") || strings.ContainsAny(f, "\\\x00\r\n") {
		return false
	}
	for _, el := range strings.Split(f, "/") {
		if el == ".." || el == "" || el == "." {
			return false
		}
	}
	return true
}

// callStateOK reports whether s is a call state.
func callStateOK(s string) bool { return callcore.CallState(s).Valid() }
