package sdp

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Description is what Read finds in a session description (RFC 4566).
type Description struct {
	SessionID string    // the o= line's <sess-id>; "" without an o= line of three fields or more
	Version   string    // the o= line's <sess-version>, a decimal of any length
	Addr      string    // the session-level connection address (c=), without a multicast TTL
	Direction Direction // the session-level direction attribute; "" when there is none
	Media     []Media   // one per m= line, in order
}

// Media is one media description (m= section) of a Description.
type Media struct {
	Type    string   // "audio", "video"…
	Port    int      // -1 when the m= line has no readable port
	Proto   string   // "RTP/AVP"…
	Formats []string // the m= line's formats as written
	Addr    string   // the section's connection address (c=), else the session's; "" when none
	// Direction is the section's direction attribute, else the session's,
	// else sendrecv (RFC 3264 §5.1).
	Direction Direction
	// Codecs has, for an RTP profile, one entry per valid payload type of
	// the m= line, in order: from its a=rtpmap, else from the static types
	// of RFC 3551, else with no Name.
	Codecs []Codec
	Ptime  int // the section's a=ptime in milliseconds; 0 when none

	named bool // a direction attribute (the section's or the session's) set Direction
}

// Audio returns the first audio section of d, and false when there is none.
func (d Description) Audio() (Media, bool) {
	for _, m := range d.Media {
		if m.Type == "audio" {
			return m, true
		}
	}
	return Media{}, false
}

// AudioDirection returns the direction of d's audio stream as an answerer
// reads it: the first audio section's Direction, except that a section
// without a direction attribute whose connection address is 0.0.0.0 is on
// hold the RFC 2543 way and reads as sendonly (RFC 3264 §8.4). Without an
// audio section it is the session-level attribute, else sendrecv.
func (d Description) AudioDirection() Direction {
	m, ok := d.Audio()
	switch {
	case !ok && d.Direction != "":
		return d.Direction
	case !ok:
		return SendRecv
	case !m.named && m.Addr == "0.0.0.0":
		return SendOnly
	}
	return m.Direction
}

// Codec returns the codec of m called name (case-insensitive), if listed.
func (m Media) Codec(name string) (Codec, bool) {
	for _, c := range m.Codecs {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return Codec{}, false
}

// Endpoint returns "ip:port" of m's connection address and port, or ""
// when either is missing.
func (m Media) Endpoint() string {
	if m.Addr == "" || m.Port < 0 {
		return ""
	}
	return net.JoinHostPort(m.Addr, strconv.Itoa(m.Port))
}

// section is a media description being read.
type section struct {
	Media
	rtpmap map[uint8]Codec
	fmtp   map[uint8]string
	pts    []uint8 // the valid payload types of an RTP profile's m= line
	dir    Direction
	conn   bool // the section has a c= line: the session's does not apply
}

// Read reads body leniently: in any line order, with CRLF or LF line
// ends, trailing blanks and blank lines, without checking what it does not
// use. Where a line appears more often than it should, the last one
// counts. It always returns what it read; the error, when not nil, names
// the first line it could not read: one that is not type=value, an m=
// line without media, port and proto, a port or an RTP payload type out
// of range, a c= line without an address, a malformed a=rtpmap.
func Read(body string) (Description, error) {
	var (
		d     Description
		first error
		cur   *section
		secs  []*section
	)
	fail := func(n int, format string, args ...any) {
		if first == nil {
			first = fmt.Errorf("sdp line %d: %s", n, fmt.Sprintf(format, args...))
		}
	}
	for i, line := range strings.Split(body, "\n") {
		n := i + 1
		line = strings.TrimRight(line, "\r \t")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			fail(n, "not type=value: %.40q", line)
			continue
		}
		val := line[2:]
		switch line[0] {
		case 'm':
			cur = readMediaLine(n, val, fail)
			secs = append(secs, cur)
		case 'o':
			if f := strings.Fields(val); cur == nil && len(f) >= 3 {
				d.SessionID, d.Version = f[1], f[2]
			}
		case 'c':
			addr := ""
			if f := strings.Fields(val); len(f) >= 3 {
				addr, _, _ = strings.Cut(f[2], "/") // drop a multicast TTL
			} else {
				fail(n, "c= line without an address: %.40q", line)
			}
			if cur == nil {
				d.Addr = addr
			} else {
				cur.Addr, cur.conn = addr, true
			}
		case 'a':
			if dir := directionOf(line); dir != "" {
				if cur == nil {
					d.Direction = dir
				} else {
					cur.dir = dir
				}
				continue
			}
			if cur != nil {
				cur.attribute(n, val, fail)
			}
		}
	}
	for _, s := range secs {
		d.Media = append(d.Media, s.finish(d))
	}
	return d, first
}

// readMediaLine starts a section from the value of its m= line.
func readMediaLine(n int, val string, fail func(int, string, ...any)) *section {
	s := &section{Media: Media{Port: -1}}
	f := strings.Fields(val)
	if len(f) < 3 {
		fail(n, "m= line without media, port and proto: %.40q", val)
	}
	if len(f) > 0 {
		s.Type = f[0]
	}
	if len(f) > 1 {
		port, _, _ := strings.Cut(f[1], "/") // drop a port count
		if p, err := decimal(port); err == nil && p <= 65535 {
			s.Port = p
		} else {
			fail(n, "bad port %.20q", f[1])
		}
	}
	if len(f) > 2 {
		s.Proto, s.Formats = f[2], f[3:]
	}
	if !strings.Contains(s.Proto, "RTP/") {
		return s // formats are not payload types
	}
	for _, format := range s.Formats {
		pt, err := strconv.ParseUint(format, 10, 7)
		if err != nil {
			fail(n, "bad payload type %.20q", format)
			continue
		}
		s.pts = append(s.pts, uint8(pt))
	}
	return s
}

// attribute reads an a= line of the section other than a direction.
func (s *section) attribute(n int, val string, fail func(int, string, ...any)) {
	name, arg, _ := strings.Cut(val, ":")
	switch name {
	case "rtpmap":
		c, ptOK, err := parseRtpmap(arg)
		if err != nil {
			fail(n, "%v", err)
		}
		if !ptOK {
			return
		}
		if s.rtpmap == nil {
			s.rtpmap = map[uint8]Codec{}
		}
		s.rtpmap[c.PT] = c
	case "fmtp":
		pt, params, _ := strings.Cut(strings.TrimSpace(arg), " ")
		if p, err := strconv.ParseUint(pt, 10, 7); err == nil {
			if s.fmtp == nil {
				s.fmtp = map[uint8]string{}
			}
			s.fmtp[uint8(p)] = strings.TrimSpace(params)
		}
	case "ptime":
		if p, err := decimal(strings.TrimSpace(arg)); err == nil {
			s.Ptime = p
		}
	}
}

// finish resolves the section's direction and codecs once the whole
// description is read.
func (s *section) finish(d Description) Media {
	m := s.Media
	switch {
	case s.dir != "":
		m.Direction, m.named = s.dir, true
	case d.Direction != "":
		m.Direction, m.named = d.Direction, true
	default:
		m.Direction = SendRecv
	}
	if !s.conn {
		m.Addr = d.Addr
	}
	for _, pt := range s.pts {
		c, ok := s.rtpmap[pt]
		if !ok {
			c, ok = StaticCodec(pt)
		}
		if !ok {
			c = Codec{PT: pt}
		}
		c.Fmtp = s.fmtp[pt]
		m.Codecs = append(m.Codecs, c)
	}
	return m
}
