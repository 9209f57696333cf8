package callcore

import "testing"

func TestValidHTTPURLAndMediaFile(t *testing.T) {
	for _, tc := range []struct {
		u  string
		ok bool
	}{
		{"https://app.example/hook", true}, {"http://127.0.0.1:8080/x?y=1", true},
		{"/relative", false}, {"ftp://x/y", false}, {"https://", false}, {"https://a b/", false},
		{"file:///etc/passwd", false}, {"", false},
	} {
		if got := ValidHTTPURL(tc.u); got != tc.ok {
			t.Errorf("ValidHTTPURL(%q) = %v", tc.u, got)
		}
	}
	for _, tc := range []struct {
		f  string
		ok bool
	}{
		{"menu/welcome.wav", true}, {"a.wav", true},
		{"", false}, {"/etc/passwd", false}, {"../x.wav", false}, {"a/../../x", false}, {"a//b", false},
		{"./a.wav", false}, {`a\b.wav`, false}, {"a\x00.wav", false}, {"a\n.wav", false},
	} {
		if got := ValidMediaFile(tc.f); got != tc.ok {
			t.Errorf("ValidMediaFile(%q) = %v", tc.f, got)
		}
	}
}
