package events_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/callbus/callbus/callcore/events"
)

// FuzzUnmarshal feeds arbitrary frames to Unmarshal, which reads frames
// from other nodes and from WebSocket clients. It must never panic, must
// classify every failure under one sentinel, and whatever it decodes must
// survive Marshal and Unmarshal again unchanged.
func FuzzUnmarshal(f *testing.F) {
	fill := &filler{}
	for _, ev := range events.All() {
		b, err := events.Marshal(testEnvelope(), fill.fill(ev))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		env, ev, err := events.Unmarshal(in)
		if err != nil {
			if ev != nil {
				t.Fatalf("Unmarshal returned an event with error %v", err)
			}
			if !errors.Is(err, events.ErrMalformed) && !errors.Is(err, events.ErrUnknownChannel) &&
				!errors.Is(err, events.ErrUnknownType) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		out, err := events.Marshal(env, ev)
		if err != nil {
			t.Fatalf("Marshal of a decoded %T: %v", ev, err)
		}
		env2, ev2, err := events.Unmarshal(out)
		if err != nil {
			t.Fatalf("Unmarshal(Marshal(...)) = %v\nframe %s", err, out)
		}
		if reflect.TypeOf(ev2) != reflect.TypeOf(ev) {
			t.Fatalf("decoded a %T, then a %T", ev, ev2)
		}
		if want, _ := canonical(ev); !reflect.DeepEqual(ev2, want) {
			t.Fatalf("event changed:\nfirst  %#v\nsecond %#v\nframe %s", want, ev2, out)
		}
		if d := envelopeDiff(env2, env); d != "" {
			t.Fatalf("envelope changed: %s\nframe %s", d, out)
		}
	})
}
