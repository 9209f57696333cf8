package dialog

import (
	"errors"
	"strings"
	"testing"
)

// The parsers read what the far end sends. Each must never panic, must
// classify its failures under one sentinel, and what it accepts must
// survive a round trip. Seeds are in testdata/fuzz/<FuzzName>.

func FuzzParseSipfrag(f *testing.F) {
	f.Add("SIP/2.0 180 Ringing\r\n")
	f.Fuzz(func(t *testing.T, body string) {
		frag, err := parseSipfrag(body)
		if err != nil {
			if !errors.Is(err, errBadSipfrag) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if frag.code < 100 || frag.code > 699 || strings.ContainsAny(frag.line, "\r\n") {
			t.Fatalf("accepted %+v", frag)
		}
		again, err := parseSipfrag(frag.line)
		if err != nil || again != frag {
			t.Fatalf("status line %q reads back as %+v, %v", frag.line, again, err)
		}
	})
}

func FuzzParseDtmfRelay(f *testing.F) {
	f.Add("Signal=5\r\nDuration=160\r\n")
	f.Fuzz(func(t *testing.T, body string) {
		tone, err := parseDtmfRelay(body)
		if err != nil {
			if !errors.Is(err, errBadDtmf) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if strings.IndexByte("0123456789*#ABCD", tone) < 0 {
			t.Fatalf("tone %q from %q", tone, body)
		}
		// What we read is what we would send.
		if again, err := parseDtmfRelay("Signal=" + string(tone) + "\r\nDuration=160\r\n"); err != nil || again != tone {
			t.Fatalf("tone %q reads back as %q, %v", tone, again, err)
		}
	})
}

func FuzzParseReplaces(f *testing.F) {
	f.Add("abc@host;to-tag=1;from-tag=2")
	f.Fuzz(func(t *testing.T, v string) {
		r, err := parseReplaces(v)
		if err != nil {
			if !errors.Is(err, errBadReplaces) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		again, err := parseReplaces(r.String())
		if err != nil || again != r {
			t.Fatalf("%q → %q reads back as %+v, %v", v, r.String(), again, err)
		}
		// Escaped into a Refer-To, it comes back unchanged.
		_, rep, err := parseReferTo("<sip:t@h?Replaces=" + escapeHeaderValue(r.String()) + ">")
		if err != nil || rep != r.String() {
			t.Fatalf("Refer-To round trip of %q: %q, %v", r.String(), rep, err)
		}
	})
}

func FuzzParseReferTo(f *testing.F) {
	f.Add("<sip:dave@10.0.0.4?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>")
	f.Fuzz(func(t *testing.T, v string) {
		target, replaces, err := parseReferTo(v)
		if err != nil {
			if !errors.Is(err, errBadReferTo) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		base, _, _ := strings.Cut(target, "?")
		if err := checkURI(base); err != nil {
			t.Fatalf("target %q of %q: %v", target, v, err)
		}
		if replaces != "" {
			if _, err := parseReplaces(replaces); err != nil {
				t.Fatalf("replaces %q of %q: %v", replaces, v, err)
			}
		}
	})
}
