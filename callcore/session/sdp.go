package session

import "github.com/callbus/callbus/callcore/sdp"

// The session reads SDP leniently with callcore/sdp: it needs the media
// direction (hold), the RTP endpoint and the codec an answer chose, and it
// rewrites the direction of its own SDP to hold and resume. Full
// offer/answer is the media layer's (RFC 3264).

// reoffer returns our SDP body with every media direction set to d, as a
// new offer or answer: RFC 3264 §8 wants its o= version one higher. It
// returns sdp.ErrBadDirection or sdp.ErrNoOrigin.
func reoffer(body string, d sdp.Direction) (string, error) {
	s, err := sdp.SetDirection(body, d)
	if err != nil {
		return "", err
	}
	return sdp.BumpVersion(s)
}

// sdpDirection returns the direction of the audio stream body describes,
// an RFC 2543 hold (c=0.0.0.0) counting as sendonly.
func sdpDirection(body string) sdp.Direction {
	d, _ := sdp.Read(body)
	return d.AudioDirection()
}

// hasMedia reports whether body has a media section.
func hasMedia(body string) bool {
	d, _ := sdp.Read(body)
	return len(d.Media) > 0
}

// rtpEndpoint returns "ip:port" of the audio stream body describes, or "".
func rtpEndpoint(body string) string {
	d, _ := sdp.Read(body)
	m, _ := d.Audio()
	return m.Endpoint()
}

// codecOf returns the first codec of the audio stream body describes (the
// one an answer chose), or "" if unknown.
func codecOf(body string) string {
	d, _ := sdp.Read(body)
	if m, ok := d.Audio(); ok && len(m.Codecs) > 0 {
		return m.Codecs[0].Name
	}
	return ""
}
