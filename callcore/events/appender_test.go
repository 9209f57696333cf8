package events

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
)

// An event that appends its own data writes what encoding/json writes.
func TestAppenderMatchesEncodingJSON(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 3, 14, 7, 5, time.UTC)
	for _, ev := range []Event{
		&CallUpdated{},
		&CallUpdated{SessionRef: SessionRef{SessionID: "n1.<x>"}, Call: callcore.Call{ID: "n1.<x>", From: "\"A\" <sip:a@b>",
			CreatedAt: t0, Media: callcore.CallMedia{Quality: &callcore.CallQuality{MOS: 4.25, JitterMS: 1e-7}}}},
	} {
		ap, ok := ev.(appender)
		if !ok {
			t.Fatalf("%T is no appender", ev)
		}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := ap.appendData(nil); !bytes.Equal(got, want) {
			t.Errorf("%T appends\n %s\nencoding/json writes\n %s", ev, got, want)
		}
	}
}
