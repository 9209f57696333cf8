package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore/events"
)

func testEnvelope() events.Envelope {
	return events.Envelope{
		Seq:   1042,
		ID:    events.ID{Hi: 0x0123456789abcdef, Lo: 42},
		Time:  time.Date(2026, 11, 27, 4, 14, 7, 123456789, time.FixedZone("CET", 3600)),
		Node:  "a",
		Cause: events.ID{Hi: 0x0123456789abcdef, Lo: 41},
	}
}

func TestRoundTripEveryEvent(t *testing.T) {
	f := &filler{}
	for _, ev := range events.All() {
		t.Run("event="+name(ev), func(t *testing.T) {
			f.fill(ev)
			if zero := zeroFields(reflect.ValueOf(ev), ""); len(zero) > 0 {
				t.Fatalf("filler left zero fields %v", zero)
			}
			env := testEnvelope()
			b, err := events.Marshal(env, ev)
			if err != nil {
				t.Fatal(err)
			}
			gotEnv, got, err := events.Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if reflect.TypeOf(got) != reflect.TypeOf(ev) {
				t.Fatalf("decoded a %T, want %T", got, ev)
			}
			want, secrets := canonical(ev)
			for _, p := range secrets {
				v := reflect.ValueOf(got).Elem().FieldByName(strings.TrimPrefix(p, "."))
				if v.String() != "[redacted]" {
					t.Errorf("secret %s came back as %q, want [redacted]", p, v.String())
				}
				orig := reflect.ValueOf(ev).Elem().FieldByName(strings.TrimPrefix(p, ".")).String()
				if bytes.Contains(b, []byte(orig)) {
					t.Errorf("secret %s value %q is in the frame %s", p, orig, b)
				}
			}
			if hasSecret := (ev.Type() == "RegisterEndpoint" || ev.Type() == "Register" || ev.Type() == "RegisterAccount"); hasSecret != (len(secrets) > 0) {
				t.Errorf("secrets found %v; want some exactly for RegisterEndpoint, RegisterAccount and Register", secrets)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the event:\n got %#v\nwant %#v", got, want)
			}
			if d := envelopeDiff(gotEnv, env); d != "" {
				t.Errorf("round trip changed the envelope: %s", d)
			}
			if gotEnv.Time.Location() != time.UTC {
				t.Errorf("time decoded in %v, want UTC", gotEnv.Time.Location())
			}
		})
	}
}

func TestMarshalFrameShape(t *testing.T) {
	ev := &events.IncomingCall{SessionRef: events.SessionRef{SessionID: "s1"}, CallID: "c1"}
	b, err := events.Marshal(testEnvelope(), ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq":1042,"id":"ev_0123456789abcdef000000000000002a","time":"2026-11-27T03:14:07.123456789Z",` +
		`"node":"a","channel":"dialog_to_session","type":"IncomingCall","session_id":"s1",` +
		`"cause":"ev_0123456789abcdef0000000000000029","data":{"session_id":"s1","call_id":"c1",` +
		`"from":"","to":"","sdp_offer":"","headers":null}}`
	if string(b) != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", b, want)
	}

	// seq 0, no session and no cause are left out.
	env := events.Envelope{ID: events.ID{Lo: 1}, Time: time.Unix(0, 0), Node: "b"}
	b, err = events.Marshal(env, &events.TransportError{Error: "boom"})
	if err != nil {
		t.Fatal(err)
	}
	want = `{"id":"ev_00000000000000000000000000000001","time":"1970-01-01T00:00:00Z","node":"b",` +
		`"channel":"transport_to_dialog","type":"TransportError","data":{"error":"boom"}}`
	if string(b) != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", b, want)
	}
}

// The hand-written envelope must be byte for byte what encoding/json makes
// of a Frame, escapes included.
func TestMarshalMatchesFrame(t *testing.T) {
	nodes := []string{"a", `quote"back\slash`, "<script>", "a>b", "&amp;", "ctl\x01\n\t", "é\u2028\u2029", "bad\xffutf8", ""}
	f := &filler{}
	for _, node := range nodes {
		for _, ev := range events.All() {
			f.fill(ev)
			env := testEnvelope()
			env.Node = node
			if ev.Type() == "CallRinging" {
				env.Seq, env.Cause = 0, events.ID{}
			}
			if e, ok := ev.(*events.HoldMedia); ok {
				e.SessionID = node // session ids get escaped too
			}
			got, err := events.Marshal(env, ev)
			if err != nil {
				t.Fatal(err)
			}
			data, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(events.Frame{
				Seq: env.Seq, ID: env.ID, Time: env.Time.UTC(), Node: env.Node,
				Channel: ev.Channel(), Type: ev.Type(), SessionID: events.SessionOf(ev),
				Cause: env.Cause, Data: data,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("node=%q/event=%s: Marshal =\n%s\njson.Marshal(Frame) =\n%s", node, name(ev), got, want)
			}
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	if _, err := events.Marshal(testEnvelope(), nil); err == nil {
		t.Error("Marshal(nil event) succeeded")
	}
	if _, err := events.Marshal(testEnvelope(), (*events.IncomingCall)(nil)); err == nil {
		t.Error("Marshal(typed nil event) succeeded")
	}
	env := testEnvelope()
	env.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := events.Marshal(env, &events.CallRinging{}); err == nil || !strings.Contains(err.Error(), "year") {
		t.Errorf("Marshal(year 10000) = %v, want a year error", err)
	}
}

func TestUnmarshalHandwritten(t *testing.T) {
	in := `{"seq":7,"id":"ev_000000000000000a000000000000000b","time":"2026-11-27T03:14:07.5+01:00",
		"node":"n1","channel":"dialog_to_session","type":"IncomingCall","session_id":"sess-1",
		"future_envelope_field":{"x":1},
		"data":{"session_id":"sess-1","call_id":"abc@host","from":"<sip:alice@a>;tag=1",
		"to":"<sip:bob@b>","sdp_offer":"v=0\r\n","headers":[{"name":"Via","value":"SIP/2.0/UDP h"},
		{"name":"i","value":"abc@host"}],"added_later":true}}`
	env, ev, err := events.Unmarshal([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	call, ok := ev.(*events.IncomingCall)
	if !ok {
		t.Fatalf("decoded a %T, want *events.IncomingCall", ev)
	}
	want := &events.IncomingCall{
		SessionRef: events.SessionRef{SessionID: "sess-1"},
		CallID:     "abc@host",
		From:       "<sip:alice@a>;tag=1",
		To:         "<sip:bob@b>",
		SDPOffer:   "v=0\r\n",
		Headers:    events.Headers{{Name: "Via", Value: "SIP/2.0/UDP h"}, {Name: "i", Value: "abc@host"}},
	}
	if !reflect.DeepEqual(call, want) {
		t.Errorf("decoded %#v\nwant %#v", call, want)
	}
	if call.Headers.Get("Call-ID") != "abc@host" || call.Key() != "sess-1" {
		t.Errorf("Call-ID %q, Key %q", call.Headers.Get("Call-ID"), call.Key())
	}
	wantEnv := events.Envelope{Seq: 7, ID: events.ID{Hi: 10, Lo: 11},
		Time: time.Date(2026, 11, 27, 2, 14, 7, 5e8, time.UTC), Node: "n1"}
	if d := envelopeDiff(env, wantEnv); d != "" {
		t.Error(d)
	}
}

func TestUnmarshalSessionFromEnvelope(t *testing.T) {
	in := `{"channel":"session_to_app","type":"CallRinging","session_id":"s9","data":{}}`
	_, ev, err := events.Unmarshal([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := events.SessionOf(ev); got != "s9" {
		t.Errorf("session %q, want s9 from the envelope", got)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	cases := []struct {
		name, in string
		want     error
		mention  []string
	}{
		{"case=unknown_channel", `{"channel":"dialog_to_nowhere","type":"IncomingCall","data":{}}`,
			events.ErrUnknownChannel, []string{`"dialog_to_nowhere"`}},
		{"case=missing_channel", `{"type":"IncomingCall","data":{}}`,
			events.ErrUnknownChannel, []string{"missing channel"}},
		{"case=unknown_type", `{"channel":"dialog_to_session","type":"IncomingFax","data":{}}`,
			events.ErrUnknownType, []string{"dialog_to_session/IncomingFax"}},
		{"case=type_of_other_channel", `{"channel":"session_to_app","type":"IncomingCall","data":{}}`,
			events.ErrUnknownType, []string{"session_to_app/IncomingCall"}},
		{"case=missing_type", `{"channel":"session_to_app","data":{}}`,
			events.ErrUnknownType, []string{"missing type", "session_to_app"}},
		{"case=truncated_json", `{"channel":"session_to_app","type":`,
			events.ErrMalformed, []string{"unexpected end of JSON input"}},
		{"case=not_json", `hello`, events.ErrMalformed, []string{"invalid character 'h'"}},
		{"case=not_an_object", `[1,2]`, events.ErrMalformed, []string{"array"}},
		{"case=wrong_shape", `{"channel":"dialog_to_session","type":"IncomingCall","data":{"session_id":5}}`,
			events.ErrMalformed, []string{"dialog_to_session/IncomingCall", "session_id"}},
		{"case=data_not_object", `{"channel":"media_to_rtp","type":"SendRtpPacket","data":"x"}`,
			events.ErrMalformed, []string{"media_to_rtp/SendRtpPacket"}},
		{"case=bad_base64", `{"channel":"media_to_rtp","type":"SendRtpPacket","data":{"payload":"!!"}}`,
			events.ErrMalformed, []string{"media_to_rtp/SendRtpPacket"}},
		{"case=uint8_overflow", `{"channel":"rtp_to_media","type":"RtpPacketReceived","data":{"payload_type":300}}`,
			events.ErrMalformed, []string{"rtp_to_media/RtpPacketReceived", "300"}},
		{"case=missing_data", `{"channel":"session_to_app","type":"CallRinging"}`,
			events.ErrMalformed, []string{"session_to_app/CallRinging", "missing data"}},
		{"case=null_data", `{"channel":"session_to_app","type":"CallRinging","data":null}`,
			events.ErrMalformed, []string{"missing data"}},
		{"case=bad_id", `{"id":"ev_zz","channel":"session_to_app","type":"CallRinging","data":{}}`,
			events.ErrMalformed, []string{`"ev_zz"`}},
		{"case=bad_time", `{"time":"yesterday","channel":"session_to_app","type":"CallRinging","data":{}}`,
			events.ErrMalformed, []string{"yesterday"}},
		{"case=year_out_of_range", `{"time":"0000-01-01T00:00:00+01:00","channel":"session_to_app","type":"CallRinging","data":{}}`,
			events.ErrMalformed, []string{"year"}},
		{"case=session_mismatch", `{"channel":"session_to_app","type":"CallRinging","session_id":"a","data":{"session_id":"b"}}`,
			events.ErrMalformed, []string{`"a"`, `"b"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env, ev, err := events.Unmarshal([]byte(c.in))
			if !errors.Is(err, c.want) {
				t.Fatalf("Unmarshal(%s) error = %v, want %v", c.in, err, c.want)
			}
			for _, m := range c.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			for _, other := range []error{events.ErrUnknownChannel, events.ErrUnknownType, events.ErrMalformed} {
				if other != c.want && errors.Is(err, other) {
					t.Errorf("error %q is also %v", err, other)
				}
			}
			if ev != nil || env != (events.Envelope{}) {
				t.Errorf("Unmarshal returned %v, %v with its error", env, ev)
			}
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	ev := &events.IncomingCall{
		SessionRef: events.SessionRef{SessionID: "c0a8011e-5f6b-4c1e-9d2a-4a7b1f0e9c33"},
		CallID:     "8f14e45fceea167a5a36dedd4bea2543@10.0.0.5",
		From:       "<sip:alice@example.com>;tag=1928301774",
		To:         "<sip:bob@example.com>",
		SDPOffer: "v=0\r\no=- 3905 3905 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n" +
			"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
		Headers: events.Headers{
			{Name: "Via", Value: "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK776asdhds"},
			{Name: "Call-ID", Value: "8f14e45fceea167a5a36dedd4bea2543@10.0.0.5"},
			{Name: "CSeq", Value: "1 INVITE"},
		},
	}
	env := testEnvelope()
	b.Run("impl=Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := events.Marshal(env, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Baseline: encoding/json on the Frame struct, data encoded first.
	b.Run("impl=json_frame", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			data, err := json.Marshal(ev)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(events.Frame{Seq: env.Seq, ID: env.ID, Time: env.Time.UTC(),
				Node: env.Node, Channel: ev.Channel(), Type: ev.Type(), SessionID: ev.SessionID,
				Cause: env.Cause, Data: data}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUnmarshal(b *testing.B) {
	frame, err := events.Marshal(testEnvelope(), (&filler{}).fill(&events.IncomingCall{}))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := events.Unmarshal(frame); err != nil {
			b.Fatal(err)
		}
	}
}
