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

func canonicalHeader(name string) string {
	n := strings.ToLower(name)
	if long, ok := compactForms[n]; ok {
		return long
	}
	return n
}

// Get returns the value of the first header named name, matched without
// regard to case or compact form ("i" finds Call-ID), and "" when absent.
func (h Headers) Get(name string) string {
	want := canonicalHeader(name)
	for _, f := range h {
		if len(f.Name) == len(want) || len(f.Name) == 1 {
			if canonicalHeader(f.Name) == want {
				return f.Value
			}
		}
	}
	return ""
}

// Values returns every value of the headers named name, in order.
func (h Headers) Values(name string) []string {
	want := canonicalHeader(name)
	var out []string
	for _, f := range h {
		if canonicalHeader(f.Name) == want {
			out = append(out, f.Value)
		}
	}
	return out
}
