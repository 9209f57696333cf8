package sdp

import (
	"net"
	"slices"
	"strings"
	"testing"

	pionsdp "github.com/pion/sdp/v3"
)

var fuzzDirections = []Direction{SendRecv, SendOnly, RecvOnly, Inactive}

// FuzzRead feeds the lenient reader any text (a far end's SDP): it never
// panics, reads one section per m= line, and what it reads is in range.
func FuzzRead(f *testing.F) {
	f.Add(offer)
	f.Add(answer)
	f.Add("v=0\r\nc=IN IP6 ::\r\nm=audio 1/2 RTP/AVP\r\na=rtpmap:\r\n")
	f.Fuzz(func(t *testing.T, body string) {
		d, _ := Read(body)
		if !d.AudioDirection().Valid() {
			t.Fatalf("AudioDirection = %q", d.AudioDirection())
		}
		if d.Direction != "" && !d.Direction.Valid() {
			t.Fatalf("session direction %q", d.Direction)
		}
		sections := 0
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "m=") {
				sections++
			}
		}
		if len(d.Media) != sections {
			t.Fatalf("%d sections read for %d m= lines", len(d.Media), sections)
		}
		for _, m := range d.Media {
			if !m.Direction.Valid() || m.Port < -1 || m.Port > 65535 || len(m.Codecs) > len(m.Formats) {
				t.Fatalf("section read as %+v", m)
			}
			if e := m.Endpoint(); e != "" {
				if _, _, err := net.SplitHostPort(e); err != nil {
					t.Fatalf("Endpoint %q: %v", e, err)
				}
			}
			for _, c := range m.Codecs {
				if c.PT > 127 {
					t.Fatalf("payload type %d", c.PT)
				}
			}
		}
	})
}

// FuzzNormalise feeds the normaliser any text. Whatever it accepts it
// must accept again unchanged (it is idempotent), with CRLF line ends;
// and where pion/sdp parses the result, Parse succeeds and the lenient
// reader sees the same sections as pion does: that is what lets media read
// with Read what pion has checked.
func FuzzNormalise(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n")
	f.Add("v=0\no=- 1 1 IN IP4 192.0.2.1\nt=0 0\nc=IN IP4 192.0.2.1\nm=audio 4000 RTP/AVP 8\na=sendonly\n")
	f.Add("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=video 1 RTP/AVP 96\r\nm=audio 0 RTP/AVP 0\r\n")
	f.Add("hello")
	f.Fuzz(func(t *testing.T, raw string) {
		norm, err := Normalise(raw)
		if err != nil {
			return
		}
		again, err := Normalise(norm)
		if err != nil || again != norm {
			t.Fatalf("Normalise is not idempotent: %v\n%q\n%q", err, norm, again)
		}
		if !strings.HasPrefix(norm, "v=") || !strings.HasSuffix(norm, "\r\n") || strings.Count(norm, "\n") != strings.Count(norm, "\r\n") {
			t.Fatalf("normalised to %q", norm)
		}
		var sd pionsdp.SessionDescription
		if sd.UnmarshalString(norm) != nil {
			return
		}
		d, err := Parse(raw)
		if err != nil {
			t.Fatalf("Parse refuses what pion accepts: %v", err)
		}
		if len(d.Media) != len(sd.MediaDescriptions) {
			t.Fatalf("%d sections read, pion has %d:\n%q", len(d.Media), len(sd.MediaDescriptions), norm)
		}
		for i, md := range sd.MediaDescriptions {
			m := d.Media[i]
			conn := md.ConnectionInformation
			if conn == nil {
				conn = sd.ConnectionInformation
			}
			addr := ""
			if conn != nil && conn.Address != nil {
				addr, _, _ = strings.Cut(conn.Address.Address, "/")
			}
			if m.Type != md.MediaName.Media || m.Port != md.MediaName.Port.Value || m.Addr != addr ||
				m.Proto != strings.Join(md.MediaName.Protos, "/") || !slices.Equal(m.Formats, md.MediaName.Formats) {
				t.Fatalf("section %d read as %+v, pion has %+v (address %q):\n%q", i, m, md.MediaName, addr, norm)
			}
		}
	})
}

// FuzzRewriteDirection feeds the direction rewriters any text (our own
// SDP, but built by media from a remote offer) and checks their promises:
// they never panic; on success every media section (or the session,
// without media) carries exactly one direction attribute — the requested
// one for SetDirection, the old one limited by the requested one for
// LimitDirection —; BumpVersion makes the o= version one higher; every
// other line is kept, in order; and rewriting again changes nothing but
// the version.
func FuzzRewriteDirection(f *testing.F) {
	f.Add(crlfSDP, uint8(1))
	f.Add(offer, uint8(3))
	f.Add("v=0\no=a 1 9 IN IP4 h\na=recvonly\nm=audio 1 RTP/AVP 0\nm=video 2 RTP/AVP 96\na=sendrecv\na=inactive\n", uint8(0))
	f.Fuzz(func(t *testing.T, body string, d uint8) {
		dir := fuzzDirections[int(d)%len(fuzzDirections)]
		before, _ := Read(body)
		limited, err := LimitDirection(body, dir)
		if err != nil {
			t.Fatal(err)
		}
		checkOneDirection(t, limited, func(i int) Direction {
			if i < 0 {
				return or(before.Direction, SendRecv).Intersect(dir)
			}
			return before.Media[i].Direction.Intersect(dir)
		})
		if !slices.Equal(kept(splitText(body)), kept(splitText(limited))) {
			t.Fatalf("LimitDirection changed other lines:\n%q\n%q", body, limited)
		}

		set, err := SetDirection(body, dir)
		if err != nil {
			t.Fatal(err)
		}
		checkOneDirection(t, set, func(int) Direction { return dir })
		out, err := BumpVersion(set)
		if err != nil {
			return
		}
		in, got := splitText(body), splitText(out)
		if !slices.Equal(kept(in), kept(got)) {
			t.Fatalf("other lines changed:\nin  %q\nout %q", kept(in), kept(got))
		}
		vin, vout := version(in), version(got)
		if vout != incDecimal(vin) {
			t.Fatalf("o= version %s → %s, want one more", vin, vout)
		}
		set2, err := SetDirection(out, dir)
		if err != nil {
			t.Fatalf("rewriting the result: %v", err)
		}
		again, err := BumpVersion(set2)
		if err != nil {
			t.Fatalf("bumping the result: %v", err)
		}
		if a := splitText(again); !slices.Equal(withoutOrigin(a), withoutOrigin(got)) || version(a) != incDecimal(vout) {
			t.Fatalf("rewriting again changed more than the version:\n%q\n%q", out, again)
		}
	})
}

// checkOneDirection fails unless every media section of body (or its
// session level, without media) has exactly one direction attribute,
// want(i) for section i (want(-1) for the session level), and Read agrees.
func checkOneDirection(t *testing.T, body string, want func(section int) Direction) {
	t.Helper()
	dirs := map[int]int{} // direction attributes per section, -1 the session level
	section := -1
	for _, l := range splitText(body).lines {
		if strings.HasPrefix(l, "m=") {
			section++
		}
		if dl := directionOf(l); dl != "" {
			if w := want(section); dl != w {
				t.Fatalf("section %d has direction %s, want %s:\n%q", section, dl, w, body)
			}
			dirs[section]++
		}
	}
	if section < 0 && dirs[-1] != 1 {
		t.Fatalf("the session level (no media) has %d direction attributes:\n%q", dirs[-1], body)
	}
	if section >= 0 && dirs[-1] != 0 {
		t.Fatalf("a session-level direction is left beside media sections:\n%q", body)
	}
	for i := 0; i <= section; i++ {
		if dirs[i] != 1 {
			t.Fatalf("section %d has %d direction attributes:\n%q", i, dirs[i], body)
		}
	}
	d, _ := Read(body)
	for i, m := range d.Media {
		if m.Direction != want(i) {
			t.Fatalf("Read: section %d is %s, want %s:\n%q", i, m.Direction, want(i), body)
		}
	}
}

// kept returns the lines that the rewriters must keep as they are: all but
// direction attributes and the session-level o= line.
func kept(t text) []string {
	origin := t.origin()
	var out []string
	for i, l := range t.lines {
		if i != origin && directionOf(l) == "" {
			out = append(out, l)
		}
	}
	return out
}

func withoutOrigin(t text) []string {
	origin := t.origin()
	var out []string
	for i, l := range t.lines {
		if i != origin {
			out = append(out, l)
		}
	}
	return out
}

func version(t text) string {
	i := t.origin()
	if i < 0 {
		return ""
	}
	if f := strings.Fields(t.lines[i][2:]); len(f) == 6 {
		return f[2]
	}
	return ""
}
