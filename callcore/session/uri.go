package session

import (
	"strconv"
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// validSIPURI reports whether u is a sip: or sips: URI with a host: the
// scheme (any case), an optional user part ending in '@', a host name, an
// IPv4 address or a bracketed IPv6 address, an optional port, and optional
// ;parameters and ?headers. It refuses spaces, control characters and the
// characters of a name-addr (<, >, "): the session takes bare URIs.
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
		if end < 0 {
			return false
		}
		host, port = host[1:end], host[end+1:]
		if !validIPv6(host) {
			return false
		}
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
		b := h[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '.' || b == '_') {
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
