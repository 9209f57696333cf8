package session

import (
	"strconv"
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// validSIPURI is callcore.ValidSIPURI.
func validSIPURI(u string) bool { return callcore.ValidSIPURI(u) }

// uriUser returns the user part, lower-cased, of the URI in a From/To
// header value or a bare URI ("" when it has none): "echo" for
// `"Echo" <sip:echo@host>;tag=1`, `sip:Echo@host` or `<sips:echo;p=1@host>`.
func uriUser(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
		if j := strings.IndexByte(v, '>'); j >= 0 {
			v = v[:j]
		}
	}
	l := strings.ToLower(v)
	switch {
	case strings.HasPrefix(l, "sip:"):
		l = l[len("sip:"):]
	case strings.HasPrefix(l, "sips:"):
		l = l[len("sips:"):]
	default:
		return ""
	}
	at := strings.IndexByte(l, '@')
	if at < 0 {
		return ""
	}
	user, _, _ := strings.Cut(l[:at], ";")
	return user
}

// validHeaders checks the extra headers of MakeCall: token names, one-line
// values (no header injection).
func validHeaders(h events.Headers) error {
	for _, f := range h {
		if f.Name == "" || strings.ContainsFunc(f.Name, func(r rune) bool { return !isTokenChar(r) }) {
			return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "headers",
				Message: "header name " + strconv.Quote(f.Name) + " is not a token"}
		}
		if strings.ContainsAny(f.Value, "\r\n\x00") {
			return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "headers",
				Message: "header " + f.Name + ": the value must be one line"}
		}
	}
	return nil
}

// isTokenChar reports whether r may appear in an RFC 3261 token.
func isTokenChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("-.!%*_+`'~", r)
}
