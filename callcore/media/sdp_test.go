package media

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"

	"github.com/callbus/callbus/callcore/events"
)

func TestNormalise(t *testing.T) {
	const tail = "m=audio 4000 RTP/AVP 0\r\n"
	cases := []struct {
		name    string
		in      string
		want    string // "" with wantErr
		wantErr string
	}{
		{name: "order=canonical", in: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" + tail,
			want: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" + tail},
		{name: "order=c-after-t", in: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nc=IN IP4 192.0.2.1\r\n" + tail,
			want: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" + tail},
		{name: "order=a-before-t/b-before-c", in: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=x\r\na=tool:y\r\nb=AS:64\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" + tail,
			want: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=x\r\nc=IN IP4 192.0.2.1\r\nb=AS:64\r\nt=0 0\r\na=tool:y\r\n" + tail},
		{name: "missing=s", in: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nt=0 0\r\n" + tail,
			want: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n" + tail},
		{name: "missing=t", in: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n" + tail,
			want: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n" + tail},
		{name: "line-ends=LF/blank-lines/trailing-blanks", in: "v=0\no=- 1 1 IN IP4 192.0.2.1 \n\ns=-\t\nt=0 0\nm=audio 4000 RTP/AVP 0",
			want: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n" + tail},
		{name: "repeated=e", in: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\ne=a@example.com\r\ne=b@example.com\r\nt=0 0\r\n",
			want: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\ne=a@example.com\r\nt=0 0\r\n"},
		{name: "repeat-times", in: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nr=7d 1h 0\r\nt=1 2\r\nr=7d 1h 0\r\nt=3 4\r\n",
			want: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=1 2\r\nr=7d 1h 0\r\nt=3 4\r\n"},
		{name: "media=a-before-c", in: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\nc=IN IP4 192.0.2.1\r\ni=x\r\ni=y\r\n",
			want: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\ni=x\r\nc=IN IP4 192.0.2.1\r\na=sendonly\r\n"},

		{name: "garbage=empty", in: "\r\n\r\n", wantErr: "empty"},
		{name: "garbage=no-v", in: "o=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n", wantErr: "v="},
		{name: "garbage=no-o", in: "v=0\r\ns=-\r\nt=0 0\r\n", wantErr: "o="},
		{name: "garbage=second-v", in: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\n", wantErr: "second v="},
		{name: "garbage=unknown-type", in: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nx=1\r\n", wantErr: "x="},
		{name: "garbage=session-line-in-media", in: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nt=0 0\r\n", wantErr: "t="},
		{name: "garbage=upper-case-type", in: "v=0\r\nO=- 1 1 IN IP4 192.0.2.1\r\n", wantErr: "type=value"},
		{name: "garbage=too-large", in: "v=0\r\n" + strings.Repeat("a=x\r\n", maxSDPSize/5+1), wantErr: "exceeds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := normalise(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got\n%q\nwant\n%q", got, c.want)
			}
			var sd sdp.SessionDescription
			if err := sd.UnmarshalString(got); err != nil {
				t.Fatalf("pion refuses the normalised SDP: %v", err)
			}
		})
	}
}

// Without normalising, pion refuses what phones send; with it, the parse
// succeeds. This keeps the normaliser honest should pion become lenient.
func TestPionIsStrict(t *testing.T) {
	raw := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nt=0 0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n"
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(raw); err == nil {
		t.Log("pion/sdp now accepts c= after t= and no s=; normalise may be simplified")
	}
	if _, err := parseSDP(raw); err != nil {
		t.Fatalf("parseSDP: %v", err)
	}
}

func TestAnswerSDPIPv6(t *testing.T) {
	offer := "v=0\r\no=- 1 1 IN IP6 2001:db8::5\r\ns=-\r\nc=IN IP6 2001:db8::5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n"
	a, err := negotiateAnswer(offer, events.MediaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if a.remote.address != "2001:db8::5" || a.codec != codecPCMA {
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
		sr = events.MediaSendRecv
		so = events.MediaSendOnly
		ro = events.MediaRecvOnly
		in = events.MediaInactive
	)
	cases := []struct{ offered, ours, want string }{
		{sr, sr, sr}, {so, sr, ro}, {ro, sr, so}, {in, sr, in},
		{sr, so, so}, {sr, ro, ro}, {sr, in, in},
		{so, so, in}, {ro, ro, in}, {so, ro, ro}, {ro, so, so},
	}
	for _, c := range cases {
		t.Run("offer="+c.offered+"/ours="+c.ours, func(t *testing.T) {
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
// normalise must be idempotent.
func FuzzAnswer(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n")
	f.Add("v=0\no=- 1 1 IN IP4 192.0.2.1\nt=0 0\nc=IN IP4 192.0.2.1\nm=audio 4000 RTP/AVP 8\na=sendonly\n")
	f.Add("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=video 1 RTP/AVP 96\r\nm=audio 0 RTP/AVP 0\r\n")
	f.Add("hello")
	origin := origin{ip: netip.MustParseAddr("192.0.2.10"), id: 1, version: 1}
	f.Fuzz(func(t *testing.T, offer string) {
		if n, err := normalise(offer); err == nil {
			n2, err := normalise(n)
			if err != nil || n2 != n {
				t.Fatalf("normalise is not idempotent: %v\n%q\n%q", err, n, n2)
			}
		}
		a, err := negotiateAnswer(offer, events.MediaConfig{})
		if err != nil {
			var me *mediaError
			if !errors.As(err, &me) || me.code != ErrorCodeIncompatibleSDP {
				t.Fatalf("refusal without the incompatible_sdp code: %v", err)
			}
			return
		}
		text, err := a.sdp(origin, 20000)
		if err != nil {
			t.Fatal(err)
		}
		var sd sdp.SessionDescription
		if err := sd.UnmarshalString(text); err != nil {
			t.Fatalf("pion refuses our answer: %v\n%s", err, text)
		}
		if len(sd.MediaDescriptions) != len(a.offer.MediaDescriptions) {
			t.Fatalf("%d m= lines for an offer of %d:\n%s", len(sd.MediaDescriptions), len(a.offer.MediaDescriptions), text)
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
		back, err := readAudio(&sd, true)
		if err != nil || len(back.formats) == 0 || back.formats[0].name != a.codec || back.address != "192.0.2.10" {
			t.Fatalf("our answer reads back as %+v, %v:\n%s", back, err, text)
		}
	})
}
