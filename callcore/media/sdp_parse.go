package media

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/callbus/callbus/callcore/events"
)

// maxSDPSize bounds the SDP media accepts; a SIP message that carries more
// is not a phone's offer.
const maxSDPSize = 64 << 10

// Session-level line types in the order RFC 4566 §5 (and pion/sdp, which
// enforces it) wants them; t= carries its r= lines along. Types marked
// once may appear at most once at session level: pion refuses a second one,
// so normalise keeps the first.
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

// normalise rewrites an SDP body into the form pion/sdp accepts: CRLF
// line ends, no blank lines or trailing blanks, session-level lines in
// RFC 4566 order (real phones put c= after t=, or a= before c=), repeated
// single lines dropped but for the first, and a missing s= or t= supplied
// ("s=-", "t=0 0"). It refuses what is not SDP: a body that does not start
// with v=, a line that is not type=value, a type letter RFC 4566 does not
// define (RFC 4566 §5: such a description must be ignored whole), a
// description without o=, and a body over maxSDPSize.
func normalise(raw string) (string, error) {
	if len(raw) > maxSDPSize {
		return "", fmt.Errorf("SDP of %d bytes exceeds %d", len(raw), maxSDPSize)
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

// parseSDP normalises raw and parses it with pion/sdp.
func parseSDP(raw string) (*sdp.SessionDescription, error) {
	norm, err := normalise(raw)
	if err != nil {
		return nil, err
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(norm); err != nil {
		return nil, fmt.Errorf("parse SDP: %w", err)
	}
	return &sd, nil
}

// The codecs media negotiates, by their canonical encoding names.
const (
	codecPCMU           = "PCMU"
	codecPCMA           = "PCMA"
	codecTelephoneEvent = "telephone-event"
)

// staticPayloadTypes are the RFC 3551 payload types of the audio codecs.
var staticPayloadTypes = map[string]uint8{codecPCMU: 0, codecPCMA: 8}

// format is one payload format of an m= line that media understands.
type format struct {
	pt   uint8
	name string // codecPCMU, codecPCMA or codecTelephoneEvent
}

// audioLine is what media reads from the audio m= line of an SDP.
type audioLine struct {
	index     int    // of the m= line among the description's
	address   string // the connection address (c=), media level first
	port      int
	formats   []format // the known formats, in m= order
	direction string   // one of the events.Media* directions
}

// readAudio finds the first audio stream of sd that media can use: RTP/AVP
// with a port other than 0. With active false, a disabled (port 0) stream
// is taken too: that is how media reads its own local SDP. It returns an
// error naming why no stream fits.
func readAudio(sd *sdp.SessionDescription, active bool) (audioLine, error) {
	var disabled, otherProto string
	for i, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" {
			continue
		}
		proto := strings.Join(md.MediaName.Protos, "/")
		if proto != "RTP/AVP" {
			otherProto = proto
			continue
		}
		if md.MediaName.Port.Value == 0 && active {
			disabled = "the audio stream is disabled (port 0)"
			continue
		}
		conn := md.ConnectionInformation
		if conn == nil {
			conn = sd.ConnectionInformation
		}
		if conn == nil || conn.Address == nil || conn.Address.Address == "" {
			return audioLine{}, fmt.Errorf("the audio stream has no connection address (c=)")
		}
		addr, _, _ := strings.Cut(conn.Address.Address, "/") // multicast TTL
		return audioLine{
			index:     i,
			address:   addr,
			port:      md.MediaName.Port.Value,
			formats:   readFormats(md),
			direction: readDirection(sd, md),
		}, nil
	}
	switch {
	case disabled != "":
		return audioLine{}, fmt.Errorf("%s", disabled)
	case otherProto != "":
		return audioLine{}, fmt.Errorf("audio over %s is not supported (RTP/AVP only)", otherProto)
	}
	return audioLine{}, fmt.Errorf("the SDP has no audio stream")
}

// readFormats returns the formats of md that media knows, in m= order: by
// their rtpmap when there is one, else by the RFC 3551 static types.
func readFormats(md *sdp.MediaDescription) []format {
	rtpmaps := map[uint8]string{}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		ptText, enc, ok := strings.Cut(strings.TrimSpace(a.Value), " ")
		pt, err := strconv.ParseUint(ptText, 10, 7)
		if !ok || err != nil {
			continue
		}
		if _, dup := rtpmaps[uint8(pt)]; !dup {
			rtpmaps[uint8(pt)] = strings.TrimSpace(enc)
		}
	}
	var out []format
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		name := ""
		if enc, ok := rtpmaps[uint8(pt)]; ok {
			name = encodingName(enc)
		} else {
			for n, spt := range staticPayloadTypes {
				if uint8(pt) == spt {
					name = n
				}
			}
		}
		if name != "" {
			out = append(out, format{pt: uint8(pt), name: name})
		}
	}
	return out
}

// encodingName maps an rtpmap encoding ("PCMU/8000", "telephone-event/8000",
// "pcma/8000/1") to the codec media knows, or "".
func encodingName(enc string) string {
	parts := strings.Split(enc, "/")
	if len(parts) < 2 || parts[1] != "8000" || (len(parts) == 3 && parts[2] != "1") || len(parts) > 3 {
		return ""
	}
	for _, n := range []string{codecPCMU, codecPCMA, codecTelephoneEvent} {
		if strings.EqualFold(parts[0], n) {
			return n
		}
	}
	return ""
}

// readDirection returns the direction attribute of md, else of the
// session, else sendrecv (RFC 3264 §5.1).
func readDirection(sd *sdp.SessionDescription, md *sdp.MediaDescription) string {
	for _, attrs := range [][]sdp.Attribute{md.Attributes, sd.Attributes} {
		for _, a := range attrs {
			switch a.Key {
			case events.MediaSendRecv, events.MediaSendOnly, events.MediaRecvOnly, events.MediaInactive:
				return a.Key
			}
		}
	}
	return events.MediaSendRecv
}
