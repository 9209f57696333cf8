package callcore

import (
	"strconv"
	"strings"
)

// ValidSIPURI reports whether u is a sip: or sips: URI with a host: the
// scheme (any case), an optional user part ending in '@', a host name, an
// IPv4 address or a bracketed IPv6 address, an optional port, and optional
// ;parameters and ?headers. It refuses spaces, control characters and the
// characters of a name-addr (<, >, "): callbus takes bare URIs. The
// session layer and the REST API check URIs by this one rule.
func ValidSIPURI(u string) bool {
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
