package calltest

import (
	"strings"
	"testing"
)

const offerSDP = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n" +
	"m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n" +
	"a=fmtp:101 0-15\r\na=sendonly\r\nm=video 4002 RTP/AVP 96\r\na=recvonly\r\n"

func TestParseSDP(t *testing.T) {
	s, err := ParseSDP(offerSDP)
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr != "10.0.0.1" || s.Port != 4000 || s.Version != 2 || s.Direction != SendOnly {
		t.Fatalf("parsed %+v", s)
	}
	if got := strings.Join(s.CodecNames(), ","); got != "PCMA,PCMU,telephone-event" {
		t.Fatalf("codecs %s (the static PT 0 has no rtpmap)", got)
	}
	if te, _ := s.Codec("telephone-event"); te.PT != 101 || te.Fmtp != "0-15" {
		t.Fatalf("telephone-event %+v", te)
	}

	bad := map[string]string{
		"body=empty":     "",
		"body=text":      "hello",
		"m=video-only":   "v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 1 RTP/AVP 96\r\n",
		"c=missing":      "v=0\r\nm=audio 1 RTP/AVP 0\r\n",
		"port=bad":       "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n",
		"pt=bad":         "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP zero\r\n",
		"rtpmap=bad":     "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:x\r\n",
		"m=short":        "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 1\r\n",
		"line=no-equals": "v=0\r\nc IN IP4\r\n",
	}
	for name, body := range bad {
		if _, err := ParseSDP(body); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestAnswerSDP(t *testing.T) {
	offer, _ := ParseSDP(offerSDP)
	ours, _ := codecsByName(defaultCodecs)
	codecs, ok := answerCodecs(offer, ours)
	if !ok || len(codecs) != 2 || codecs[0].Name != "PCMA" || codecs[1].PT != 101 {
		t.Fatalf("answer codecs %+v", codecs)
	}
	m := localMedia{host: "127.0.0.1", port: 5000, codecs: codecs, dir: mirror(offer.Direction), sessID: 7, version: 3}
	ans, err := ParseSDP(m.render())
	if err != nil {
		t.Fatal(err)
	}
	if ans.Direction != RecvOnly || ans.Port != 5000 || ans.Version != 3 || ans.Addr != "127.0.0.1" {
		t.Fatalf("rendered answer %+v", ans)
	}
	g722, _ := codecsByName([]string{"G722"})
	if _, ok := answerCodecs(offer, g722); ok {
		t.Fatal("answered an offer with no common codec")
	}
	if _, err := codecsByName([]string{"opus"}); err == nil {
		t.Fatal("an unknown codec name was accepted")
	}
	for in, want := range map[string]string{SendOnly: RecvOnly, RecvOnly: SendOnly, Inactive: Inactive, SendRecv: SendRecv, "": SendRecv} {
		if got := mirror(in); got != want {
			t.Errorf("mirror(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseReferTo(t *testing.T) {
	r, err := parseReferTo(`"Bob" <sip:bob@10.0.0.2:5070;transport=tcp?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Target != "sip:bob@10.0.0.2:5070;transport=tcp" || r.Replaces != "abc@h;to-tag=1;from-tag=2" {
		t.Fatalf("parsed %+v", r)
	}
	if r, err := parseReferTo("sip:carol@example.com"); err != nil || r.Target != "sip:carol@example.com" || r.Replaces != "" {
		t.Fatalf("bare URI: %+v, %v", r, err)
	}
	for _, bad := range []string{"", "<sip:bob@host", "<>", "not a uri", "<sip:b@h?Replaces=%zz>"} {
		if _, err := parseReferTo(bad); err == nil {
			t.Errorf("parseReferTo(%q) accepted", bad)
		}
	}
}

func TestParseSipfragAndDTMF(t *testing.T) {
	frags := map[string]int{"SIP/2.0 200 OK\r\n": 200, "SIP/2.0 100 Trying": 100, "\r\nSIP/2.0 486 Busy Here\r\n": 486, "junk": 0, "SIP/2.0 abc": 0}
	for body, want := range frags {
		if got, _ := parseSipfrag(body); got != want {
			t.Errorf("parseSipfrag(%q) = %d, want %d", body, got, want)
		}
	}
	dtmf := []struct{ ct, body, want string }{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", "5"},
		{"application/dtmf-relay", "signal= 10\r\n", "*"},
		{"application/dtmf-relay", "Signal=11", "#"},
		{"application/dtmf-relay", "Signal=b", "B"},
		{"application/dtmf-relay", "Duration=160", ""},
		{"application/dtmf-relay", "Signal=55", ""},
		{"application/dtmf", "7\r\n", "7"},
		{"text/plain", "7", ""},
	}
	for _, tc := range dtmf {
		if got := parseDTMF(tc.ct, tc.body); got != tc.want {
			t.Errorf("parseDTMF(%q, %q) = %q, want %q", tc.ct, tc.body, got, tc.want)
		}
	}
}

func TestMessageHeaders(t *testing.T) {
	m := Message{Method: "INVITE", Headers: []Header{
		{"i", "abc"}, {"Via", "SIP/2.0/UDP a"}, {"v", "SIP/2.0/UDP b"}, {"CSeq", "7 INVITE"},
	}}
	if m.Get("Call-ID") != "abc" || m.Get("call-id") != "abc" {
		t.Fatal("compact Call-ID not found")
	}
	if got := m.Values("VIA"); len(got) != 2 || got[1] != "SIP/2.0/UDP b" {
		t.Fatalf("Via values %v", got)
	}
	if m.CSeq() != 7 || m.Get("X-None") != "" || !m.IsRequest() {
		t.Fatalf("CSeq %d", m.CSeq())
	}
	res := Message{Method: "INVITE", Status: 180}
	if !Req("invite")(m) || Req("BYE")(m) || Req("")(res) {
		t.Fatal("Req matcher")
	}
	if !Resp(180, "INVITE")(res) || !Resp(0, "")(res) || Resp(200, "")(res) || Resp(0, "")(m) {
		t.Fatal("Resp matcher")
	}
}

func FuzzParseSDP(f *testing.F) {
	f.Add(offerSDP)
	f.Add(localMedia{host: "127.0.0.1", port: 4000, codecs: []Codec{knownCodecs["pcmu"]}, dir: SendRecv}.render())
	f.Add("v=0\nc=IN IP4 1.1.1.1/127\nm=audio 9/2 RTP/AVP 0\n")
	f.Fuzz(func(t *testing.T, body string) {
		s, err := ParseSDP(body)
		if err != nil {
			return
		}
		if s.Addr == "" || s.Proto == "" || s.Port < 0 || s.Port > 65535 {
			t.Fatalf("accepted %q as %+v", body, s)
		}
		mirror(s.Direction)
	})
}

func FuzzParseReferTo(f *testing.F) {
	f.Add("<sip:bob@h?Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2>")
	f.Add("sip:carol@example.com;transport=tcp")
	f.Add(`"x" <sips:[::1]:5061>`)
	f.Fuzz(func(t *testing.T, v string) {
		r, err := parseReferTo(v)
		if err == nil && r.Target == "" {
			t.Fatalf("accepted %q without a target", v)
		}
	})
}

func FuzzParseInfo(f *testing.F) {
	f.Add("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")
	f.Add("application/dtmf", "#")
	f.Add("message/sipfrag", "SIP/2.0 200 OK\r\n")
	f.Fuzz(func(t *testing.T, ct, body string) {
		if d := parseDTMF(ct, body); d != "" && (len(d) != 1 || !strings.Contains(dtmfDigits, d)) {
			t.Fatalf("parseDTMF gave %q", d)
		}
		if code, _ := parseSipfrag(body); code < 0 {
			t.Fatalf("parseSipfrag gave %d", code)
		}
	})
}
