package session

import (
	"strings"
	"testing"
)

var fuzzDirections = []string{"sendrecv", "sendonly", "recvonly", "inactive"}

// FuzzRewriteDirection feeds the rewriter any text (our own SDP, but built
// by media from a remote offer) and checks its promises: it never panics;
// on success every media section (or the session, without media) carries
// exactly one direction attribute, the requested one; the o= version is
// one higher; every other line is kept, in order; and rewriting again
// changes nothing but the version.
func FuzzRewriteDirection(f *testing.F) {
	f.Add(crlfSDP, uint8(1))
	f.Add(remoteOffer, uint8(3))
	f.Add("v=0\no=a 1 9 IN IP4 h\na=recvonly\nm=audio 1 RTP/AVP 0\nm=video 2 RTP/AVP 96\na=sendrecv\na=inactive\n", uint8(0))
	f.Fuzz(func(t *testing.T, sdp string, d uint8) {
		dir := fuzzDirections[int(d)%len(fuzzDirections)]
		out, err := rewriteDirection(sdp, dir)
		if err != nil {
			return
		}
		in, got := splitSDP(sdp), splitSDP(out)
		first := got.firstMedia()
		dirs, sections := 0, 0
		for i, l := range got.lines {
			if strings.HasPrefix(l, "m=") {
				if i > first && dirs != 1 {
					t.Fatalf("a media section has %d direction attributes:\n%q", dirs, out)
				}
				sections++
				dirs = 0
			}
			if dl := directionOf(l); dl != "" {
				if dl != dir {
					t.Fatalf("direction %s left, want only %s:\n%q", dl, dir, out)
				}
				dirs++
			}
		}
		if dirs != 1 {
			t.Fatalf("the last section (or the session) has %d direction attributes:\n%q", dirs, out)
		}
		if sections > 0 {
			for _, l := range got.lines[:first] {
				if directionOf(l) != "" {
					t.Fatalf("a session-level direction is left beside media sections:\n%q", out)
				}
			}
		}
		if sdpDirection(out) != dir {
			t.Fatalf("sdpDirection = %s, want %s", sdpDirection(out), dir)
		}
		if !equalLines(kept(in), kept(got)) {
			t.Fatalf("other lines changed:\nin  %q\nout %q", kept(in), kept(got))
		}
		vin, vout := version(in), version(got)
		if vout != incDecimal(vin) {
			t.Fatalf("o= version %s → %s, want one more", vin, vout)
		}
		again, err := rewriteDirection(out, dir)
		if err != nil {
			t.Fatalf("rewriting the result: %v", err)
		}
		if a := splitSDP(again); !equalLines(withoutOrigin(a), withoutOrigin(got)) || version(a) != incDecimal(vout) {
			t.Fatalf("rewriting again changed more than the version:\n%q\n%q", out, again)
		}
	})
}

// kept returns the lines that the rewriter must keep as they are: all but
// direction attributes and the o= line, with a session-level o= found the
// way the rewriter finds it.
func kept(t sdpText) []string {
	origin := originIndex(t)
	var out []string
	for i, l := range t.lines {
		if i != origin && directionOf(l) == "" {
			out = append(out, l)
		}
	}
	return out
}

func withoutOrigin(t sdpText) []string {
	origin := originIndex(t)
	var out []string
	for i, l := range t.lines {
		if i != origin {
			out = append(out, l)
		}
	}
	return out
}

func originIndex(t sdpText) int {
	first := t.firstMedia()
	for i := 0; i < first; i++ {
		if strings.HasPrefix(t.lines[i], "o=") {
			return i
		}
	}
	return -1
}

func version(t sdpText) string {
	i := originIndex(t)
	if i < 0 {
		return ""
	}
	if f := strings.Fields(t.lines[i][2:]); len(f) == 6 {
		return f[2]
	}
	return ""
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzReadSDP feeds the readers of a remote SDP (direction, RTP endpoint,
// codec) any text: they never panic, and the direction is always one of
// the four.
func FuzzReadSDP(f *testing.F) {
	f.Add(remoteOffer)
	f.Add(remoteAnswer)
	f.Add("v=0\r\nc=IN IP6 ::\r\nm=audio 1/2 RTP/AVP\r\na=rtpmap:\r\n")
	f.Fuzz(func(t *testing.T, sdp string) {
		if d := sdpDirection(sdp); !validDirection(d) {
			t.Fatalf("sdpDirection = %q", d)
		}
		_ = rtpEndpoint(sdp)
		_ = codecOf(sdp)
		_ = hasMedia(sdp)
	})
}

// FuzzURI feeds the URI readers (From/To header values, command fields)
// any text: they never panic, and a valid URI has a scheme and no space.
func FuzzURI(f *testing.F) {
	f.Add("sip:bob@example.com:5060;transport=tcp")
	f.Add(`"Echo" <sips:echo@[::1]>;tag=1`)
	f.Fuzz(func(t *testing.T, u string) {
		_ = uriUser(u)
		if validSIPURI(u) && (strings.ContainsAny(u, " \r\n<>") || !strings.HasPrefix(strings.ToLower(u), "sip")) {
			t.Fatalf("validSIPURI(%q) = true", u)
		}
	})
}
