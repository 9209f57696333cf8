package session

import (
	"strings"
	"testing"
)

// FuzzURI feeds the URI readers (From/To header values, command fields)
// any text: they never panic, and a valid URI has a scheme and no space.
func FuzzURI(f *testing.F) {
	f.Add("sip:bob@example.com:5060;transport=tcp")
	f.Add(`"Echo" <sips:echo@[::1]>;tag=1`)
	f.Fuzz(func(t *testing.T, u string) {
		_ = uriUser(u)
		if validSIPURI(u) && (strings.ContainsAny(u, " \r\n<>") || !strings.HasPrefix(strings.ToLower(u), "sip")) {
			t.Fatalf("validSIPURI(%q) = true", u)
		}
	})
}
