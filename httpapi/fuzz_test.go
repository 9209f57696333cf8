package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
)

// FuzzMakeCallBody feeds request bodies to the decoder and the validation
// of POST /v1/calls: neither may panic, every refusal is a
// *callcore.Error of a 4xx code, and what passes is a call to a SIP URI.
func FuzzMakeCallBody(f *testing.F) {
	for _, s := range []string{`{"to":"sip:a@b"}`, `{"to":"sip:a@b","headers":{"X-A":"1"},"ring_timeout_s":5}`,
		`{"to":`, `[]`, `{"to":"sip:a@b"} x`, `{"x":1}`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/v1/calls", strings.NewReader(body))
		var q makeCallRequest
		err := decodeBody(httptest.NewRecorder(), r, &q)
		if err == nil {
			err = q.validate()
		}
		if err != nil {
			if c := callcore.ErrorCode(err); StatusOf(c) < 400 || StatusOf(c) >= 500 {
				t.Fatalf("body %q: error %v has code %q, want a 4xx", body, err, c)
			}
			return
		}
		if !callcore.ValidSIPURI(q.To) || (q.From != "" && !callcore.ValidSIPURI(q.From)) {
			t.Fatalf("body %q accepted with to %q from %q", body, q.To, q.From)
		}
		for n, v := range q.Headers {
			if !validHeaderName(n) || !oneLine(v) {
				t.Fatalf("body %q accepted with header %q: %q", body, n, v)
			}
		}
	})
}

// FuzzTokenVerify checks that no string but a minted, unexpired token
// verifies.
func FuzzTokenVerify(f *testing.F) {
	tk := newTokens(time.Minute, time.Now)
	good, _ := tk.mint(time.Minute)
	f.Add(good)
	f.Add("cbt_")
	f.Add("cbt_AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		if tk.verify(s) == nil && s != good {
			t.Fatalf("%q verifies but was never minted", s)
		}
	})
}
