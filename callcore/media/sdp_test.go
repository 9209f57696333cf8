package media

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	pionsdp "github.com/pion/sdp/v3"

	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/callcore/sdp"
)

// The bus vocabulary's directions (events, which may import no layer's
// package) are the SDP attributes of callcore/sdp.
func TestDirectionsAgreeWithEvents(t *testing.T) {
	for _, tc := range []struct {
		bus string
		sdp sdp.Direction
	}{
		{events.MediaSendRecv, sdp.SendRecv}, {events.MediaSendOnly, sdp.SendOnly},
		{events.MediaRecvOnly, sdp.RecvOnly}, {events.MediaInactive, sdp.Inactive},
	} {
		t.Run("dir="+tc.bus, func(t *testing.T) {
			if string(tc.sdp) != tc.bus {
				t.Fatalf("events says %q, sdp %q", tc.bus, tc.sdp)
			}
		})
	}
}

func TestAnswerSDPIPv6(t *testing.T) {
	offer := "v=0\r\no=- 1 1 IN IP6 2001:db8::5\r\ns=-\r\nc=IN IP6 2001:db8::5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n"
	a, err := negotiateAnswer(offer, events.MediaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if a.remote.address != "2001:db8::5" || a.codec != sdp.PCMA {
		t.Fatalf("answer plan %+v", a)
	}
	text, err := a.sdp(origin{ip: netip.MustParseAddr("2001:db8::1"), id: 7, version: 1}, 20000)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"o=callbus 7 1 IN IP6 2001:db8::1\r\n", "c=IN IP6 2001:db8::1\r\n",
		"m=audio 20000 RTP/AVP 8\r\n", "a=rtpmap:8 PCMA/8000\r\n", "a=ptime:20\r\n", "a=sendrecv\r\n"} {
		if !strings.Contains(text, want) {
			t.Fatalf("answer lacks %q:\n%s", want, text)
		}
	}
}

func TestAnswerDirection(t *testing.T) {
	const (
		sr = sdp.SendRecv
		so = sdp.SendOnly
		ro = sdp.RecvOnly
		in = sdp.Inactive
	)
	cases := []struct{ offered, ours, want sdp.Direction }{
		{sr, sr, sr}, {so, sr, ro}, {ro, sr, so}, {in, sr, in},
		{sr, so, so}, {sr, ro, ro}, {sr, in, in},
		{so, so, in}, {ro, ro, in}, {so, ro, ro}, {ro, so, so},
	}
	for _, c := range cases {
		t.Run("offer="+string(c.offered)+"/ours="+string(c.ours), func(t *testing.T) {
			if got := answerDirection(c.offered, c.ours); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

// FuzzAnswer feeds arbitrary offers to the offer/answer function. Whatever
// it accepts must give an answer that pion parses, with one m= line per
// offered one and exactly one accepted audio stream on our port, carrying
// the chosen codec; whatever it refuses must be refused with a code.
func FuzzAnswer(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n")
	f.Add("v=0\no=- 1 1 IN IP4 192.0.2.1\nt=0 0\nc=IN IP4 192.0.2.1\nm=audio 4000 RTP/AVP 8\na=sendonly\n")
	f.Add("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=video 1 RTP/AVP 96\r\nm=audio 0 RTP/AVP 0\r\n")
	f.Add("hello")
	origin := origin{ip: netip.MustParseAddr("192.0.2.10"), id: 1, version: 1}
	f.Fuzz(func(t *testing.T, offer string) {
		a, err := negotiateAnswer(offer, events.MediaConfig{})
		if err != nil {
			var me *mediaError
			if !errors.As(err, &me) || me.code != events.MediaErrIncompatibleSDP {
				t.Fatalf("refusal without the incompatible_sdp code: %v", err)
			}
			return
		}
		text, err := a.sdp(origin, 20000)
		if err != nil {
			t.Fatal(err)
		}
		var sd pionsdp.SessionDescription
		if err := sd.UnmarshalString(text); err != nil {
			t.Fatalf("pion refuses our answer: %v\n%s", err, text)
		}
		if len(sd.MediaDescriptions) != len(a.offer.Media) {
			t.Fatalf("%d m= lines for an offer of %d:\n%s", len(sd.MediaDescriptions), len(a.offer.Media), text)
		}
		accepted := 0
		for i, md := range sd.MediaDescriptions {
			if md.MediaName.Port.Value == 0 {
				continue
			}
			accepted++
			if i != a.remote.index || md.MediaName.Port.Value != 20000 || md.MediaName.Media != "audio" {
				t.Fatalf("m= line %d accepted wrongly:\n%s", i, text)
			}
		}
		if accepted != 1 {
			t.Fatalf("%d accepted streams:\n%s", accepted, text)
		}
		d, err := sdp.Parse(text)
		if err != nil {
			t.Fatalf("our answer does not parse: %v\n%s", err, text)
		}
		back, err := readAudio(d, true)
		if err != nil || len(back.formats) == 0 || back.formats[0].Name != a.codec || back.address != "192.0.2.10" {
			t.Fatalf("our answer reads back as %+v, %v:\n%s", back, err, text)
		}
	})
}
