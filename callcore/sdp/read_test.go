package sdp

import (
	"reflect"
	"strings"
	"testing"
)

const (
	// offer is a phone's hold offer with a second, video stream.
	offer = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n" +
		"a=fmtp:101 0-15\r\na=ptime:30\r\na=sendonly\r\nm=video 4002 RTP/AVP 96\r\na=recvonly\r\n"
	// answer is callbus's answer to a PCMA offer.
	answer = "v=0\r\no=bob 77 77 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n" +
		"m=audio 30000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)

func TestRead(t *testing.T) {
	d, err := Read(offer)
	if err != nil {
		t.Fatal(err)
	}
	want := Description{SessionID: "1", Version: "2", Addr: "10.0.0.1", Media: []Media{
		{Type: "audio", Port: 4000, Proto: "RTP/AVP", Formats: []string{"8", "0", "101"}, Addr: "10.0.0.1",
			Direction: SendOnly, named: true, Ptime: 30, Codecs: []Codec{
				{PT: 8, Name: PCMA, Rate: 8000}, {PT: 0, Name: PCMU, Rate: 8000},
				{PT: 101, Name: TelephoneEvent, Rate: 8000, Fmtp: "0-15"}}},
		{Type: "video", Port: 4002, Proto: "RTP/AVP", Formats: []string{"96"}, Addr: "10.0.0.1",
			Direction: RecvOnly, named: true, Codecs: []Codec{{PT: 96}}},
	}}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("read\n%+v\nwant\n%+v", d, want)
	}
	if a, ok := d.Audio(); !ok || a.Port != 4000 {
		t.Fatalf("Audio = %+v, %v", a, ok)
	}
	if c, ok := d.Media[0].Codec("Telephone-Event"); !ok || c.PT != 101 {
		t.Fatalf("Codec(telephone-event) = %+v, %v", c, ok)
	}
	if _, ok := d.Media[0].Codec("G722"); ok {
		t.Fatal("Codec found a codec the m= line does not list")
	}
}

func TestReadLenient(t *testing.T) {
	for _, tc := range []struct {
		name, sdp string
		check     func(Description) bool
	}{
		{"line-ends=LF/blank-lines/trailing-blanks", "v=0\n\no=a 1 5 IN IP4 h \nm=audio 1 RTP/AVP 0\t\na=inactive  \n",
			func(d Description) bool { return d.Version == "5" && d.Media[0].Direction == Inactive }},
		{"order=c-after-m-attributes", "v=0\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\nc=IN IP4 1.1.1.1\r\n",
			func(d Description) bool { return d.Media[0].Endpoint() == "1.1.1.1:1" }},
		{"c=multicast-ttl", "v=0\r\nc=IN IP4 224.2.1.1/127\r\nm=audio 9/2 RTP/AVP 0\r\n",
			func(d Description) bool { return d.Media[0].Endpoint() == "224.2.1.1:9" }},
		{"repeated=last-counts", "v=0\r\nm=audio 1 RTP/AVP 96\r\nc=IN IP4 1.1.1.1\r\nc=IN IP4 2.2.2.2\r\na=rtpmap:96 foo/8000\r\na=rtpmap:96 bar/8000\r\na=sendonly\r\na=inactive\r\n",
			func(d Description) bool {
				m := d.Media[0]
				return m.Addr == "2.2.2.2" && m.Codecs[0].Name == "bar" && m.Direction == Inactive
			}},
		{"rtpmap=overrides-static", "v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 G7221/16000\r\n",
			func(d Description) bool { return d.Media[0].Codecs[0] == Codec{PT: 0, Name: "G7221", Rate: 16000} }},
		{"proto=not-rtp", "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
			func(d Description) bool {
				return d.Media[0].Codecs == nil && d.Media[0].Formats[0] == "webrtc-datachannel"
			}},
		{"proto=SAVPF", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n",
			func(d Description) bool { return d.Media[0].Codecs[0].Name == "opus" }},
		{"direction=with-value-is-not-one", "v=0\r\nm=audio 1 RTP/AVP 0\r\na=sendonly:x\r\n",
			func(d Description) bool { return d.Media[0].Direction == SendRecv }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Read(tc.sdp)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(d) {
				t.Fatalf("read %+v", d)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct{ name, sdp, want string }{
		{"line=no-equals", "v=0\r\nc IN IP4\r\n", "line 2: not type=value"},
		{"line=short", "v=0\r\nx\r\n", "line 2: not type=value"},
		{"m=short", "v=0\r\nm=audio 1\r\n", "line 2: m= line without"},
		{"port=bad", "v=0\r\nm=audio x RTP/AVP 0\r\n", "line 2: bad port"},
		{"port=range", "v=0\r\nm=audio 65536 RTP/AVP 0\r\n", "line 2: bad port"},
		{"pt=bad", "v=0\r\nm=audio 1 RTP/AVP zero\r\n", "line 2: bad payload type"},
		{"pt=range", "v=0\r\nm=audio 1 RTP/AVP 128\r\n", "line 2: bad payload type"},
		{"c=short", "v=0\r\nc=IN IP4\r\nm=audio 1 RTP/AVP 0\r\n", "line 2: c= line without an address"},
		{"rtpmap=bad", "v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:x\r\n", "line 3: rtpmap"},
		{"errors=first-counts", "v=0\r\nm=audio x RTP/AVP zero\r\nc=IN\r\n", "line 2: bad port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Read(tc.sdp)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one with %q", err, tc.want)
			}
			if got := strings.Count(tc.sdp, "\nm="); len(d.Media) != got {
				t.Fatalf("%d sections read, want %d: one per m= line whatever its errors", len(d.Media), got)
			}
		})
	}
	// What Read could read survives an error.
	d, _ := Read("v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5004 RTP/AVP 0 x\r\na=rtpmap:0 PCMU/8000/1/1\r\n")
	if m := d.Media[0]; m.Endpoint() != "1.1.1.1:5004" || len(m.Codecs) != 1 || m.Codecs[0] != (Codec{PT: 0}) {
		t.Fatalf("read %+v: want the endpoint, and PT 0 without a name (its rtpmap is malformed)", m)
	}
}

func TestAudioDirection(t *testing.T) {
	for _, tc := range []struct {
		name, sdp string
		want      Direction
	}{
		{"attr=media", "v=0\r\na=sendrecv\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n", SendOnly},
		{"attr=session", "v=0\r\na=inactive\r\nm=audio 1 RTP/AVP 0\r\n", Inactive},
		{"attr=none", "v=0\r\nm=audio 1 RTP/AVP 0\r\n", SendRecv},
		{"c=0.0.0.0", "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 1 RTP/AVP 0\r\n", SendOnly},
		{"c=0.0.0.0/attr=recvonly", "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 1 RTP/AVP 0\r\na=recvonly\r\n", RecvOnly},
		{"c=0.0.0.0/attr=session-sendrecv", "v=0\r\nc=IN IP4 0.0.0.0\r\na=sendrecv\r\nm=audio 1 RTP/AVP 0\r\n", SendRecv},
		{"section=audio-after-video", "v=0\r\nm=video 2 RTP/AVP 96\r\na=inactive\r\nm=audio 1 RTP/AVP 0\r\na=recvonly\r\n", RecvOnly},
		{"m=none/attr=session", "v=0\r\na=recvonly\r\n", RecvOnly},
		{"sdp=empty", "", SendRecv},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := Read(tc.sdp)
			if got := d.AudioDirection(); got != tc.want {
				t.Fatalf("AudioDirection = %s, want %s", got, tc.want)
			}
		})
	}
	// Media.Direction is the attributes' alone: only AudioDirection reads
	// an RFC 2543 hold.
	d, _ := Read("v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 1 RTP/AVP 0\r\n")
	if d.Media[0].Direction != SendRecv {
		t.Fatalf("Media.Direction = %s", d.Media[0].Direction)
	}
}

func TestEndpointAndCodec(t *testing.T) {
	for _, tc := range []struct{ name, sdp, endpoint, codec string }{
		{"sdp=answer", answer, "192.0.2.20:30000", PCMA},
		{"c=media-level", "v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5004 RTP/AVP 0\r\nc=IN IP4 2.2.2.2\r\n", "2.2.2.2:5004", PCMU},
		{"c=ipv6", "v=0\r\nc=IN IP6 2001:db8::5\r\nm=audio 5004 RTP/AVP 8\r\n", "[2001:db8::5]:5004", PCMA},
		{"codec=dynamic", "v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5004/2 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n", "1.1.1.1:5004", "opus"},
		{"port=0", "v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 0 RTP/AVP 0\r\n", "1.1.1.1:0", PCMU},
		{"c=none", "v=0\r\nm=audio 5004 RTP/AVP 0\r\n", "", PCMU},
		{"codec=unknown-static", "v=0\r\nm=audio 5004 RTP/AVP 34\r\n", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := Read(tc.sdp)
			m, ok := d.Audio()
			if !ok {
				t.Fatal("no audio section")
			}
			if got := m.Endpoint(); got != tc.endpoint {
				t.Errorf("Endpoint = %q, want %q", got, tc.endpoint)
			}
			if got := m.Codecs[0].Name; got != tc.codec {
				t.Errorf("first codec %q, want %q", got, tc.codec)
			}
		})
	}
	if d, _ := Read("v=0\r\nc=IN IP4 1.1.1.1\r\nm=video 5004 RTP/AVP 96\r\n"); func() bool { _, ok := d.Audio(); return ok }() {
		t.Fatal("a video section was taken for audio")
	}
}
