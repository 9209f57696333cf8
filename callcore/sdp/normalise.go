package sdp

import (
	"fmt"
	"strings"

	pionsdp "github.com/pion/sdp/v3"
)

// MaxSize bounds the SDP that Normalise and Parse accept: a SIP message
// that carries more is not a phone's offer.
const MaxSize = 64 << 10

// Session-level line types in the order RFC 4566 §5 (and pion/sdp, which
// enforces it) wants them; t= carries its r= lines along. Types marked
// once may appear at most once at session level: pion refuses a second one,
// so Normalise keeps the first.
var sessionOrder = map[byte]struct {
	rank int
	once bool
}{
	'v': {0, true}, 'o': {1, true}, 's': {2, true}, 'i': {3, true}, 'u': {4, true},
	'e': {5, true}, 'p': {6, true}, 'c': {7, true}, 'b': {8, false}, 't': {9, false},
	'z': {10, true}, 'k': {11, true}, 'a': {12, false},
}

// Media-level line types in RFC 4566 order, after the m= line.
var mediaOrder = map[byte]struct {
	rank int
	once bool
}{
	'i': {0, true}, 'c': {1, false}, 'b': {2, false}, 'k': {3, true}, 'a': {4, false},
}

// Normalise rewrites an SDP body into the form pion/sdp accepts: CRLF
// line ends, no blank lines or trailing blanks, session-level lines in
// RFC 4566 order (real phones put c= after t=, or a= before c=), repeated
// single lines dropped but for the first, and a missing s= or t= supplied
// ("s=-", "t=0 0"). It refuses what is not SDP: a body that does not start
// with v=, a line that is not type=value, a type letter RFC 4566 does not
// define (RFC 4566 §5: such a description must be ignored whole), a
// description without o=, and a body over MaxSize.
func Normalise(raw string) (string, error) {
	if len(raw) > MaxSize {
		return "", fmt.Errorf("SDP of %d bytes exceeds %d", len(raw), MaxSize)
	}
	lines := strings.FieldsFunc(raw, func(r rune) bool { return r == '\r' || r == '\n' })
	var kept []string
	for _, l := range lines {
		if l = strings.TrimRight(l, " \t"); l != "" {
			kept = append(kept, l)
		}
	}
	if len(kept) == 0 {
		return "", fmt.Errorf("empty SDP")
	}
	for i, l := range kept {
		if len(l) < 2 || l[1] != '=' || l[0] < 'a' || l[0] > 'z' {
			return "", fmt.Errorf("SDP line %d is not type=value: %.40q", i+1, l)
		}
	}
	if kept[0][0] != 'v' {
		return "", fmt.Errorf("SDP does not start with v=: %.40q", kept[0])
	}

	// Split into the session section and one section per m= line.
	end := len(kept)
	for i, l := range kept {
		if l[0] == 'm' {
			end = i
			break
		}
	}
	session, err := orderSession(kept[:end])
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, l := range session {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	for i := end; i < len(kept); {
		j := i + 1
		for j < len(kept) && kept[j][0] != 'm' {
			j++
		}
		media, err := orderMedia(kept[i:j])
		if err != nil {
			return "", err
		}
		for _, l := range media {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
		i = j
	}
	return b.String(), nil
}

// orderSession sorts the session-level lines; lines[0] is v=.
func orderSession(lines []string) ([]string, error) {
	buckets := make([][]string, len(sessionOrder))
	var times [][]string // each t= with its r= lines
	for i, l := range lines {
		typ := l[0]
		ord, ok := sessionOrder[typ]
		switch {
		case typ == 'r':
			if len(times) > 0 { // an r= before any t= repeats nothing
				times[len(times)-1] = append(times[len(times)-1], l)
			}
			continue
		case !ok:
			return nil, fmt.Errorf("SDP line %d: type %c= is not allowed at session level", i+1, typ)
		case typ == 'v' && i > 0:
			return nil, fmt.Errorf("SDP line %d: a second v= line", i+1)
		case typ == 't':
			times = append(times, []string{l})
			continue
		case ord.once && len(buckets[ord.rank]) > 0:
			continue
		}
		buckets[ord.rank] = append(buckets[ord.rank], l)
	}
	if len(buckets[sessionOrder['o'].rank]) == 0 {
		return nil, fmt.Errorf("SDP has no o= line")
	}
	if s := sessionOrder['s'].rank; len(buckets[s]) == 0 {
		buckets[s] = []string{"s=-"}
	}
	if len(times) == 0 {
		times = [][]string{{"t=0 0"}}
	}
	out := make([]string, 0, len(lines)+2)
	for rank, bucket := range buckets {
		if rank == sessionOrder['t'].rank {
			for _, t := range times {
				out = append(out, t...)
			}
			continue
		}
		out = append(out, bucket...)
	}
	return out, nil
}

// orderMedia sorts the lines of one media section; lines[0] is its m=.
func orderMedia(lines []string) ([]string, error) {
	buckets := make([][]string, len(mediaOrder))
	for _, l := range lines[1:] {
		ord, ok := mediaOrder[l[0]]
		switch {
		case !ok:
			return nil, fmt.Errorf("SDP: type %c= is not allowed in a media description (%.40q)", l[0], lines[0])
		case ord.once && len(buckets[ord.rank]) > 0:
			continue
		}
		buckets[ord.rank] = append(buckets[ord.rank], l)
	}
	out := append(make([]string, 0, len(lines)), lines[0])
	for _, bucket := range buckets {
		out = append(out, bucket...)
	}
	return out, nil
}

// Parse normalises raw, checks it against the strict RFC 4566 grammar of
// pion/sdp and reads it (see Read; with the grammar checked, Read's
// complaints about what pion/sdp accepts are dropped). It returns the
// errors of Normalise, and pion/sdp's refusal wrapped as "parse SDP".
func Parse(raw string) (Description, error) {
	norm, err := Normalise(raw)
	if err != nil {
		return Description{}, err
	}
	var sd pionsdp.SessionDescription
	if err := sd.UnmarshalString(norm); err != nil {
		return Description{}, fmt.Errorf("parse SDP: %w", err)
	}
	d, _ := Read(norm)
	return d, nil
}
