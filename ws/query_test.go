package ws

import (
	"errors"
	"net/url"
	"strconv"
	"testing"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		raw       string
		channels  int
		types     int
		sessions  int
		dataPlane bool
		since     string // "" when absent
	}{
		{raw: ""},
		{raw: "token=abc&other=1"},
		{raw: "channels=session_to_app,,dialog_to_session&channels=session_to_app", channels: 2},
		{raw: "types=SendRtpPacket", types: 1, dataPlane: true},
		{raw: "types=CallCreated,CallEnded", types: 2},
		{raw: "session_id=a.1,b.2&session_id=a.1", sessions: 2},
		{raw: "since=0", since: "0"},
		{raw: "since=18446744073709551615", since: "18446744073709551615"},
	} {
		t.Run("query="+tc.raw, func(t *testing.T) {
			v, err := url.ParseQuery(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			q, err := parseQuery(v)
			if err != nil {
				t.Fatal(err)
			}
			since := ""
			if q.hasSince {
				since = strconv.FormatUint(q.since, 10)
			}
			if len(q.channels) != tc.channels || len(q.types) != tc.types || len(q.sessions) != tc.sessions ||
				q.dataPlane != tc.dataPlane || since != tc.since {
				t.Errorf("got %+v", q)
			}
		})
	}
}

// FuzzParseQuery feeds the query parser arbitrary query strings: it never
// panics, refuses only with validation_failed naming a parameter, and
// accepts only catalogue names and a since that round-trips.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "channels=session_to_app&types=CallCreated&session_id=x&since=5",
		"types=RtpPacketReceived,SendRtpPacket", "since=-1", "channels=%zz", "since=1&since=2"} {
		f.Add(s)
	}
	fields := map[string]bool{"channels": true, "types": true, "session_id": true, "since": true}
	names := catalogueNames()
	f.Fuzz(func(t *testing.T, raw string) {
		v, _ := url.ParseQuery(raw) // keeps what parses, as net/http's Query does
		q, err := parseQuery(v)
		if err != nil {
			var ce *callcore.Error
			if !errors.As(err, &ce) || ce.Code != callcore.CodeValidationFailed || !fields[ce.Field] {
				t.Fatalf("error %#v, want validation_failed naming a parameter", err)
			}
			return
		}
		dataPlane := false
		for c := range q.channels {
			if _, ok := names.channels[c]; !ok {
				t.Fatalf("accepted channel %q", c)
			}
		}
		for typ := range q.types {
			if _, ok := names.types[typ]; !ok {
				t.Fatalf("accepted type %q", typ)
			}
			_, dp := names.dataPlane[typ]
			dataPlane = dataPlane || dp
		}
		if dataPlane != q.dataPlane {
			t.Fatalf("dataPlane %v for types %v", q.dataPlane, q.types)
		}
		want, perr := strconv.ParseUint(v.Get("since"), 10, 64)
		if q.hasSince != v.Has("since") || (q.hasSince && (perr != nil || q.since != want)) {
			t.Fatalf("since %v/%d from %q", q.hasSince, q.since, v["since"])
		}
		// An RTP packet event passes only when named.
		rtp := &events.RtpPacketReceived{SessionRef: events.SessionRef{SessionID: "s"}}
		if _, named := q.types[rtp.Type()]; q.match(rtp) && !named {
			t.Fatal("RTP packet event matched without being named")
		}
	})
}
