package ws

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// query is a parsed feed request: the filters and where to start. A nil
// set does not filter. Filters combine with AND; the values of one list
// with OR.
type query struct {
	channels  map[string]struct{}
	types     map[string]struct{}
	sessions  map[string]struct{}
	dataPlane bool // types names an RTP packet event: tap the data plane
	since     uint64
	hasSince  bool
}

// names is what the query is validated against: every channel, every
// event type (of any channel) and which types are RTP packet events.
type names struct {
	channels  map[string]struct{}
	types     map[string]struct{}
	dataPlane map[string]struct{}
}

var catalogueNames = sync.OnceValue(func() *names {
	n := &names{
		channels:  map[string]struct{}{},
		types:     map[string]struct{}{},
		dataPlane: map[string]struct{}{},
	}
	for _, ch := range events.Channels() {
		n.channels[ch] = struct{}{}
	}
	for _, ev := range events.All() {
		n.types[ev.Type()] = struct{}{}
		if events.IsDataPlane(ev) {
			n.dataPlane[ev.Type()] = struct{}{}
		}
	}
	return n
})

// Query limits: a URL is bounded by the server's header limit anyway, but
// a list longer than the catalogue (or than any dashboard's list of calls)
// is a mistake worth naming.
const (
	maxSessions = 1000
	maxValueLen = 200
)

// parseQuery validates the feed's query parameters: channels, types and
// session_id are comma-separated lists and may be repeated; since is one
// non-negative integer. Empty list items are ignored; unknown parameters
// (such as the browser's token) are left to others. Errors are
// *callcore.Error validation_failed with Field naming the parameter and
// Message the bad value.
//
// A type names the event type in every channel that has it (SendDtmf is
// both session_to_dialog's and session_to_media's); combine it with
// channels to pick one.
func parseQuery(v url.Values) (query, error) {
	n := catalogueNames()
	var q query
	var err error
	q.channels, err = parseList(v, "channels", 0, func(s string) error {
		if _, ok := n.channels[s]; !ok {
			return fmt.Errorf("unknown channel %s", quote(s))
		}
		return nil
	})
	if err != nil {
		return query{}, err
	}
	q.types, err = parseList(v, "types", 0, func(s string) error {
		if _, ok := n.types[s]; !ok {
			return fmt.Errorf("unknown event type %s", quote(s))
		}
		return nil
	})
	if err != nil {
		return query{}, err
	}
	for t := range q.types {
		if _, ok := n.dataPlane[t]; ok {
			q.dataPlane = true
		}
	}
	q.sessions, err = parseList(v, "session_id", maxSessions, func(s string) error {
		if len(s) > maxValueLen {
			return fmt.Errorf("session id longer than %d bytes", maxValueLen)
		}
		return nil
	})
	if err != nil {
		return query{}, err
	}
	if vals, ok := v["since"]; ok {
		if len(vals) != 1 {
			return query{}, invalid("since", "since given %d times", len(vals))
		}
		// Base 10 takes no sign, prefix or underscore: digits only.
		since, err := strconv.ParseUint(vals[0], 10, 64)
		if err != nil {
			return query{}, invalid("since", "since %s is not a non-negative integer", quote(vals[0]))
		}
		q.since, q.hasSince = since, true
	}
	return q, nil
}

// parseList collects the comma-separated items of every value of key,
// checking each. It returns nil when there is none; max bounds how many
// (0: no bound beyond the valid names').
func parseList(v url.Values, key string, max int, check func(string) error) (map[string]struct{}, error) {
	var set map[string]struct{}
	for _, val := range v[key] {
		for item := range strings.SplitSeq(val, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			if err := check(item); err != nil {
				return nil, invalid(key, "%s: %v", key, err)
			}
			if set == nil {
				set = map[string]struct{}{}
			}
			set[item] = struct{}{}
			if max > 0 && len(set) > max {
				return nil, invalid(key, "%s: more than %d values", key, max)
			}
		}
	}
	return set, nil
}

func invalid(field, format string, args ...any) *callcore.Error {
	e := callcore.Errorf(callcore.CodeValidationFailed, format, args...)
	e.Field = field
	return e
}

// quote quotes s for a message, cut to maxValueLen bytes.
func quote(s string) string {
	if len(s) > maxValueLen {
		return strconv.Quote(s[:maxValueLen]) + "…"
	}
	return strconv.Quote(s)
}

func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }

// match reports whether the query's filters let ev through. RTP packet
// events pass only when types names them, whatever else the query says.
func (q *query) match(ev events.Event) bool {
	if q.channels != nil {
		if _, ok := q.channels[ev.Channel()]; !ok {
			return false
		}
	}
	if q.types != nil {
		if _, ok := q.types[ev.Type()]; !ok {
			return false
		}
	} else if events.IsDataPlane(ev) {
		return false
	}
	if q.sessions != nil {
		if _, ok := q.sessions[events.SessionOf(ev)]; !ok {
			return false
		}
	}
	return true
}

// String describes the query for logs.
func (q *query) String() string {
	var b strings.Builder
	list := func(key string, set map[string]struct{}) {
		if set == nil {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(key)
		b.WriteByte('=')
		first := true
		for k := range set {
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.WriteString(k)
		}
	}
	list("channels", q.channels)
	list("types", q.types)
	list("session_id", q.sessions)
	if q.hasSince {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("since=" + uitoa(q.since))
	}
	if b.Len() == 0 {
		return "all"
	}
	return b.String()
}
