package ivr

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
)

// A request body carries the contract's names, and a verb's result only
// on its own event.
func TestRequestJSON(t *testing.T) {
	at := time.Date(2026, 12, 8, 1, 2, 3, 0, time.UTC)
	incoming := Request{ID: "ev_1", Event: EventIncoming, OccurredAt: at, Seq: 42,
		Call: callcore.Call{ID: "n1.a", Direction: callcore.Inbound, State: callcore.StateRinging, CreatedAt: at}}
	b, err := json.Marshal(incoming)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"ev_1","event":"call.incoming","occurred_at":"2026-12-08T01:02:03Z","seq":42,"call":{"id":"n1.a",`
	if !strings.HasPrefix(string(b), want) || strings.Contains(string(b), "digits") || strings.Contains(string(b), "client_state") {
		t.Fatalf("call.incoming body %s", b)
	}
	gathered := incoming
	gathered.Event, gathered.Digits, gathered.Reason, gathered.ClientState = EventGatherResult, "5", GatherNumDigits, "menu"
	b, _ = json.Marshal(gathered)
	for _, s := range []string{`"event":"gather.result"`, `"digits":"5"`, `"reason":"num_digits"`, `"client_state":"menu"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("gather.result body lacks %s: %s", s, b)
		}
	}
}
