package dialog

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// The parsers of this file read bodies and header values that come from
// the network; each has a fuzz target.

// Parsing errors.
var (
	errBadSipfrag  = errors.New("bad sipfrag")
	errBadDtmf     = errors.New("bad DTMF")
	errBadReplaces = errors.New("bad Replaces")
	errBadReferTo  = errors.New("bad Refer-To")
)

// sipfrag is the status line of a message/sipfrag body (RFC 3420), as the
// NOTIFYs of a REFER carry it (RFC 3515 §2.4.5).
type sipfrag struct {
	line   string // "SIP/2.0 180 Ringing"
	code   int
	reason string
}

// parseSipfrag reads the status line of a sipfrag body; any header lines
// after it are ignored.
func parseSipfrag(body string) (sipfrag, error) {
	line, _, _ := strings.Cut(body, "\n")
	line = strings.TrimSpace(line)
	version, rest, ok := strings.Cut(line, " ")
	if !ok || !strings.EqualFold(version, "SIP/2.0") {
		return sipfrag{}, fmt.Errorf("%w: status line %q", errBadSipfrag, line)
	}
	codeText, reason, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(codeText)
	if err != nil || len(codeText) != 3 || code < 100 || code > 699 {
		return sipfrag{}, fmt.Errorf("%w: status %q", errBadSipfrag, codeText)
	}
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return sipfrag{}, fmt.Errorf("%w: control character in %q", errBadSipfrag, line)
		}
	}
	return sipfrag{line: line, code: code, reason: strings.TrimSpace(reason)}, nil
}

// parseDtmfRelay reads an application/dtmf-relay body: "Signal=5" and
// an optional "Duration=160", one per line.
func parseDtmfRelay(body string) (byte, error) {
	var tone byte
	found := false
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return 0, fmt.Errorf("%w: line %q", errBadDtmf, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch strings.ToLower(key) {
		case "signal":
			t, err := parseDtmfSignal(value)
			if err != nil {
				return 0, err
			}
			tone, found = t, true
		case "duration":
			if n, err := strconv.Atoi(value); err != nil || n < 0 {
				return 0, fmt.Errorf("%w: duration %q", errBadDtmf, value)
			}
		}
	}
	if !found {
		return 0, fmt.Errorf("%w: no Signal", errBadDtmf)
	}
	return tone, nil
}

// parseDtmfSignal reads one DTMF signal: 0-9, *, #, A-D, or the event
// codes 10-15 of RFC 4733 that some phones send for * # A B C D.
func parseDtmfSignal(s string) (byte, error) {
	if len(s) == 1 {
		c := s[0]
		switch {
		case '0' <= c && c <= '9', c == '*', c == '#', 'A' <= c && c <= 'D':
			return c, nil
		case 'a' <= c && c <= 'd':
			return c - 'a' + 'A', nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && len(s) == 2 && n >= 10 && n <= 15 {
		return "*#ABCD"[n-10], nil
	}
	return 0, fmt.Errorf("%w: signal %q", errBadDtmf, s)
}

// replacesValue is a Replaces header value (RFC 3891 §6.1).
type replacesValue struct {
	callID, toTag, fromTag string
	earlyOnly              bool
}

// String formats r as callid;to-tag=…;from-tag=…[;early-only].
func (r replacesValue) String() string {
	s := r.callID + ";to-tag=" + r.toTag + ";from-tag=" + r.fromTag
	if r.earlyOnly {
		s += ";early-only"
	}
	return s
}

// parseReplaces reads a Replaces value; to-tag and from-tag are required.
func parseReplaces(v string) (replacesValue, error) {
	parts := strings.Split(v, ";")
	r := replacesValue{callID: strings.TrimSpace(parts[0])}
	if r.callID == "" || !isWordAtWord(r.callID) {
		return replacesValue{}, fmt.Errorf("%w: call-id %q", errBadReplaces, r.callID)
	}
	var haveTo, haveFrom bool
	for _, p := range parts[1:] {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		switch name {
		case "to-tag":
			r.toTag, haveTo = value, true
		case "from-tag":
			r.fromTag, haveFrom = value, true
		case "early-only":
			r.earlyOnly = true
		case "":
			return replacesValue{}, fmt.Errorf("%w: empty parameter in %q", errBadReplaces, v)
		}
		if !isToken(name) || value != "" && !isToken(value) {
			return replacesValue{}, fmt.Errorf("%w: parameter %q", errBadReplaces, p)
		}
	}
	if !haveTo || !haveFrom || r.toTag == "" || r.fromTag == "" {
		return replacesValue{}, fmt.Errorf("%w: %q lacks to-tag or from-tag", errBadReplaces, v)
	}
	return r, nil
}

// isToken reports whether s is an RFC 3261 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return false
		}
	}
	return true
}

// isWordAtWord reports whether s is a Call-ID: word ["@" word] (§25.1).
func isWordAtWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ';' || c == '"' || c == ',' {
			return false
		}
	}
	return strings.Count(s, "@") <= 1
}

// parseReferTo reads a Refer-To value (RFC 3515 §2.1): a SIP, SIPS or
// tel URI, in angle brackets or not. It returns the URI without its
// Replaces header, and the Replaces value, unescaped and checked, if any.
// Other URI headers stay on the target.
func parseReferTo(v string) (target, replaces string, err error) {
	a, err := parseAddress(v)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", errBadReferTo, err)
	}
	base, query, hasQuery := strings.Cut(a.uri, "?")
	if err := checkURI(base); err != nil {
		return "", "", fmt.Errorf("%w: %v", errBadReferTo, err)
	}
	if !hasQuery {
		return base, "", nil
	}
	var kept []string
	for _, kv := range strings.Split(query, "&") {
		if kv == "" {
			continue
		}
		name, value, _ := strings.Cut(kv, "=")
		n, err := url.PathUnescape(name)
		if err != nil {
			return "", "", fmt.Errorf("%w: header %q: %v", errBadReferTo, name, err)
		}
		if !strings.EqualFold(n, "Replaces") {
			kept = append(kept, kv)
			continue
		}
		if replaces != "" {
			return "", "", fmt.Errorf("%w: two Replaces", errBadReferTo)
		}
		raw, err := url.PathUnescape(value)
		if err != nil {
			return "", "", fmt.Errorf("%w: Replaces %q: %v", errBadReferTo, value, err)
		}
		r, err := parseReplaces(raw)
		if err != nil {
			return "", "", fmt.Errorf("%w: %v", errBadReferTo, err)
		}
		replaces = r.String()
	}
	if len(kept) > 0 {
		base += "?" + strings.Join(kept, "&")
	}
	return base, replaces, nil
}
