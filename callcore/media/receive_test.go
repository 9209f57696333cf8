package media

import (
	"slices"
	"testing"

	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/events"
)

func TestRxQueue(t *testing.T) {
	var q rxQueue
	seq := func(from, n int) []int16 {
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(from + i)
		}
		return out
	}
	frame := make([]int16, 160)
	if q.pop(frame) {
		t.Fatal("pop from an empty queue")
	}
	// 240-sample packets (30 ms) come out as 160-sample frames, in order.
	if d := q.push(seq(0, 240)); d != 0 {
		t.Fatalf("dropped %d", d)
	}
	if !q.pop(frame) || !slices.Equal(frame, seq(0, 160)) {
		t.Fatalf("first frame %v…", frame[:4])
	}
	if q.pop(frame) {
		t.Fatal("popped a partial frame")
	}
	q.push(seq(240, 240))
	if !q.pop(frame) || !slices.Equal(frame, seq(160, 160)) {
		t.Fatalf("second frame %v…", frame[:4])
	}
	// Overflow drops the oldest samples, across the ring's wrap.
	q = rxQueue{}
	for i := range rxQueueFrames + 3 {
		d := q.push(seq(i*160, 160))
		if want := 160 * max(0, i+1-rxQueueFrames); d != min(want, 160) {
			t.Fatalf("push %d dropped %d, want %d", i, d, want)
		}
	}
	for i := 3; i < rxQueueFrames+3; i++ {
		if !q.pop(frame) || !slices.Equal(frame, seq(i*160, 160)) {
			t.Fatalf("frame %d: %v…, want from %d", i, frame[:2], i*160)
		}
	}
	if q.pop(frame) || q.n != 0 {
		t.Fatal("frames left over")
	}
	if d := q.push(seq(0, len(q.buf)+7)); d != 7 || q.n != len(q.buf) {
		t.Fatalf("an oversized packet dropped %d, queue holds %d", d, q.n)
	}
}

// FuzzReceive feeds arbitrary packets (payload type, timestamp, payload:
// what the network controls) to a session's receive path, which must
// never panic, keep its queue bounded and report only valid digits.
func FuzzReceive(f *testing.F) {
	f.Add(uint8(0), uint32(160), []byte{0xff, 0x7f, 0x00, 0x80})
	f.Add(uint8(101), uint32(8000), []byte{5, 0x0a, 0x03, 0x20})
	f.Add(uint8(101), uint32(8000), []byte{5, 0x8a, 0x03, 0x20})
	f.Add(uint8(101), uint32(0), []byte{200, 0x80, 0xff, 0xff, 1, 2})
	f.Add(uint8(13), uint32(1), []byte{})
	f.Fuzz(func(t *testing.T, pt uint8, ts uint32, payload []byte) {
		s := newSession("fuzz", origin{})
		s.phase = phaseStarted
		s.setNegotiated(negotiated{codec: "PCMU", pt: 0, dtmfPT: 101, direction: events.MediaSendRecv})
		frame := make([]int16, audio.FrameSamples)
		for i := range 3 {
			ev := &events.RtpPacketReceived{PayloadType: pt, Timestamp: ts + uint32(i), Payload: payload}
			if d, ms, ok, _ := s.receive(ev); ok {
				if _, valid := audio.DigitEvent(d); !valid || ms < 0 {
					t.Fatalf("digit %q, %d ms", d, ms)
				}
			}
			if s.rx.n > len(s.rx.buf) || s.rx.n < 0 {
				t.Fatalf("queue holds %d", s.rx.n)
			}
			s.rx.pop(frame)
		}
		if s.cnt.received != 3 {
			t.Fatalf("counted %d packets", s.cnt.received)
		}
	})
}
