package media

import (
	"fmt"
	"strings"

	"github.com/callbus/callbus/callcore/sdp"
)

// audioLine is what media reads from the audio m= line of an SDP.
type audioLine struct {
	index     int    // of the m= line among the description's
	address   string // the connection address (c=), media level first
	port      int
	formats   []sdp.Codec // the formats media knows, in m= order, by their canonical names
	direction sdp.Direction
}

// readAudio finds the first audio stream of d that media can use: RTP/AVP
// with a port other than 0. With active false, a disabled (port 0) stream
// is taken too: that is how media reads its own local SDP. It returns an
// error naming why no stream fits.
func readAudio(d sdp.Description, active bool) (audioLine, error) {
	var disabled, otherProto string
	for i, m := range d.Media {
		if m.Type != "audio" {
			continue
		}
		if m.Proto != "RTP/AVP" {
			otherProto = m.Proto
			continue
		}
		if m.Port == 0 && active {
			disabled = "the audio stream is disabled (port 0)"
			continue
		}
		if m.Addr == "" {
			return audioLine{}, fmt.Errorf("the audio stream has no connection address (c=)")
		}
		return audioLine{
			index:     i,
			address:   m.Addr,
			port:      m.Port,
			formats:   knownFormats(m),
			direction: m.Direction,
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

// knownFormats returns the formats of m that media supports, in m= order:
// PCMU, PCMA and telephone-event at 8000 Hz, one channel, under their
// canonical names.
func knownFormats(m sdp.Media) []sdp.Codec {
	var out []sdp.Codec
	for _, c := range m.Codecs {
		if c.Rate != 8000 || c.Channels > 1 {
			continue
		}
		for _, n := range []string{sdp.PCMU, sdp.PCMA, sdp.TelephoneEvent} {
			if strings.EqualFold(c.Name, n) {
				out = append(out, sdp.Codec{PT: c.PT, Name: n, Rate: 8000})
			}
		}
	}
	return out
}
