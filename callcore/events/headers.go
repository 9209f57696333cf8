package events

import "strings"

// Header is one SIP header field, kept in wire order.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Headers is an ordered list of SIP header fields. SIP repeats some headers
// (Via, Route, Record-Route), so a map would lose order and duplicates.
type Headers []Header

// compactForms maps RFC 3261 §7.3.3 compact header names to their long form.
var compactForms = map[string]string{
	"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
	"c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to",
	"v": "via", "r": "refer-to", "b": "referred-by", "o": "event", "u": "allow-events",
}

// longForm returns the long name of a compact one-letter header name, or
// name itself, without allocating: Get runs on every SIP event's Key.
func longForm(name string) string {
	if len(name) == 1 {
		if long, ok := compactForms[string(name[0]|0x20)]; ok {
			return long
		}
	}
	return name
}

// sameName reports whether two header names name one header, without
// regard to case or compact form.
func sameName(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	if len(a) != 1 && len(b) != 1 {
		return false
	}
	return strings.EqualFold(longForm(a), longForm(b))
}

// Get returns the value of the first header named name, matched without
// regard to case or compact form ("i" finds Call-ID), and "" when absent.
func (h Headers) Get(name string) string {
	for _, f := range h {
		if sameName(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Values returns every value of the headers named name, in order.
func (h Headers) Values(name string) []string {
	var out []string
	for _, f := range h {
		if sameName(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}
