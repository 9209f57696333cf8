package session

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/callbus/callbus/callcore/events"
)

// The session reads SDP as text: it needs the media direction (hold), the
// o= version (to bump it), the RTP endpoint and the first codec. Full
// offer/answer is the media layer's (RFC 3264).

// Errors of the SDP rewriter.
var (
	errNoOrigin     = errors.New("sdp: no valid o= line (6 fields, a numeric version) before the first m= line")
	errBadDirection = errors.New("sdp: direction must be sendrecv, sendonly, recvonly or inactive")
)

// sdpText is an SDP body split into lines, remembering its line ending.
type sdpText struct {
	lines    []string
	eol      string
	trailing bool // the body ended with a line ending
}

// splitSDP splits sdp into lines. The line ending is CRLF (RFC 4566)
// unless the body uses bare LFs only.
func splitSDP(sdp string) sdpText {
	t := sdpText{eol: "\r\n"}
	if !strings.Contains(sdp, "\r\n") && strings.Contains(sdp, "\n") {
		t.eol = "\n"
	}
	body := sdp
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

func (t sdpText) String() string {
	s := strings.Join(t.lines, t.eol)
	if t.trailing {
		s += t.eol
	}
	return s
}

// firstMedia returns the index of the first m= line, or len(lines).
func (t sdpText) firstMedia() int {
	for i, l := range t.lines {
		if strings.HasPrefix(l, "m=") {
			return i
		}
	}
	return len(t.lines)
}

// audioSection returns the bounds [start, end) of the first m=audio
// section (else of the first m= section) and whether there is one.
func (t sdpText) audioSection() (start, end int, ok bool) {
	start = -1
	for i, l := range t.lines {
		if strings.HasPrefix(l, "m=audio ") {
			start = i
			break
		}
	}
	if start < 0 {
		start = t.firstMedia()
		if start == len(t.lines) {
			return 0, 0, false
		}
	}
	end = start + 1
	for end < len(t.lines) && !strings.HasPrefix(t.lines[end], "m=") {
		end++
	}
	return start, end, true
}

// directionOf returns the direction an a= line sets, or "".
func directionOf(line string) string {
	switch strings.TrimRight(line, " \t") {
	case "a=sendrecv":
		return events.MediaSendRecv
	case "a=sendonly":
		return events.MediaSendOnly
	case "a=recvonly":
		return events.MediaRecvOnly
	case "a=inactive":
		return events.MediaInactive
	}
	return ""
}

func validDirection(d string) bool {
	switch d {
	case events.MediaSendRecv, events.MediaSendOnly, events.MediaRecvOnly, events.MediaInactive:
		return true
	}
	return false
}

// rewriteDirection returns sdp with every media section's direction set
// to dir and the o= version increased by one: a new offer or answer that
// differs from the last one (RFC 3264 §8).
func rewriteDirection(sdp, dir string) (string, error) { return rewrite(sdp, dir, true) }

// setDirection returns sdp with its direction set to dir and its o=
// version unchanged.
func setDirection(sdp, dir string) (string, error) { return rewrite(sdp, dir, false) }

// rewrite sets the direction of every media section to dir, in place of
// its first direction attribute or after its last line, dropping any other
// direction attribute (the session-level one too, which would otherwise
// apply to sections without their own). Without media sections the
// direction goes at session level. Every other line is kept as it was.
func rewrite(sdp, dir string, bump bool) (string, error) {
	if !validDirection(dir) {
		return "", fmt.Errorf("%w: %q", errBadDirection, dir)
	}
	t := splitSDP(sdp)
	first := t.firstMedia()
	origin := -1
	for i := 0; i < first; i++ {
		if strings.HasPrefix(t.lines[i], "o=") {
			origin = i
			break
		}
	}
	if origin < 0 {
		return "", errNoOrigin
	}
	f := strings.Fields(t.lines[origin][len("o="):])
	if len(f) != 6 || !isDecimal(f[2]) {
		return "", errNoOrigin
	}
	if bump {
		f[2] = incDecimal(f[2])
	}
	attr := "a=" + dir
	out := make([]string, 0, len(t.lines)+2)
	placed := first < len(t.lines) // with media, the session level gets none
	for i := 0; i < first; i++ {
		l := t.lines[i]
		switch {
		case i == origin:
			out = append(out, "o="+strings.Join(f, " "))
		case directionOf(l) != "":
			if !placed {
				out, placed = append(out, attr), true
			}
		default:
			out = append(out, l)
		}
	}
	if !placed {
		out = append(out, attr)
	}
	for i := first; i < len(t.lines); {
		out = append(out, t.lines[i])
		placed = false
		for i++; i < len(t.lines) && !strings.HasPrefix(t.lines[i], "m="); i++ {
			if directionOf(t.lines[i]) == "" {
				out = append(out, t.lines[i])
			} else if !placed {
				out, placed = append(out, attr), true
			}
		}
		if !placed {
			out = append(out, attr)
		}
	}
	t.lines = out
	return t.String(), nil
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
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

// sdpDirection returns the direction of the audio section of sdp: its own
// attribute, else the session-level one, else sendrecv. A connection
// address of 0.0.0.0 (RFC 2543 hold) with no attribute counts as sendonly.
func sdpDirection(sdp string) string {
	t := splitSDP(sdp)
	first := t.firstMedia()
	dir := ""
	for _, l := range t.lines[:first] {
		if d := directionOf(l); d != "" {
			dir = d
		}
	}
	if start, end, ok := t.audioSection(); ok {
		for _, l := range t.lines[start+1 : end] {
			if d := directionOf(l); d != "" {
				dir = d
			}
		}
	}
	if dir == "" {
		dir = events.MediaSendRecv
		if addr, _ := t.endpoint(); addr == "0.0.0.0" {
			dir = events.MediaSendOnly
		}
	}
	return dir
}

// hasMedia reports whether sdp has a media section.
func hasMedia(sdp string) bool {
	t := splitSDP(sdp)
	return t.firstMedia() < len(t.lines)
}

// mirrorDirection returns the answer's direction for an offer's (RFC 3264 §6.1).
func mirrorDirection(d string) string {
	switch d {
	case events.MediaSendOnly:
		return events.MediaRecvOnly
	case events.MediaRecvOnly:
		return events.MediaSendOnly
	case events.MediaInactive:
		return events.MediaInactive
	}
	return events.MediaSendRecv
}

// intersectDirection returns the direction that sends only when both a
// and b send and receives only when both receive.
func intersectDirection(a, b string) string {
	sends := func(d string) bool { return d == events.MediaSendRecv || d == events.MediaSendOnly }
	recvs := func(d string) bool { return d == events.MediaSendRecv || d == events.MediaRecvOnly }
	send, recv := sends(a) && sends(b), recvs(a) && recvs(b)
	switch {
	case send && recv:
		return events.MediaSendRecv
	case send:
		return events.MediaSendOnly
	case recv:
		return events.MediaRecvOnly
	}
	return events.MediaInactive
}

// endpoint returns the connection address and the port of the audio
// section ("" when absent); a section-level c= overrides the session's.
func (t sdpText) endpoint() (addr, port string) {
	start, end, ok := t.audioSection()
	if !ok {
		return "", ""
	}
	conn := func(l string) string {
		f := strings.Fields(strings.TrimPrefix(l, "c="))
		if len(f) < 3 {
			return ""
		}
		a, _, _ := strings.Cut(f[2], "/") // drop a multicast TTL
		return a
	}
	for _, l := range t.lines[:t.firstMedia()] {
		if strings.HasPrefix(l, "c=") {
			addr = conn(l)
		}
	}
	for _, l := range t.lines[start+1 : end] {
		if strings.HasPrefix(l, "c=") {
			addr = conn(l)
		}
	}
	if f := strings.Fields(t.lines[start]); len(f) >= 2 {
		port, _, _ = strings.Cut(f[1], "/")
	}
	return addr, port
}

// rtpEndpoint returns "ip:port" of the audio stream sdp describes, or "".
func rtpEndpoint(sdp string) string {
	if sdp == "" {
		return ""
	}
	addr, port := splitSDP(sdp).endpoint()
	if addr == "" || !isDecimal(port) {
		return ""
	}
	return net.JoinHostPort(addr, port)
}

// staticCodecs names the static RTP payload types of RFC 3551 we may meet.
var staticCodecs = map[string]string{"0": "PCMU", "3": "GSM", "8": "PCMA", "9": "G722", "18": "G729"}

// codecOf returns the first codec of the audio section of sdp (the one an
// answer chose), by its rtpmap or its static payload type; "" if unknown.
func codecOf(sdp string) string {
	t := splitSDP(sdp)
	start, end, ok := t.audioSection()
	if !ok {
		return ""
	}
	f := strings.Fields(t.lines[start])
	if len(f) < 4 {
		return ""
	}
	pt := f[3]
	for _, l := range t.lines[start+1 : end] {
		if rest, ok := strings.CutPrefix(l, "a=rtpmap:"+pt+" "); ok {
			name, _, _ := strings.Cut(strings.TrimSpace(rest), "/")
			return name
		}
	}
	return staticCodecs[pt]
}
