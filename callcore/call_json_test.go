package callcore

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

func wantSameJSON(t *testing.T, c Call) {
	t.Helper()
	want, err := json.Marshal(c)
	if err != nil {
		t.Skipf("encoding/json refuses %+v: %v", c, err)
	}
	got := c.AppendJSON([]byte("prefix "))
	if !bytes.Equal(got[len("prefix "):], want) || string(got[:len("prefix ")]) != "prefix " {
		t.Fatalf("AppendJSON\n got %s\nwant %s", got, want)
	}
	got = got[len("prefix "):]
	var back Call
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%s does not decode: %v", got, err)
	}
}

func TestCallJSONMatchesEncodingJSON(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 3, 14, 7, 123456789, time.UTC)
	full := Call{ID: "n1.abc", Direction: Inbound, From: "\"Alice\" <sip:alice@example.com>;tag=1&x", To: "<sip:bob@callbus>",
		State: StateActive, CreatedAt: t0, AnsweredAt: t0.Add(time.Second), EndedAt: t0.Add(time.Minute),
		EndReason: EndRemoteHangup, SipStatus: 200, SipCallID: "abc@host", Held: true,
		Media: CallMedia{Codec: "PCMU", LocalRTP: "127.0.0.1:20000", RemoteRTP: "[::1]:4000",
			Quality: &CallQuality{MOS: 4.3, PacketLossPct: 0.1, JitterMS: 1e-7, RttMS: 1e21, PacketsSent: 1 << 40, PacketsReceived: 7}},
		RecordingID: "rec_1", BridgedWith: "n1.def", ClientState: "ü\u2028\u2029\x00\x1f\t\r\n\b\f\\\"<>&\xff\xfe end"}
	for _, tc := range []struct {
		name string
		c    Call
	}{
		{"call=zero", Call{}},
		{"call=full", full},
		{"call=no-quality", func() Call { c := full; c.Media.Quality = nil; return c }()},
		{"call=media-remote-only", Call{ID: "x", Media: CallMedia{RemoteRTP: "1.2.3.4:5"}}},
		{"call=quality-only", Call{ID: "x", Media: CallMedia{Quality: &CallQuality{MOS: -0.5, PacketLossPct: 100}}}},
		{"time=zone", Call{ID: "x", CreatedAt: t0.In(time.FixedZone("x", -5*3600+1800))}},
		{"float=tiny", Call{Media: CallMedia{Quality: &CallQuality{MOS: 5e-324, JitterMS: 123456789.125, RttMS: -1e-9}}}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantSameJSON(t, tc.c) })
	}
}

func FuzzCallJSON(f *testing.F) {
	f.Add("n1.a", "<sip:a@b>", "x\u2028y", 4.3, 0.5, int64(0), 200)
	f.Add("\xff", "&", "\x00", 1e-7, 1e22, int64(1e18), 0)
	f.Fuzz(func(t *testing.T, id, from, cs string, mos, jitter float64, nanos int64, status int) {
		if math.IsNaN(mos) || math.IsInf(mos, 0) || math.IsNaN(jitter) || math.IsInf(jitter, 0) {
			return // encoding/json refuses them
		}
		c := Call{ID: id, From: from, ClientState: cs, SipStatus: status, CreatedAt: time.Unix(0, nanos).UTC(),
			Media: CallMedia{Quality: &CallQuality{MOS: mos, JitterMS: jitter}}}
		wantSameJSON(t, c)
	})
}
