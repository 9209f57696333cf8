package audio

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDTMFEventMarshalParse(t *testing.T) {
	cases := []DTMFEvent{
		{Event: 0, Volume: 10, Duration: 160},
		{Event: 11, End: true, Volume: 63, Duration: 800},
		{Event: 15, End: false, Volume: 0, Duration: 65535},
		{Event: 16, End: true, Volume: 7, Duration: 0},
	}
	for _, e := range cases {
		t.Run(fmt.Sprintf("event=%d/end=%v", e.Event, e.End), func(t *testing.T) {
			b := e.Marshal([]byte{0xEE})
			if len(b) != 5 || b[0] != 0xEE {
				t.Fatalf("Marshal did not append 4 bytes: % X", b)
			}
			got, err := ParseDTMFEvent(b[1:])
			if err != nil || got != e {
				t.Fatalf("round trip: %+v, %v; want %+v", got, err, e)
			}
		})
	}
	// Wire layout of RFC 4733 §2.3: event, E|R|volume, duration (big endian).
	if b := (DTMFEvent{Event: 5, End: true, Volume: 10, Duration: 0x0320}).Marshal(nil); string(b) != "\x05\x8a\x03\x20" {
		t.Errorf("wire bytes % X", b)
	}
	// The reserved bit is ignored; extra bytes are ignored.
	got, err := ParseDTMFEvent([]byte{1, 0x40 | 0x80 | 5, 0, 160, 9, 9, 9, 9})
	if err != nil || got != (DTMFEvent{Event: 1, End: true, Volume: 5, Duration: 160}) {
		t.Errorf("reserved bit / long payload: %+v, %v", got, err)
	}
	for n := range 4 {
		if _, err := ParseDTMFEvent(make([]byte, n)); !errors.Is(err, ErrShortDTMF) {
			t.Errorf("len=%d: err %v, want ErrShortDTMF", n, err)
		}
	}
}

func TestDigitEvents(t *testing.T) {
	const digits = "0123456789*#ABCD"
	for i := range len(digits) {
		ev, ok := DigitEvent(digits[i])
		if !ok || int(ev) != i {
			t.Errorf("DigitEvent(%q) = %d, %v; want %d", digits[i], ev, ok, i)
		}
		d, ok := EventDigit(uint8(i))
		if !ok || d != digits[i] {
			t.Errorf("EventDigit(%d) = %q, %v", i, d, ok)
		}
	}
	for _, c := range "abcd" {
		if ev, ok := DigitEvent(byte(c)); !ok || ev != uint8(c-'a'+12) {
			t.Errorf("DigitEvent(%q) = %d, %v", c, ev, ok)
		}
	}
	for _, c := range []byte{'E', 'e', ' ', '+', 0, 0xFF, '/', ':'} {
		if _, ok := DigitEvent(c); ok {
			t.Errorf("DigitEvent(%q) accepted", c)
		}
	}
	for ev := 16; ev < 256; ev++ {
		if _, ok := EventDigit(uint8(ev)); ok {
			t.Errorf("EventDigit(%d) accepted", ev)
		}
	}
}

func TestValidDigits(t *testing.T) {
	cases := []struct {
		in   string
		bad  string // "" when valid; else a substring of the error
		name string
	}{
		{"123", "", "digits=123"},
		{"0123456789*#ABCD", "", "digits=all"},
		{"", "no digits", "digits=empty"},
		{"12x4", `'x' at position 2`, "digits=12x4"},
		{"1a", `'a' at position 1`, "digits=lowercase"},
		{"1 2", `' ' at position 1`, "digits=space"},
		{"9E", `'E' at position 1`, "digits=E"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidDigits(c.in)
			switch {
			case c.bad == "" && err != nil:
				t.Errorf("ValidDigits(%q) = %v", c.in, err)
			case c.bad != "" && (!errors.Is(err, ErrInvalidDigit) || !strings.Contains(err.Error(), c.bad)):
				t.Errorf("ValidDigits(%q) = %v, want ErrInvalidDigit naming %s", c.in, err, c.bad)
			}
		})
	}
}

// pkt is one received telephone-event packet in a receiver scenario.
type pkt struct {
	ts  uint32
	ev  uint8
	end bool
	dur uint16
}

func (p pkt) payload() []byte {
	return DTMFEvent{Event: p.ev, End: p.end, Volume: 10, Duration: p.dur}.Marshal(nil)
}

// got is one digit reported by the receiver: at which packet (len(packets)
// for Flush) and with which duration.
type got struct {
	at    int
	digit byte
	ms    int
}

// runReceiver feeds the packets and then flushes until nothing is left.
func runReceiver(t *testing.T, packets []pkt) []got {
	t.Helper()
	var r DTMFReceiver
	var out []got
	for i, p := range packets {
		d, ms, ok, err := r.Feed(p.ts, p.payload())
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if ok {
			out = append(out, got{i, d, ms})
		}
	}
	for {
		d, ms, ok := r.Flush()
		if !ok {
			break
		}
		out = append(out, got{len(packets), d, ms})
		if len(out) > len(packets)+2 {
			t.Fatalf("Flush keeps reporting: %v", out)
		}
	}
	return out
}

// digitPackets is the packet sequence of one digit as a sender makes it:
// durations growing by 160, then three ends.
func digitPackets(ts uint32, ev uint8, ticks int) []pkt {
	var ps []pkt
	for i := 1; i <= ticks; i++ {
		ps = append(ps, pkt{ts, ev, false, uint16(160 * i)})
	}
	for range 3 {
		ps = append(ps, pkt{ts, ev, true, uint16(160 * ticks)})
	}
	return ps
}

func TestDTMFReceiver(t *testing.T) {
	one := digitPackets(1000, 1, 5)   // '1', 100 ms, packets 0-4 then ends 5-7
	two := digitPackets(2600, 2, 4)   // '2', 80 ms
	hash := digitPackets(4000, 11, 3) // '#', 60 ms
	cat := func(parts ...[]pkt) []pkt {
		var all []pkt
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	dup := func(ps []pkt) []pkt {
		var all []pkt
		for _, p := range ps {
			all = append(all, p, p)
		}
		return all
	}
	cases := []struct {
		name    string
		packets []pkt
		want    []got
	}{
		{"case=normal", one, []got{{5, '1', 100}}},
		{"case=three-digits", cat(one, two, hash), []got{{5, '1', 100}, {8 + 4, '2', 80}, {15 + 3, '#', 60}}},
		{"case=start-lost", one[1:], []got{{4, '1', 100}}},
		{"case=only-one-end", one[5:6], []got{{0, '1', 100}}},
		{"case=ends-lost-then-next", cat(one[:5], two), []got{{5, '1', 100}, {5 + 4, '2', 80}}},
		{"case=ends-lost-then-end-only", cat(one[:3], two[4:5]), []got{{3, '1', 60}, {4, '2', 80}}},
		{"case=ends-lost-then-end-only-then-more", cat(one[:3], two[4:5], hash), []got{{3, '1', 60}, {4, '2', 80}, {4 + 3, '#', 60}}},
		{"case=duplicated", dup(one), []got{{10, '1', 100}}},
		{"case=out-of-order-within", []pkt{one[0], one[2], one[5], one[1], one[6], one[3], one[7]}, []got{{2, '1', 100}}},
		{"case=next-start-before-end", []pkt{one[0], one[1], two[0], one[5], one[6], two[1], two[4]}, []got{{2, '1', 40}, {6, '2', 80}}},
		{"case=flush-open", one[:2], []got{{2, '1', 40}}},
		{"case=flush-nothing", nil, nil},
		{"case=flash-ignored", []pkt{{1000, 16, false, 160}, {1000, 16, true, 320}}, nil},
		{"case=wraparound", cat(digitPackets(0xFFFFFF00, 3, 2), digitPackets(0x100, 4, 2)), []got{{2, '3', 40}, {7, '4', 40}}},
		{"case=stale-older-event", cat(two, one), []got{{4, '2', 80}}},
		{"case=late-end-after-next", cat(one[:5], two[:2], one[5:]), []got{{5, '1', 100}, {10, '2', 40}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := runReceiver(t, c.packets)
			if fmt.Sprint(res) != fmt.Sprint(c.want) {
				t.Errorf("reported %v, want %v", res, c.want)
			}
		})
	}
}

func TestDTMFReceiverErrors(t *testing.T) {
	var r DTMFReceiver
	if _, _, ok, err := r.Feed(1, []byte{1, 2}); !errors.Is(err, ErrShortDTMF) || ok {
		t.Errorf("short payload: ok %v, err %v", ok, err)
	}
	// A bad packet does not disturb the event in progress.
	r.Feed(1, pkt{1, 7, false, 160}.payload())
	r.Feed(1, nil)
	if d, ms, ok, _ := r.Feed(1, pkt{1, 7, true, 480}.payload()); !ok || d != '7' || ms != 60 {
		t.Errorf("after a bad packet: %q %d %v", d, ms, ok)
	}
}

func TestDTMFReceiverHistory(t *testing.T) {
	// Twenty digits in a row, each with its ends repeated after the next
	// digit started: every digit is reported once.
	var ps []pkt
	for i := range 20 {
		ps = append(ps, digitPackets(uint32(1000+i*1000), uint8(i%16), 3)...)
	}
	res := runReceiver(t, append(ps, ps[len(ps)-3:]...))
	if len(res) != 20 {
		t.Fatalf("reported %d digits, want 20: %v", len(res), res)
	}
}

func TestDTMFSender(t *testing.T) {
	cases := []struct {
		name      string
		digit     byte
		ms, ptime int
		durations []uint16 // of the packets before the ends
	}{
		{"duration=100/ptime=20", '5', 100, 20, []uint16{160, 320, 480, 640, 800}},
		{"duration=110/ptime=20", '#', 110, 20, []uint16{160, 320, 480, 640, 800, 880}},
		{"duration=40/ptime=10", 'a', 40, 10, []uint16{80, 160, 240, 320}},
		{"duration=20/ptime=20", '0', 20, 20, []uint16{160}},
		{"duration=250/ptime=30", 'D', 250, 30, []uint16{240, 480, 720, 960, 1200, 1440, 1680, 1920, 2000}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := NewDTMFSender(c.digit, c.ms, c.ptime)
			if err != nil {
				t.Fatal(err)
			}
			want := len(c.durations) + 3
			if s.Packets() != want {
				t.Errorf("Packets() = %d, want %d", s.Packets(), want)
			}
			wantEv, _ := DigitEvent(c.digit)
			final := c.durations[len(c.durations)-1]
			var r DTMFReceiver
			reported := 0
			for i := range want {
				ev, marker, done := s.Next()
				if ev.Event != wantEv || ev.Volume != DTMFVolume {
					t.Errorf("packet %d: %+v", i, ev)
				}
				if marker != (i == 0) {
					t.Errorf("packet %d: marker %v", i, marker)
				}
				if done != (i == want-1) {
					t.Errorf("packet %d: done %v", i, done)
				}
				if i < len(c.durations) {
					if ev.End || ev.Duration != c.durations[i] {
						t.Errorf("packet %d: end %v duration %d, want %d", i, ev.End, ev.Duration, c.durations[i])
					}
				} else if !ev.End || ev.Duration != final {
					t.Errorf("end packet %d: end %v duration %d, want %d", i, ev.End, ev.Duration, final)
				}
				d, ms, ok, err := r.Feed(12345, ev.Marshal(nil))
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					reported++
					if d != "0123456789*#ABCD"[wantEv] || ms != c.ms {
						t.Errorf("receiver got %q %d ms, want %q %d ms", d, ms, c.digit, c.ms)
					}
				}
			}
			if reported != 1 {
				t.Errorf("receiver reported %d digits", reported)
			}
			// Past the end, Next keeps returning the final end packet.
			ev, marker, done := s.Next()
			if !done || marker || !ev.End || ev.Duration != final {
				t.Errorf("after the end: %+v marker %v done %v", ev, marker, done)
			}
		})
	}
}

func TestDTMFSenderErrors(t *testing.T) {
	cases := []struct {
		name      string
		digit     byte
		ms, ptime int
		want      error
	}{
		{"digit=x", 'x', 100, 20, ErrInvalidDigit},
		{"ptime=0", '1', 100, 0, ErrInvalidDTMFTiming},
		{"duration=10/ptime=20", '1', 10, 20, ErrInvalidDTMFTiming},
		{"duration=9000", '1', 9000, 20, ErrInvalidDTMFTiming},
		{"duration=-5", '1', -5, 20, ErrInvalidDTMFTiming},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewDTMFSender(c.digit, c.ms, c.ptime); !errors.Is(err, c.want) {
				t.Errorf("err %v, want %v", err, c.want)
			}
		})
	}
	if s, err := NewDTMFSender('1', 8000, 20); err != nil || s.Packets() != 403 {
		t.Errorf("longest digit: %v, %v", s, err)
	}
}

func FuzzParseDTMFEvent(f *testing.F) {
	f.Add([]byte{1, 0x8a, 3, 0x20})
	f.Add([]byte{})
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseDTMFEvent(b)
		if len(b) < 4 {
			if !errors.Is(err, ErrShortDTMF) {
				t.Fatalf("%d bytes: err %v", len(b), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		m := e.Marshal(nil)
		want := []byte{b[0], b[1] &^ 0x40, b[2], b[3]} // the reserved bit is dropped
		if string(m) != string(want) {
			t.Fatalf("re-marshal % X, want % X", m, want)
		}
	})
}

// FuzzDTMFReceiver feeds arbitrary packets: each 6 bytes are a timestamp
// step (2 bytes, signed, in 160s) and a payload of 4 bytes; a short tail is
// fed as a payload too (an error when under 4 bytes). Never more digits
// than timestamps, only DTMF digits, and Flush runs dry.
func FuzzDTMFReceiver(f *testing.F) {
	seed := func(ps []pkt) []byte {
		var b []byte
		prev := uint32(0)
		for _, p := range ps {
			step := int16(int32(p.ts-prev) / 160)
			prev += uint32(int32(step) * 160)
			b = append(b, byte(uint16(step)>>8), byte(step))
			b = append(b, p.payload()...)
		}
		return b
	}
	f.Add(seed(digitPackets(1600, 1, 5)))
	f.Add(seed(append(digitPackets(1600, 1, 3)[:2], digitPackets(3200, 2, 2)...)))
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r DTMFReceiver
		ts := uint32(0)
		seen := map[uint32]bool{}
		digits := 0
		check := func(d byte, ok bool) {
			if !ok {
				return
			}
			digits++
			if !strings.ContainsRune("0123456789*#ABCD", rune(d)) {
				t.Fatalf("reported %q", d)
			}
		}
		for len(b) >= 6 {
			ts += uint32(int32(int16(uint16(b[0])<<8|uint16(b[1])))) * 160
			seen[ts] = true
			d, _, ok, err := r.Feed(ts, b[2:6])
			if err != nil {
				t.Fatal(err)
			}
			check(d, ok)
			b = b[6:]
		}
		// The tail (0-5 bytes) is a short payload, or a valid one.
		seen[ts] = true
		d, _, ok, err := r.Feed(ts, b)
		if (len(b) < 4) != (err != nil) || (err != nil && ok) {
			t.Fatalf("%d-byte payload: ok %v err %v", len(b), ok, err)
		}
		check(d, ok)
		for range 4 {
			d, _, ok := r.Flush()
			check(d, ok)
		}
		if _, _, ok := r.Flush(); ok {
			t.Fatal("Flush keeps reporting")
		}
		if digits > len(seen) {
			t.Fatalf("%d digits from %d timestamps", digits, len(seen))
		}
	})
}
