package sdp

import (
	"fmt"
	"strconv"
	"strings"
)

// Encoding names of the codecs callbus negotiates, as RFC 3551 and
// RFC 4733 spell them in a=rtpmap.
const (
	PCMU           = "PCMU"
	PCMA           = "PCMA"
	TelephoneEvent = "telephone-event"
)

// Static payload types of G.711 (RFC 3551 §6).
const (
	PayloadPCMU uint8 = 0
	PayloadPCMA uint8 = 8
)

// TelephoneEventFmtp is the a=fmtp of telephone-event for DTMF: the
// events 0-9, *, #, A-D and flash (RFC 4733 §3.2).
const TelephoneEventFmtp = "0-16"

// Codec is one RTP payload format of an m= line.
type Codec struct {
	PT       uint8
	Name     string // the encoding name as written ("PCMU", "telephone-event"…); "" when unknown
	Rate     int    // the clock rate in Hz; 0 when not given
	Channels int    // the encoding parameters of audio; 0 when not given (one channel)
	Fmtp     string // the a=fmtp parameters, "" when none
}

// Rtpmap returns the value of c's a=rtpmap attribute, e.g.
// "101 telephone-event/8000".
func (c Codec) Rtpmap() string {
	s := strconv.Itoa(int(c.PT)) + " " + c.Name + "/" + strconv.Itoa(c.Rate)
	if c.Channels > 0 {
		s += "/" + strconv.Itoa(c.Channels)
	}
	return s
}

// staticCodecs are the audio payload types of RFC 3551 §6 (table 4),
// which need no a=rtpmap.
var staticCodecs = [...]Codec{
	{PT: 0, Name: PCMU, Rate: 8000},
	{PT: 3, Name: "GSM", Rate: 8000},
	{PT: 4, Name: "G723", Rate: 8000},
	{PT: 5, Name: "DVI4", Rate: 8000},
	{PT: 6, Name: "DVI4", Rate: 16000},
	{PT: 7, Name: "LPC", Rate: 8000},
	{PT: 8, Name: PCMA, Rate: 8000},
	{PT: 9, Name: "G722", Rate: 8000},
	{PT: 10, Name: "L16", Rate: 44100, Channels: 2},
	{PT: 11, Name: "L16", Rate: 44100},
	{PT: 12, Name: "QCELP", Rate: 8000},
	{PT: 13, Name: "CN", Rate: 8000},
	{PT: 14, Name: "MPA", Rate: 90000},
	{PT: 15, Name: "G728", Rate: 8000},
	{PT: 16, Name: "DVI4", Rate: 11025},
	{PT: 17, Name: "DVI4", Rate: 22050},
	{PT: 18, Name: "G729", Rate: 8000},
}

// StaticCodec returns the audio codec of static payload type pt
// (RFC 3551 §6), and false for a type that is dynamic, unassigned or not
// audio.
func StaticCodec(pt uint8) (Codec, bool) {
	for _, c := range staticCodecs {
		if c.PT == pt {
			return c, true
		}
	}
	return Codec{}, false
}

// StaticPayloadType returns the static payload type of the audio codec
// called name (case-insensitive) at clock rate rate, and false when it has
// none.
func StaticPayloadType(name string, rate int) (uint8, bool) {
	for _, c := range staticCodecs {
		if strings.EqualFold(c.Name, name) && c.Rate == rate {
			return c.PT, true
		}
	}
	return 0, false
}

// ParseRtpmap parses the value of an a=rtpmap attribute,
// "<payload type> <encoding name>/<clock rate>[/<encoding parameters>]"
// (RFC 4566 §6). It returns an error for a value without a payload type
// of 0-127 followed by a space; and, with a Codec that carries only the
// payload type, for an encoding that is not a name, a decimal clock rate
// and at most one decimal parameter. A missing clock rate is not an
// error: Rate is then 0.
func ParseRtpmap(value string) (Codec, error) {
	c, _, err := parseRtpmap(value)
	return c, err
}

// parseRtpmap is ParseRtpmap, also reporting whether the payload type
// could be read.
func parseRtpmap(value string) (c Codec, ptOK bool, err error) {
	ptText, enc, ok := strings.Cut(strings.TrimSpace(value), " ")
	pt, err := strconv.ParseUint(ptText, 10, 7)
	if !ok || err != nil {
		return Codec{}, false, fmt.Errorf("rtpmap %.40q: no payload type 0-127 and encoding", value)
	}
	c.PT = uint8(pt)
	bad := func() (Codec, bool, error) {
		return Codec{PT: c.PT}, true, fmt.Errorf("rtpmap %.40q: encoding is not name/rate[/channels]", value)
	}
	parts := strings.Split(strings.TrimSpace(enc), "/")
	if parts[0] == "" || len(parts) > 3 {
		return bad()
	}
	c.Name = parts[0]
	if len(parts) > 1 {
		if c.Rate, err = decimal(parts[1]); err != nil {
			return bad()
		}
	}
	if len(parts) > 2 {
		if c.Channels, err = decimal(parts[2]); err != nil {
			return bad()
		}
	}
	return c, true, nil
}

// decimal parses an unsigned decimal of at most nine digits.
func decimal(s string) (int, error) {
	if !isDecimal(s) || len(s) > 9 {
		return 0, fmt.Errorf("%q is not a decimal", s)
	}
	return strconv.Atoi(s)
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
