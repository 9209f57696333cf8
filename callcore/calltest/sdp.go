package calltest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/callbus/callbus/callcore/sdp"
)

// The media directions of RFC 4566 §6, as plain strings: callcore/sdp's
// attribute values.
const (
	SendRecv = string(sdp.SendRecv)
	SendOnly = string(sdp.SendOnly)
	RecvOnly = string(sdp.RecvOnly)
	Inactive = string(sdp.Inactive)
)

// Codec is one RTP payload format of an SDP media line: PT, Name ("PCMU",
// "PCMA", "telephone-event"…), Rate, Channels and Fmtp.
type Codec = sdp.Codec

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
func (s SDP) Codec(name string) (Codec, bool) { return sdp.Media{Codecs: s.Codecs}.Codec(name) }

// CodecNames returns the codec names in order, e.g. [PCMU PCMA telephone-event].
func (s SDP) CodecNames() []string {
	out := make([]string, 0, len(s.Codecs))
	for _, c := range s.Codecs {
		out = append(out, c.Name)
	}
	return out
}

var errNoAudio = errors.New("no m=audio line")

// ParseSDP parses the audio description of body with sdp.Read. It returns
// sdp.Read's error naming the first malformed line, and an error for a
// body without an m=audio line or without a connection address.
func ParseSDP(body string) (SDP, error) {
	d, err := sdp.Read(body)
	if err != nil {
		return SDP{}, err
	}
	m, ok := d.Audio()
	if !ok {
		return SDP{}, errNoAudio
	}
	if m.Addr == "" {
		return SDP{}, errors.New("sdp: no connection address")
	}
	version, _ := strconv.ParseUint(d.Version, 10, 64)
	return SDP{SessionID: d.SessionID, Version: version, Addr: m.Addr, Port: m.Port, Proto: m.Proto,
		Codecs: m.Codecs, Direction: string(m.Direction), Ptime: m.Ptime}, nil
}

// knownCodecs are the codecs a phone can offer by name (WithCodecs).
var knownCodecs = map[string]Codec{
	"pcmu":            staticCodec(sdp.PayloadPCMU),
	"pcma":            staticCodec(sdp.PayloadPCMA),
	"g722":            staticCodec(9),
	"g729":            staticCodec(18),
	"telephone-event": {PT: 101, Name: sdp.TelephoneEvent, Rate: 8000, Fmtp: sdp.TelephoneEventFmtp},
}

// staticCodec returns the codec of an RFC 3551 static payload type.
func staticCodec(pt uint8) Codec {
	c, _ := sdp.StaticCodec(pt)
	return c
}

// defaultCodecs is what a phone offers and accepts unless told otherwise.
var defaultCodecs = []string{sdp.PCMU, sdp.PCMA, sdp.TelephoneEvent}

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
			if strings.EqualFold(c.Name, sdp.TelephoneEvent) {
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
func mirror(dir string) string { return string(sdp.Direction(dir).Mirror()) }

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
		fmt.Fprintf(&b, "a=rtpmap:%s\r\n", c.Rtpmap())
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
