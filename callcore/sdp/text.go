package sdp

import "strings"

// text is an SDP body split into lines, remembering its line ending, so
// that a rewrite gives back every line it does not change as it was.
type text struct {
	lines    []string
	eol      string
	trailing bool // the body ended with a line ending
}

// splitText splits body into lines. The line ending is CRLF (RFC 4566)
// unless the body uses bare LFs only.
func splitText(body string) text {
	t := text{eol: "\r\n"}
	if !strings.Contains(body, "\r\n") && strings.Contains(body, "\n") {
		t.eol = "\n"
	}
	if strings.HasSuffix(body, "\n") {
		t.trailing = true
		body = strings.TrimSuffix(strings.TrimSuffix(body, "\n"), "\r")
	}
	if body == "" && !t.trailing {
		return t
	}
	t.lines = strings.Split(body, "\n")
	for i, l := range t.lines {
		t.lines[i] = strings.TrimSuffix(l, "\r")
	}
	return t
}

func (t text) String() string {
	s := strings.Join(t.lines, t.eol)
	if t.trailing {
		s += t.eol
	}
	return s
}

// firstMedia returns the index of the first m= line, or len(t.lines).
func (t text) firstMedia() int {
	for i, l := range t.lines {
		if strings.HasPrefix(l, "m=") {
			return i
		}
	}
	return len(t.lines)
}

// origin returns the index of the session-level o= line, or -1.
func (t text) origin() int {
	for i, l := range t.lines[:t.firstMedia()] {
		if strings.HasPrefix(l, "o=") {
			return i
		}
	}
	return -1
}
