package dialog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore/events"
)

// Header-value parsing errors.
var (
	errBadAddress = errors.New("bad address")
	errBadCSeq    = errors.New("bad CSeq")
	errNoContact  = errors.New("no Contact")
)

// address is a parsed name-addr or addr-spec (From, To, Contact, Refer-To).
type address struct {
	display string
	// uri is the URI text as received, without the angle brackets, so that
	// it is sent back byte for byte (a re-serialised URI may differ).
	uri    string
	params sip.HeaderParams
}

// parseAddress parses a From/To/Contact-style header value (RFC 3261 §20.10).
func parseAddress(v string) (address, error) {
	v = strings.TrimSpace(v)
	var u sip.Uri
	params := sip.NewParams()
	display, err := sip.ParseAddressValue(v, &u, &params)
	if err != nil {
		return address{}, fmt.Errorf("%w %q: %v", errBadAddress, v, err)
	}
	if u.Wildcard {
		return address{}, fmt.Errorf("%w %q: wildcard", errBadAddress, v)
	}
	raw, err := rawURI(v)
	if err != nil {
		return address{}, err
	}
	return address{display: display, uri: raw, params: params}, nil
}

// rawURI returns the URI of an address header value as written: between
// the angle brackets, or up to the first ';' when there are none (the
// parameters of a bare addr-spec are header parameters, §20.10).
func rawURI(v string) (string, error) {
	quoted, escaped := false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case !quoted && c == '<':
			end := strings.IndexByte(v[i+1:], '>')
			if end < 0 {
				return "", fmt.Errorf("%w %q: no '>'", errBadAddress, v)
			}
			u := strings.TrimSpace(v[i+1 : i+1+end])
			if u == "" {
				return "", fmt.Errorf("%w %q: empty URI", errBadAddress, v)
			}
			return u, nil
		}
	}
	u, _, _ := strings.Cut(v, ";")
	u = strings.TrimSpace(u)
	if u == "" {
		return "", fmt.Errorf("%w %q: empty URI", errBadAddress, v)
	}
	return u, nil
}

// tag returns the tag parameter of a parsed address.
func (a address) tag() string {
	t, _ := a.params.Get("tag")
	return t
}

// tagOf returns the tag parameter of a From/To value, "" when absent or
// unparsable.
func tagOf(v string) string {
	a, err := parseAddress(v)
	if err != nil {
		return ""
	}
	return a.tag()
}

// formatAddress writes a name-addr: an optional quoted display name and
// the URI in angle brackets.
func formatAddress(display, uri string) string {
	if display == "" {
		return "<" + uri + ">"
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", "", "\n", "")
	return `"` + r.Replace(display) + `" <` + uri + ">"
}

// withTag appends ;tag=tag to an address header value.
func withTag(v, tag string) string { return strings.TrimSpace(v) + ";tag=" + tag }

// parseCSeq parses a CSeq value: a 32-bit sequence number and a method.
func parseCSeq(v string) (uint32, string, error) {
	f := strings.Fields(v)
	if len(f) != 2 {
		return 0, "", fmt.Errorf("%w %q", errBadCSeq, v)
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return 0, "", fmt.Errorf("%w %q", errBadCSeq, v)
	}
	return uint32(n), strings.ToUpper(f[1]), nil
}

// splitList splits a comma-separated header value (Record-Route, Contact)
// at the commas that are outside quotes and angle brackets.
func splitList(v string) []string {
	var out []string
	quoted, escaped, angle, start := false, false, false, 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case c == ',' && !angle:
			if s := strings.TrimSpace(v[start:i]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// recordRoutes returns every Record-Route entry of hs, in order.
func recordRoutes(hs events.Headers) []string {
	var out []string
	for _, v := range hs.Values("Record-Route") {
		out = append(out, splitList(v)...)
	}
	return out
}

// reversed returns a reversed copy of s.
func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// contactURI returns the URI of the first Contact of hs.
func contactURI(hs events.Headers) (string, error) {
	for _, v := range hs.Values("Contact") {
		for _, c := range splitList(v) {
			a, err := parseAddress(c)
			if err != nil {
				return "", err
			}
			return a.uri, nil
		}
	}
	return "", errNoContact
}

// mediaType returns the lower-cased type/subtype of a Content-Type value.
func mediaType(ct string) string {
	t, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// escapeHeaderValue %-escapes a value for use in a URI's ?headers part
// (RFC 3261 §19.1.1: hvalue): everything but the unreserved characters.
func escapeHeaderValue(v string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_.!~*'()", c) >= 0
}

// reservedHeaders are the headers the dialog owns; the extra headers of an
// InitiateCall may not set them.
var reservedHeaders = map[string]bool{
	"via": true, "from": true, "to": true, "call-id": true, "cseq": true, "contact": true,
	"max-forwards": true, "content-length": true, "content-type": true, "record-route": true,
	"allow": true, "user-agent": true,
	// compact forms
	"v": true, "f": true, "t": true, "i": true, "m": true, "l": true, "c": true,
}

// isReservedHeader reports whether name is one the dialog sets itself.
func isReservedHeader(name string) bool {
	return reservedHeaders[strings.ToLower(strings.TrimSpace(name))]
}

// hasScheme reports whether s starts with a scheme the dialog handles.
func hasScheme(s string) bool {
	scheme, _, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	switch strings.ToLower(scheme) {
	case "sip", "sips", "tel":
		return true
	}
	return false
}

// targetAddress parses a user-supplied call or transfer target: a URI, a
// name-addr, or a bare user@host (taken as sip:).
func targetAddress(v string) (address, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return address{}, fmt.Errorf("%w: empty", errBadAddress)
	}
	if !strings.ContainsAny(v, "<\"") && !hasScheme(v) {
		v = "sip:" + v
	}
	a, err := parseAddress(v)
	if err != nil {
		return address{}, err
	}
	if err := checkURI(a.uri); err != nil {
		return address{}, err
	}
	return a, nil
}

// checkURI validates a SIP, SIPS or tel URI.
func checkURI(uri string) error {
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		return fmt.Errorf("%w %q: %v", errBadAddress, uri, err)
	}
	switch u.Scheme {
	case "sip", "sips":
		if u.Host == "" || u.Wildcard {
			return fmt.Errorf("%w %q: no host", errBadAddress, uri)
		}
	case "tel":
		if u.Raw() == "" {
			return fmt.Errorf("%w %q: empty tel URI", errBadAddress, uri)
		}
	default:
		return fmt.Errorf("%w %q: scheme %q not supported", errBadAddress, uri, u.Scheme)
	}
	return nil
}
