package events_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore/events"
)

func TestIDRoundTrip(t *testing.T) {
	ids := []events.ID{{}, {Lo: 1}, {Hi: 1}, {Hi: 0xdeadbeef, Lo: 0xfeedface}, {Hi: math.MaxUint64, Lo: math.MaxUint64}}
	for _, id := range ids {
		s := id.String()
		if id.IsZero() != (s == "") {
			t.Errorf("%#v: String %q", id, s)
		}
		if !id.IsZero() && (len(s) != 35 || !strings.HasPrefix(s, "ev_")) {
			t.Errorf("%#v: String %q, want ev_ and 32 hex digits", id, s)
		}
		got, err := events.ParseID(s)
		if err != nil || got != id {
			t.Errorf("ParseID(%q) = %#v, %v; want %#v", s, got, err, id)
		}
		b, err := json.Marshal(id)
		if err != nil {
			t.Fatal(err)
		}
		var back events.ID
		if err := json.Unmarshal(b, &back); err != nil || back != id {
			t.Errorf("json round trip of %s = %#v, %v", b, back, err)
		}
	}
	if got, _ := events.ParseID("ev_0000000000000001000000000000000A"); got != (events.ID{Hi: 1, Lo: 10}) {
		t.Errorf("upper-case hex parsed to %#v", got)
	}
}

func TestParseIDErrors(t *testing.T) {
	bad := []string{
		"ev_", "ev_123", "EV_00000000000000000000000000000001", "xx_00000000000000000000000000000001",
		"ev_0000000000000000000000000000000g", "ev_000000000000000000000000000000011",
		"00000000000000000000000000000001", " ev_00000000000000000000000000000001",
	}
	for _, s := range bad {
		id, err := events.ParseID(s)
		if err == nil {
			t.Errorf("ParseID(%q) = %#v, want an error", s, id)
			continue
		}
		if !strings.Contains(err.Error(), s) {
			t.Errorf("ParseID(%q) error %q does not name the input", s, err)
		}
		var v events.ID
		if err := json.Unmarshal([]byte(`"`+s+`"`), &v); err == nil {
			t.Errorf("json.Unmarshal(%q) succeeded", s)
		}
	}
}
