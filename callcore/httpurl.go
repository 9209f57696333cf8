package callcore

import (
	"net/url"
	"strings"
)

// ValidHTTPURL reports whether u is an absolute http or https URL with a
// host and no white space. The REST API and the IVR check the URLs they
// are given (webhooks, playback, action URLs) by this one rule.
func ValidHTTPURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" &&
		!strings.ContainsAny(u, " \t\r\n")
}

// ValidMediaFile reports whether f is a relative path that stays below the
// media directory: no leading '/', no "..", "." or empty element, no
// backslash or control character. The REST API and the IVR check the files
// they are asked to play by this one rule.
func ValidMediaFile(f string) bool {
	if f == "" || strings.HasPrefix(f, "/") || strings.ContainsAny(f, "\\\x00\r\n") {
		return false
	}
	for _, el := range strings.Split(f, "/") {
		if el == ".." || el == "" || el == "." {
			return false
		}
	}
	return true
}
