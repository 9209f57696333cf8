package sdp

import (
	"strings"
	"testing"

	pionsdp "github.com/pion/sdp/v3"
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
		{name: "garbage=too-large", in: "v=0\r\n" + strings.Repeat("a=x\r\n", MaxSize/5+1), wantErr: "exceeds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Normalise(c.in)
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
			var sd pionsdp.SessionDescription
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
	var sd pionsdp.SessionDescription
	if err := sd.UnmarshalString(raw); err == nil {
		t.Log("pion/sdp now accepts c= after t= and no s=; Normalise may be simplified")
	}
	d, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if m, ok := d.Audio(); !ok || m.Endpoint() != "192.0.2.1:4000" || m.Codecs[0].Name != PCMU {
		t.Fatalf("Parse read %+v", d)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"normalise=refuses", "hello", "type=value"},
		{"pion=refuses/media", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=voice 1 RTP/AVP 0\r\n", "parse SDP"},
		{"pion=refuses/origin", "v=0\r\no=- x 1 IN IP4 192.0.2.1\r\n", "parse SDP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one with %q", err, tc.want)
			}
		})
	}
}
