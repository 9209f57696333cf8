package dialog

import (
	"errors"
	"testing"
)

func TestParseSipfrag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code int
		line string
		ok   bool
	}{
		{"SIP/2.0 100 Trying\r\n", 100, "SIP/2.0 100 Trying", true},
		{"SIP/2.0 200 OK\r\nContent-Type: application/sdp\r\n\r\n", 200, "SIP/2.0 200 OK", true},
		{"sip/2.0 486 Busy Here", 486, "sip/2.0 486 Busy Here", true},
		{"SIP/2.0 503", 503, "SIP/2.0 503", true},
		{"", 0, "", false},
		{"SIP/2.0 99 Low", 0, "", false},
		{"SIP/2.0 700 High", 0, "", false},
		{"HTTP/1.1 200 OK", 0, "", false},
		{"SIP/2.0 2000 OK", 0, "", false},
		{"SIP/2.0 200 O\x00K", 0, "", false},
	} {
		f, err := parseSipfrag(tc.in)
		if tc.ok != (err == nil) || f.code != tc.code || f.line != tc.line {
			t.Errorf("parseSipfrag(%q) = %+v, %v", tc.in, f, err)
		}
		if err != nil && !errors.Is(err, errBadSipfrag) {
			t.Errorf("unclassified error %v", err)
		}
	}
}

func TestParseDtmfRelay(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want byte
		ok   bool
	}{
		{"Signal=5\r\nDuration=160\r\n", '5', true},
		{"signal = *\nduration = 250", '*', true},
		{"Signal=10\r\n", '*', true},
		{"Signal=11\r\n", '#', true},
		{"Signal=d\r\n", 'D', true},
		{"Duration=160\r\n", 0, false},
		{"Signal=16\r\n", 0, false},
		{"Signal=5\r\nDuration=x\r\n", 0, false},
		{"Signal 5", 0, false},
		{"", 0, false},
	} {
		got, err := parseDtmfRelay(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("parseDtmfRelay(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func TestParseReplaces(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"abc@host;to-tag=1;from-tag=2", "abc@host;to-tag=1;from-tag=2"},
		{"abc ; from-tag=2 ; to-tag=1 ; early-only", "abc;to-tag=1;from-tag=2;early-only"},
		{"abc;TO-TAG=1;from-tag=2;x=y", "abc;to-tag=1;from-tag=2"},
		{"abc;to-tag=1", ""},
		{";to-tag=1;from-tag=2", ""},
		{"a b;to-tag=1;from-tag=2", ""},
		{"abc;to-tag=;from-tag=2", ""},
		{"abc;to-tag=1;from-tag=2;;", ""},
		{"abc;to-tag=<1>;from-tag=2", ""},
	} {
		r, err := parseReplaces(tc.in)
		got := ""
		if err == nil {
			got = r.String()
		}
		if got != tc.want {
			t.Errorf("parseReplaces(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseReferTo(t *testing.T) {
	for _, tc := range []struct {
		in, target, replaces string
		ok                   bool
	}{
		{"<sip:dave@10.0.0.4>", "sip:dave@10.0.0.4", "", true},
		{"sip:dave@10.0.0.4", "sip:dave@10.0.0.4", "", true},
		{`"Dave" <sips:dave@example.com;transport=tls>;x=1`, "sips:dave@example.com;transport=tls", "", true},
		{"<tel:+15551234567>", "tel:+15551234567", "", true},
		{"<sip:dave@h?Replaces=c%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>", "sip:dave@h", "c@h;to-tag=1;from-tag=2", true},
		{"<sip:dave@h?X-A=1&replaces=c%3Bfrom-tag%3D2%3Bto-tag%3D1>", "sip:dave@h?X-A=1", "c;to-tag=1;from-tag=2", true},
		{"<sip:dave@h?Replaces=c%3Bto-tag%3D1>", "", "", false},
		{"<sip:dave@h?Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2&Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2>", "", "", false},
		{"<mailto:dave@h>", "", "", false},
		{"<sip:>", "", "", false},
		{"<>", "", "", false},
		{"", "", "", false},
	} {
		target, replaces, err := parseReferTo(tc.in)
		if tc.ok != (err == nil) || target != tc.target || replaces != tc.replaces {
			t.Errorf("parseReferTo(%q) = %q, %q, %v", tc.in, target, replaces, err)
		}
		if err != nil && !errors.Is(err, errBadReferTo) {
			t.Errorf("unclassified error %v", err)
		}
	}
}

func TestSplitList(t *testing.T) {
	got := splitList(`<sip:a;lr>, "B, C" <sip:b>,sip:c ,, <sip:d?x=1,2>`)
	want := []string{"<sip:a;lr>", `"B, C" <sip:b>`, "sip:c", "<sip:d?x=1,2>"}
	if len(got) != len(want) {
		t.Fatalf("splitList = %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("splitList = %q, want %q", got, want)
		}
	}
}
