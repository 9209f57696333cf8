package sdp

import "testing"

func TestParseRtpmap(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Codec
		wantErr  bool
	}{
		{name: "codec=PCMU", in: "0 PCMU/8000", want: Codec{PT: 0, Name: "PCMU", Rate: 8000}},
		{name: "codec=telephone-event", in: "101 telephone-event/8000", want: Codec{PT: 101, Name: "telephone-event", Rate: 8000}},
		{name: "codec=opus/channels", in: "96 opus/48000/2", want: Codec{PT: 96, Name: "opus", Rate: 48000, Channels: 2}},
		{name: "blanks", in: " 8 PCMA/8000 ", want: Codec{PT: 8, Name: "PCMA", Rate: 8000}},
		{name: "rate=missing", in: "96 foo", want: Codec{PT: 96, Name: "foo"}},
		{name: "bad=no-encoding", in: "0", wantErr: true},
		{name: "bad=pt", in: "x PCMU/8000", wantErr: true},
		{name: "bad=pt-range", in: "128 PCMU/8000", wantErr: true},
		{name: "bad=empty", in: "", wantErr: true},
		{name: "bad=rate", in: "0 PCMU/fast", want: Codec{PT: 0}, wantErr: true},
		{name: "bad=channels", in: "0 PCMU/8000/one", want: Codec{PT: 0}, wantErr: true},
		{name: "bad=parts", in: "0 PCMU/8000/1/2", want: Codec{PT: 0}, wantErr: true},
		{name: "bad=name", in: "0 /8000", want: Codec{PT: 0}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRtpmap(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCodecRtpmap(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Codec
		want string
	}{
		{"codec=PCMA", Codec{PT: 8, Name: PCMA, Rate: 8000}, "8 PCMA/8000"},
		{"codec=opus", Codec{PT: 96, Name: "opus", Rate: 48000, Channels: 2}, "96 opus/48000/2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.Rtpmap(); got != tc.want {
				t.Fatalf("Rtpmap = %q, want %q", got, tc.want)
			}
			back, err := ParseRtpmap(tc.c.Rtpmap())
			if err != nil || back != tc.c {
				t.Fatalf("reads back as %+v, %v", back, err)
			}
		})
	}
}

func TestStaticCodecs(t *testing.T) {
	for _, tc := range []struct {
		name string
		pt   uint8
		rate int
	}{
		{PCMU, PayloadPCMU, 8000}, {PCMA, PayloadPCMA, 8000}, {"G722", 9, 8000}, {"G729", 18, 8000}, {"DVI4", 6, 16000},
	} {
		t.Run("codec="+tc.name, func(t *testing.T) {
			c, ok := StaticCodec(tc.pt)
			if !ok || c.Name != tc.name || c.Rate != tc.rate {
				t.Fatalf("StaticCodec(%d) = %+v, %v", tc.pt, c, ok)
			}
			if pt, ok := StaticPayloadType(tc.name, tc.rate); !ok || pt != tc.pt {
				t.Fatalf("StaticPayloadType = %d, %v", pt, ok)
			}
		})
	}
	for _, pt := range []uint8{1, 2, 19, 34, 96, 101, 127} {
		if c, ok := StaticCodec(pt); ok {
			t.Errorf("StaticCodec(%d) = %+v: not a static audio type", pt, c)
		}
	}
	if _, ok := StaticPayloadType(TelephoneEvent, 8000); ok {
		t.Error("telephone-event has a static payload type")
	}
	if pt, ok := StaticPayloadType("pcma", 8000); !ok || pt != PayloadPCMA {
		t.Error("StaticPayloadType is case-sensitive")
	}
}
