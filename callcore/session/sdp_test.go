package session

import (
	"errors"
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore/sdp"
)

// The session's readers of SDP, on the SDP it meets (callcore/sdp tests
// the cases).
func TestSDPReaders(t *testing.T) {
	for _, tc := range []struct {
		name, sdp, endpoint, codec string
		dir                        sdp.Direction
		media                      bool
	}{
		{"sdp=remote-offer", remoteOffer, "192.0.2.10:49170", "PCMU", sdp.SendRecv, true},
		{"sdp=remote-answer", remoteAnswer, "192.0.2.20:30000", "PCMA", sdp.SendRecv, true},
		{"sdp=old-hold", "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 1 RTP/AVP 8\r\n", "0.0.0.0:1", "PCMA", sdp.SendOnly, true},
		{"sdp=no-media", "v=0\r\no=a 1 1 IN IP4 h\r\na=inactive\r\n", "", "", sdp.Inactive, false},
		{"sdp=empty", "", "", "", sdp.SendRecv, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rtpEndpoint(tc.sdp); got != tc.endpoint {
				t.Errorf("rtpEndpoint = %q, want %q", got, tc.endpoint)
			}
			if got := codecOf(tc.sdp); got != tc.codec {
				t.Errorf("codecOf = %q, want %q", got, tc.codec)
			}
			if got := sdpDirection(tc.sdp); got != tc.dir {
				t.Errorf("sdpDirection = %s, want %s", got, tc.dir)
			}
			if got := hasMedia(tc.sdp); got != tc.media {
				t.Errorf("hasMedia = %v, want %v", got, tc.media)
			}
		})
	}
}

func TestReoffer(t *testing.T) {
	got, err := reoffer(mediaAnswer, sdp.SendOnly)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "o=callbus 1000 2 IN IP4") || sdpDirection(got) != sdp.SendOnly || strings.Contains(got, "a=sendrecv") {
		t.Fatalf("reoffer:\n%s", got)
	}
	if _, err := reoffer("v=0\r\nm=audio 1 RTP/AVP 0\r\n", sdp.SendOnly); !errors.Is(err, sdp.ErrNoOrigin) {
		t.Fatalf("reoffer without o=: %v", err)
	}
}
