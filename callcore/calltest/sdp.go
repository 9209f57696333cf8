package calltest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The media directions of RFC 4566 §6.
const (
	SendRecv = "sendrecv"
	SendOnly = "sendonly"
	RecvOnly = "recvonly"
	Inactive = "inactive"
)

// Codec is one RTP payload format of an SDP media line.
type Codec struct {
	PT   int
	Name string // "PCMU", "PCMA", "telephone-event"…
	Rate int
	Fmtp string
}

// SDP is the audio part of a session description, as much as a test needs.
// ParseSDP is lenient about line order, unlike pion/sdp: it checks what it
// reads, not the grammar.
type SDP struct {
	SessionID string
	Version   uint64 // the o= line's session version
	Addr      string // connection address, media level over session level
	Port      int    // port of the first m=audio line
	Proto     string
	Codecs    []Codec // in the order of the m= line
	Direction string  // SendRecv when the description names none
	Ptime     int
}

// Codec returns the codec called name (case-insensitive), if offered.
func (s SDP) Codec(name string) (Codec, bool) {
	for _, c := range s.Codecs {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return Codec{}, false
}

// CodecNames returns the codec names in order, e.g. [PCMU PCMA telephone-event].
func (s SDP) CodecNames() []string {
	out := make([]string, 0, len(s.Codecs))
	for _, c := range s.Codecs {
		out = append(out, c.Name)
	}
	return out
}

var errNoAudio = errors.New("no m=audio line")

// static payload types of RFC 3551 that a test may meet.
var staticCodecs = map[int]Codec{
	0:  {PT: 0, Name: "PCMU", Rate: 8000},
	3:  {PT: 3, Name: "GSM", Rate: 8000},
	4:  {PT: 4, Name: "G723", Rate: 8000},
	8:  {PT: 8, Name: "PCMA", Rate: 8000},
	9:  {PT: 9, Name: "G722", Rate: 8000},
	18: {PT: 18, Name: "G729", Rate: 8000},
}

// ParseSDP parses the audio description of body. It returns an error naming
// the line for a malformed line, and one for a body without an m=audio line
// or without a connection address.
func ParseSDP(body string) (SDP, error) {
	var s SDP
	var sessionAddr, sessionDir, mediaDir string
	section := "session"
	rtpmap := map[int]Codec{}
	fmtp := map[int]string{}
	var pts []int
	for i, line := range strings.Split(body, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			return SDP{}, fmt.Errorf("sdp line %d: malformed %q", i+1, line)
		}
		key, val := line[0], line[2:]
		switch {
		case key == 'm':
			f := strings.Fields(val)
			if len(f) < 3 {
				return SDP{}, fmt.Errorf("sdp line %d: malformed m= line %q", i+1, line)
			}
			if f[0] != "audio" || s.Proto != "" {
				section = "other" // video, or a second audio stream: not ours
				continue
			}
			port, _, _ := strings.Cut(f[1], "/")
			p, err := strconv.Atoi(port)
			if err != nil || p < 0 || p > 65535 {
				return SDP{}, fmt.Errorf("sdp line %d: bad port %q", i+1, f[1])
			}
			s.Port, s.Proto, section = p, f[2], "audio"
			for _, pt := range f[3:] {
				n, err := strconv.Atoi(pt)
				if err != nil || n < 0 || n > 127 {
					return SDP{}, fmt.Errorf("sdp line %d: bad payload type %q", i+1, pt)
				}
				pts = append(pts, n)
			}
		case section == "other":
		case key == 'o':
			f := strings.Fields(val)
			if len(f) >= 3 {
				s.SessionID = f[1]
				s.Version, _ = strconv.ParseUint(f[2], 10, 64)
			}
		case key == 'c':
			f := strings.Fields(val)
			if len(f) < 3 {
				return SDP{}, fmt.Errorf("sdp line %d: malformed c= line %q", i+1, line)
			}
			addr, _, _ := strings.Cut(f[2], "/")
			if section == "session" {
				sessionAddr = addr
			} else {
				s.Addr = addr
			}
		case key == 'a':
			name, arg, _ := strings.Cut(val, ":")
			switch name {
			case SendRecv, SendOnly, RecvOnly, Inactive:
				if section == "session" {
					sessionDir = name
				} else {
					mediaDir = name
				}
			case "rtpmap":
				c, err := parseRtpmap(arg)
				if err != nil {
					return SDP{}, fmt.Errorf("sdp line %d: %w", i+1, err)
				}
				rtpmap[c.PT] = c
			case "fmtp":
				pt, params, _ := strings.Cut(arg, " ")
				if n, err := strconv.Atoi(pt); err == nil {
					fmtp[n] = params
				}
			case "ptime":
				s.Ptime, _ = strconv.Atoi(arg)
			}
		}
	}
	if s.Proto == "" {
		return SDP{}, errNoAudio
	}
	if s.Addr == "" {
		s.Addr = sessionAddr
	}
	if s.Addr == "" {
		return SDP{}, errors.New("sdp: no connection address")
	}
	s.Direction = SendRecv
	if sessionDir != "" {
		s.Direction = sessionDir
	}
	if mediaDir != "" {
		s.Direction = mediaDir
	}
	for _, pt := range pts {
		c, ok := rtpmap[pt]
		if !ok {
			c, ok = staticCodecs[pt]
		}
		if !ok {
			c = Codec{PT: pt}
		}
		c.Fmtp = fmtp[pt]
		s.Codecs = append(s.Codecs, c)
	}
	return s, nil
}

func parseRtpmap(arg string) (Codec, error) {
	pt, enc, ok := strings.Cut(arg, " ")
	n, err := strconv.Atoi(pt)
	if !ok || err != nil {
		return Codec{}, fmt.Errorf("malformed rtpmap %q", arg)
	}
	f := strings.Split(strings.TrimSpace(enc), "/")
	c := Codec{PT: n, Name: f[0]}
	if len(f) > 1 {
		c.Rate, _ = strconv.Atoi(f[1])
	}
	return c, nil
}

// knownCodecs are the codecs a phone can offer by name (WithCodecs).
var knownCodecs = map[string]Codec{
	"pcmu":            {PT: 0, Name: "PCMU", Rate: 8000},
	"pcma":            {PT: 8, Name: "PCMA", Rate: 8000},
	"g722":            {PT: 9, Name: "G722", Rate: 8000},
	"g729":            {PT: 18, Name: "G729", Rate: 8000},
	"telephone-event": {PT: 101, Name: "telephone-event", Rate: 8000, Fmtp: "0-16"},
}

// defaultCodecs is what a phone offers and accepts unless told otherwise.
var defaultCodecs = []string{"PCMU", "PCMA", "telephone-event"}

func codecsByName(names []string) ([]Codec, error) {
	out := make([]Codec, 0, len(names))
	for _, n := range names {
		c, ok := knownCodecs[strings.ToLower(n)]
		if !ok {
			return nil, fmt.Errorf("calltest: unknown codec %q", n)
		}
		out = append(out, c)
	}
	return out, nil
}

// answerCodecs picks, as the answerer, the first offered audio codec that we
// support, plus telephone-event under the offer's payload type when both
// sides have it. It reports false when no audio codec is common.
func answerCodecs(offer SDP, ours []Codec) ([]Codec, bool) {
	var audio, events *Codec
	for _, oc := range offer.Codecs {
		for _, c := range ours {
			if !strings.EqualFold(oc.Name, c.Name) {
				continue
			}
			oc := oc
			if strings.EqualFold(c.Name, "telephone-event") {
				if events == nil {
					events = &oc
				}
			} else if audio == nil {
				audio = &oc
			}
		}
	}
	if audio == nil {
		return nil, false
	}
	out := []Codec{*audio}
	if events != nil {
		out = append(out, *events)
	}
	return out, true
}

// mirror returns the direction that answers dir (RFC 3264 §6.1).
func mirror(dir string) string {
	switch dir {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

// localMedia is a phone's side of a call's audio; render makes its SDP.
type localMedia struct {
	host    string
	port    int
	codecs  []Codec
	dir     string
	sessID  uint64
	version uint64
}

func (m localMedia) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=calltest %d %d IN IP4 %s\r\ns=calltest\r\nc=IN IP4 %s\r\nt=0 0\r\n",
		m.sessID, m.version, m.host, m.host)
	fmt.Fprintf(&b, "m=audio %d RTP/AVP", m.port)
	for _, c := range m.codecs {
		fmt.Fprintf(&b, " %d", c.PT)
	}
	b.WriteString("\r\n")
	for _, c := range m.codecs {
		fmt.Fprintf(&b, "a=rtpmap:%d %s/%d\r\n", c.PT, c.Name, c.Rate)
		if c.Fmtp != "" {
			fmt.Fprintf(&b, "a=fmtp:%d %s\r\n", c.PT, c.Fmtp)
		}
	}
	dir := m.dir
	if dir == "" {
		dir = SendRecv
	}
	fmt.Fprintf(&b, "a=ptime:20\r\na=%s\r\n", dir)
	return b.String()
}
