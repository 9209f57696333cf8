package sdp

import (
	"errors"
	"strings"
	"testing"
)

const crlfSDP = "v=0\r\no=- 42 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\na=ptime:20\r\n"

// reoffer is what a hold or resume does: the direction set and the o=
// version bumped.
func reoffer(body string, d Direction) (string, error) {
	s, err := SetDirection(body, d)
	if err != nil {
		return "", err
	}
	return BumpVersion(s)
}

func TestSetDirectionAndBump(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		dir      Direction
		want     string
	}{
		{"case=in-place", crlfSDP, SendOnly,
			"v=0\r\no=- 42 8 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
				"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\na=ptime:20\r\n"},
		{"case=none-in-section", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", Inactive,
			"v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=inactive\r\n"},
		{"case=session-level", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\na=recvonly\r\nm=audio 1 RTP/AVP 0\r\n", SendRecv,
			"v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv\r\n"},
		{"case=two-sections/duplicates", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv\r\na=recvonly\r\n" +
			"m=video 2 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n", SendOnly,
			"v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n" +
				"m=video 2 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n"},
		{"case=lf-only", "v=0\no=a 1 1 IN IP4 h\ns=-\nm=audio 1 RTP/AVP 0\na=sendrecv\n", SendOnly,
			"v=0\no=a 1 2 IN IP4 h\ns=-\nm=audio 1 RTP/AVP 0\na=sendonly\n"},
		{"case=no-final-eol", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv", SendOnly,
			"v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=sendonly"},
		{"case=no-media", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\na=sendrecv\r\na=tool:x\r\n", Inactive,
			"v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\na=inactive\r\na=tool:x\r\n"},
		{"case=version-carry", "v=0\r\no=a 1 999 IN IP4 h\r\ns=-\r\n", SendOnly,
			"v=0\r\no=a 1 1000 IN IP4 h\r\ns=-\r\na=sendonly\r\n"},
		{"case=version-past-uint64", "v=0\r\no=a 1 18446744073709551615 IN IP4 h\r\ns=-\r\n", SendOnly,
			"v=0\r\no=a 1 18446744073709551616 IN IP4 h\r\ns=-\r\na=sendonly\r\n"},
		{"case=trailing-space", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv \r\n", SendOnly,
			"v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := reoffer(tc.in, tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
			if d, _ := Read(got); d.AudioDirection() != tc.dir {
				t.Fatalf("direction of the result %s, want %s", d.AudioDirection(), tc.dir)
			}
		})
	}
}

func TestSetDirectionKeepsVersion(t *testing.T) {
	got, err := SetDirection(crlfSDP, SendOnly)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := Read(got); !strings.Contains(got, "o=- 42 7 IN IP4") || d.AudioDirection() != SendOnly {
		t.Fatalf("got %q", got)
	}
}

func TestRewriteErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		dir      Direction
		want     error
	}{
		{"sdp=empty", "", SendOnly, ErrNoOrigin},
		{"origin=missing", "v=0\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\n", SendOnly, ErrNoOrigin},
		{"origin=five-fields", "v=0\r\no=a 1 1 IN IP4\r\n", SendOnly, ErrNoOrigin},
		{"origin=version-not-numeric", "v=0\r\no=a 1 x1 IN IP4 h\r\n", SendOnly, ErrNoOrigin},
		{"origin=after-media", "v=0\r\nm=audio 1 RTP/AVP 0\r\no=a 1 1 IN IP4 h\r\n", SendOnly, ErrNoOrigin},
		{"dir=bogus", crlfSDP, "hold", ErrBadDirection},
		{"dir=empty", crlfSDP, "", ErrBadDirection},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := reoffer(tc.in, tc.dir); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := LimitDirection(crlfSDP, "hold"); !errors.Is(err, ErrBadDirection) {
		t.Fatalf("LimitDirection err %v, want %v", err, ErrBadDirection)
	}
}

// A hold offer made from our last SDP (RFC 6337 §5.3): what sent goes
// sendonly, what did not goes inactive, and the version goes up.
func TestLimitDirectionHold(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"dir=sendrecv", "v=0\r\no=- 1 5 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv\r\n",
			"v=0\r\no=- 1 6 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n"},
		{"dir=sendonly", "v=0\r\no=- 1 5 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n",
			"v=0\r\no=- 1 6 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n"},
		{"dir=recvonly", "v=0\r\no=- 1 5 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=recvonly\r\n",
			"v=0\r\no=- 1 6 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=inactive\r\n"},
		{"dir=none", "v=0\r\no=- 1 5 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\nm=video 2 RTP/AVP 96\r\n",
			"v=0\r\no=- 1 6 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\nm=video 2 RTP/AVP 96\r\na=sendonly\r\n"},
		{"dir=none/line-ends=LF", "v=0\no=- 1 5 IN IP4 h\nm=audio 1 RTP/AVP 0\n",
			"v=0\no=- 1 6 IN IP4 h\nm=audio 1 RTP/AVP 0\na=sendonly\n"},
		{"dir=session-recvonly", "v=0\r\no=- 1 5 IN IP4 h\r\na=recvonly\r\nm=audio 1 RTP/AVP 0\r\nm=video 2 RTP/AVP 96\r\na=sendrecv\r\n",
			"v=0\r\no=- 1 6 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=inactive\r\nm=video 2 RTP/AVP 96\r\na=sendonly\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			held, err := LimitDirection(tc.in, SendOnly)
			if err != nil {
				t.Fatal(err)
			}
			got, err := BumpVersion(held)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
