package sdp

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of the rewriters.
var (
	ErrNoOrigin     = errors.New("sdp: no valid o= line (6 fields, a numeric version) before the first m= line")
	ErrBadDirection = errors.New("sdp: direction must be sendrecv, sendonly, recvonly or inactive")
)

// SetDirection returns body with every media section's direction set to
// d, in place of its first direction attribute or after its last line,
// dropping any other direction attribute (the session-level one too, which
// would otherwise apply to sections without their own). Without media
// sections the direction goes at session level. Every other line, the o=
// version included, is kept as it was. It returns ErrBadDirection for an
// invalid d.
func SetDirection(body string, d Direction) (string, error) {
	if !d.Valid() {
		return "", fmt.Errorf("%w: %q", ErrBadDirection, d)
	}
	return rewrite(body, func(Direction) Direction { return d }), nil
}

// LimitDirection returns body with every media section's direction
// intersected with d: its own attribute, else the session's, else sendrecv
// (RFC 3264 §5.1), limited to what d allows. With SendOnly that is a hold
// offer (RFC 6337 §5.3): a section that sent goes sendonly, one that did
// not goes inactive. It rewrites the lines as SetDirection does and
// returns ErrBadDirection for an invalid d.
func LimitDirection(body string, d Direction) (string, error) {
	if !d.Valid() {
		return "", fmt.Errorf("%w: %q", ErrBadDirection, d)
	}
	return rewrite(body, func(cur Direction) Direction { return cur.Intersect(d) }), nil
}

// BumpVersion returns body with its o= session version increased by one,
// as every new offer or answer of a session must be (RFC 3264 §8); the
// version may have any number of digits. Every other line is kept as it
// was. It returns ErrNoOrigin when body has no session-level o= line of
// six fields with a decimal version.
func BumpVersion(body string) (string, error) {
	t := splitText(body)
	origin := t.origin()
	if origin < 0 {
		return "", ErrNoOrigin
	}
	f := strings.Fields(t.lines[origin][len("o="):])
	if len(f) != 6 || !isDecimal(f[2]) {
		return "", ErrNoOrigin
	}
	f[2] = incDecimal(f[2])
	t.lines[origin] = "o=" + strings.Join(f, " ")
	return t.String(), nil
}

// rewrite gives every media section (or the session, without media) the
// direction set returns for its current one.
func rewrite(body string, set func(current Direction) Direction) string {
	t := splitText(body)
	first := t.firstMedia()
	session := Direction("")
	for _, l := range t.lines[:first] {
		if d := directionOf(l); d != "" {
			session = d
		}
	}
	out := make([]string, 0, len(t.lines)+2)
	// place writes the lines of one section (or the session level) with
	// its direction set.
	place := func(ls []string, current Direction) {
		attr, placed := "a="+string(set(current)), false
		for _, l := range ls {
			switch {
			case directionOf(l) == "":
				out = append(out, l)
			case !placed:
				out, placed = append(out, attr), true
			}
		}
		if !placed {
			out = append(out, attr)
		}
	}
	if first == len(t.lines) {
		place(t.lines, or(session, SendRecv))
		t.lines = out
		return t.String()
	}
	for _, l := range t.lines[:first] { // with media, the session level gets none
		if directionOf(l) == "" {
			out = append(out, l)
		}
	}
	for i := first; i < len(t.lines); {
		end := i + 1
		for end < len(t.lines) && !strings.HasPrefix(t.lines[end], "m=") {
			end++
		}
		current := Direction("")
		for _, l := range t.lines[i+1 : end] {
			if d := directionOf(l); d != "" {
				current = d
			}
		}
		out = append(out, t.lines[i])
		place(t.lines[i+1:end], or(current, session, SendRecv))
		i = end
	}
	t.lines = out
	return t.String()
}

// or returns the first of ds that is not "".
func or(ds ...Direction) Direction {
	for _, d := range ds {
		if d != "" {
			return d
		}
	}
	return ""
}

// incDecimal adds one to a decimal string of any length ("9" → "10"):
// o= versions are up to 64-bit and some peers start near the top.
func incDecimal(s string) string {
	b := []byte(s)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < '9' {
			b[i]++
			return string(b)
		}
		b[i] = '0'
	}
	return "1" + string(b)
}
