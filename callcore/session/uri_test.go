package session

import "testing"

func TestURIs(t *testing.T) {
	for _, tc := range []struct {
		u     string
		valid bool
	}{
		{"sip:bob@example.com", true}, {"sips:bob@example.com:5061", true}, {"SIP:Bob@Example.COM", true},
		{"sip:example.com", true}, {"sip:[::1]:5060;transport=tcp", true}, {"sip:a@b?Subject=x", true},
		{"sip:", false}, {"sip:@example.com", false}, {"sip:bob@", false}, {"sip:bob@exa mple.com", false},
		{"sip:bob@example.com:0", false}, {"sip:bob@example.com:x", false}, {"sip:[::1", false},
		{"<sip:bob@example.com>", false}, {"tel:+1555", false}, {"bob@example.com", false},
		{"sip:bob@-example.com", false}, {"sip:bob@[zz::1]", false}, {"sip:bob@example.com\r\n", false},
	} {
		if got := validSIPURI(tc.u); got != tc.valid {
			t.Errorf("validSIPURI(%q) = %v, want %v", tc.u, got, tc.valid)
		}
	}
	for _, tc := range []struct{ v, user string }{
		{`"Echo" <sip:echo@host>;tag=1`, "echo"}, {"sip:Echo@host", "echo"}, {"<sips:tone;x=1@host>", "tone"},
		{"sip:host", ""}, {"<tel:+1555>", ""}, {"", ""}, {"<sip:echo@host", "echo"},
	} {
		if got := uriUser(tc.v); got != tc.user {
			t.Errorf("uriUser(%q) = %q, want %q", tc.v, got, tc.user)
		}
	}
}
