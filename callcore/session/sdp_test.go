package session

import (
	"errors"
	"strings"
	"testing"
)

const crlfSDP = "v=0\r\no=- 42 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\na=ptime:20\r\n"

func TestRewriteDirection(t *testing.T) {
	for _, tc := range []struct {
		name, in, dir, want string
	}{
		{"case=in-place", crlfSDP, "sendonly",
			"v=0\r\no=- 42 8 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
				"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\na=ptime:20\r\n"},
		{"case=none-in-section", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", "inactive",
			"v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=inactive\r\n"},
		{"case=session-level", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\na=recvonly\r\nm=audio 1 RTP/AVP 0\r\n", "sendrecv",
			"v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv\r\n"},
		{"case=two-sections/duplicates", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv\r\na=recvonly\r\n" +
			"m=video 2 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n", "sendonly",
			"v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n" +
				"m=video 2 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n"},
		{"case=lf-only", "v=0\no=a 1 1 IN IP4 h\ns=-\nm=audio 1 RTP/AVP 0\na=sendrecv\n", "sendonly",
			"v=0\no=a 1 2 IN IP4 h\ns=-\nm=audio 1 RTP/AVP 0\na=sendonly\n"},
		{"case=no-final-eol", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv", "sendonly",
			"v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=sendonly"},
		{"case=no-media", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\na=sendrecv\r\na=tool:x\r\n", "inactive",
			"v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\na=inactive\r\na=tool:x\r\n"},
		{"case=version-carry", "v=0\r\no=a 1 999 IN IP4 h\r\ns=-\r\n", "sendonly",
			"v=0\r\no=a 1 1000 IN IP4 h\r\ns=-\r\na=sendonly\r\n"},
		{"case=version-past-uint64", "v=0\r\no=a 1 18446744073709551615 IN IP4 h\r\ns=-\r\n", "sendonly",
			"v=0\r\no=a 1 18446744073709551616 IN IP4 h\r\ns=-\r\na=sendonly\r\n"},
		{"case=trailing-space", "v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv \r\n", "sendonly",
			"v=0\r\no=a 1 2 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rewriteDirection(tc.in, tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
			if d := sdpDirection(got); d != tc.dir {
				t.Fatalf("direction of the result %s, want %s", d, tc.dir)
			}
		})
	}
}

func TestSetDirectionKeepsVersion(t *testing.T) {
	got, err := setDirection(crlfSDP, "sendonly")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "o=- 42 7 IN IP4") || sdpDirection(got) != "sendonly" {
		t.Fatalf("got %q", got)
	}
}

func TestRewriteDirectionErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, dir string
		want          error
	}{
		{"sdp=empty", "", "sendonly", errNoOrigin},
		{"origin=missing", "v=0\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\n", "sendonly", errNoOrigin},
		{"origin=five-fields", "v=0\r\no=a 1 1 IN IP4\r\n", "sendonly", errNoOrigin},
		{"origin=version-not-numeric", "v=0\r\no=a 1 x1 IN IP4 h\r\n", "sendonly", errNoOrigin},
		{"origin=after-media", "v=0\r\nm=audio 1 RTP/AVP 0\r\no=a 1 1 IN IP4 h\r\n", "sendonly", errNoOrigin},
		{"dir=bogus", crlfSDP, "hold", errBadDirection},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := rewriteDirection(tc.in, tc.dir); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSDPDirection(t *testing.T) {
	for _, tc := range []struct{ name, sdp, want string }{
		{"attr=media", "v=0\r\na=sendrecv\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n", "sendonly"},
		{"attr=session", "v=0\r\na=inactive\r\nm=audio 1 RTP/AVP 0\r\n", "inactive"},
		{"attr=none", "v=0\r\nm=audio 1 RTP/AVP 0\r\n", "sendrecv"},
		{"c=0.0.0.0", "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 1 RTP/AVP 0\r\n", "sendonly"},
		{"c=0.0.0.0/attr=recvonly", "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 1 RTP/AVP 0\r\na=recvonly\r\n", "recvonly"},
		{"section=audio-after-video", "v=0\r\nm=video 2 RTP/AVP 96\r\na=inactive\r\nm=audio 1 RTP/AVP 0\r\na=recvonly\r\n", "recvonly"},
		{"sdp=empty", "", "sendrecv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sdpDirection(tc.sdp); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestDirectionAlgebra(t *testing.T) {
	for _, tc := range []struct{ offer, mirror string }{
		{"sendrecv", "sendrecv"}, {"sendonly", "recvonly"}, {"recvonly", "sendonly"}, {"inactive", "inactive"},
	} {
		if got := mirrorDirection(tc.offer); got != tc.mirror {
			t.Errorf("mirror(%s) = %s, want %s", tc.offer, got, tc.mirror)
		}
	}
	for _, tc := range []struct{ a, b, want string }{
		{"sendrecv", "sendrecv", "sendrecv"}, {"sendonly", "sendrecv", "sendonly"},
		{"sendonly", "recvonly", "inactive"}, {"recvonly", "sendrecv", "recvonly"},
		{"sendrecv", "inactive", "inactive"},
	} {
		if got := intersectDirection(tc.a, tc.b); got != tc.want {
			t.Errorf("intersect(%s, %s) = %s, want %s", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestRTPEndpointAndCodec(t *testing.T) {
	for _, tc := range []struct{ name, sdp, endpoint, codec string }{
		{"sdp=fixture", remoteAnswer, "192.0.2.20:30000", "PCMA"},
		{"c=media-level", "v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5004 RTP/AVP 0\r\nc=IN IP4 2.2.2.2\r\n", "2.2.2.2:5004", "PCMU"},
		{"c=ipv6", "v=0\r\nc=IN IP6 2001:db8::5\r\nm=audio 5004 RTP/AVP 8\r\n", "[2001:db8::5]:5004", "PCMA"},
		{"codec=dynamic", "v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5004/2 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n", "1.1.1.1:5004", "opus"},
		{"c=none", "v=0\r\nm=audio 5004 RTP/AVP 0\r\n", "", "PCMU"},
		{"m=none", "v=0\r\nc=IN IP4 1.1.1.1\r\n", "", ""},
		{"codec=unknown-static", "v=0\r\nm=audio 5004 RTP/AVP 34\r\n", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rtpEndpoint(tc.sdp); got != tc.endpoint {
				t.Errorf("rtpEndpoint = %q, want %q", got, tc.endpoint)
			}
			if got := codecOf(tc.sdp); got != tc.codec {
				t.Errorf("codecOf = %q, want %q", got, tc.codec)
			}
		})
	}
}

func TestURIs(t *testing.T) {
	for _, tc := range []struct {
		u     string
		valid bool
	}{
		{"sip:bob@example.com", true}, {"sips:bob@example.com:5061", true}, {"SIP:Bob@Example.COM", true},
		{"sip:example.com", true}, {"sip:[::1]:5060;transport=tcp", true}, {"sip:a@b?Subject=x", true},
		{"sip:", false}, {"sip:@example.com", false}, {"sip:bob@", false}, {"sip:bob@exa mple.com", false},
		{"sip:bob@example.com:0", false}, {"sip:bob@example.com:x", false}, {"sip:[::1", false},
		{"<sip:bob@example.com>", false}, {"tel:+1555", false}, {"bob@example.com", false},
		{"sip:bob@-example.com", false}, {"sip:bob@[zz::1]", false}, {"sip:bob@example.com\r\n", false},
	} {
		if got := validSIPURI(tc.u); got != tc.valid {
			t.Errorf("validSIPURI(%q) = %v, want %v", tc.u, got, tc.valid)
		}
	}
	for _, tc := range []struct{ v, user string }{
		{`"Echo" <sip:echo@host>;tag=1`, "echo"}, {"sip:Echo@host", "echo"}, {"<sips:tone;x=1@host>", "tone"},
		{"sip:host", ""}, {"<tel:+1555>", ""}, {"", ""}, {"<sip:echo@host", "echo"},
	} {
		if got := uriUser(tc.v); got != tc.user {
			t.Errorf("uriUser(%q) = %q, want %q", tc.v, got, tc.user)
		}
	}
}
