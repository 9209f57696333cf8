package rtp

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// Statistics are published every StatsInterval, and once more when the
// stream stops, before RtpStreamStopped, with the stream's final counts.
func TestStatisticsUpdates(t *testing.T) {
	b := newBus(t)
	newHubWith(t, b, Config{RTCPInterval: time.Hour, StatsInterval: 20 * time.Millisecond}, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	far := udp(t, 0)
	port := startStream(t, b, rec, "s", portOf(far))

	// Ten packets sent, seqs 3 and 7 lost.
	received := 0
	for seq := uint16(1); seq <= 10; seq++ {
		if seq == 3 || seq == 7 {
			continue
		}
		write(t, far, port, rtpPacket(t, 42, seq, uint32(seq)*160, 0, false, make([]byte, 160)))
		received++
	}
	for i := range 3 {
		publish(t, b, &events.SendRtpPacket{SessionRef: ref("s"), Payload: make([]byte, 80),
			Timestamp: uint32(i) * 160, SequenceNumber: uint16(i)})
		readRTP(t, far)
	}
	want := events.RtpStats{PacketsSent: 3, OctetsSent: 240, PacketsReceived: uint64(received),
		OctetsReceived: uint64(received) * 160, PacketsLost: 2}
	bustest.CheckFor(t, 5*time.Second, func() error {
		ups := all[*events.RtpStatisticsUpdate](rec, "s")
		if len(ups) == 0 {
			return fmt.Errorf("no RtpStatisticsUpdate yet")
		}
		if got := withoutJitter(ups[len(ups)-1].Stats); got != want {
			return fmt.Errorf("latest stats %+v, want %+v", got, want)
		}
		return nil
	})

	publish(t, b, &events.StopRtpStream{SessionRef: ref("s")})
	waitFor[*events.RtpStreamStopped](t, rec, "s")
	types := rec.TypesOf("s")
	if n := len(types); n < 2 || types[n-2] != "RtpStatisticsUpdate" || types[n-1] != "RtpStreamStopped" {
		t.Fatalf("events end with %v: want RtpStatisticsUpdate then RtpStreamStopped", types[max(0, n-3):])
	}
	ups := all[*events.RtpStatisticsUpdate](rec, "s")
	final := ups[len(ups)-1].Stats
	if withoutJitter(final) != want || final.JitterMS < 0 || math.IsNaN(final.JitterMS) {
		t.Fatalf("final stats %+v, want %+v and a jitter ≥ 0", final, want)
	}
	// The periodic updates came before it, from the timer alone.
	if len(ups) < 2 {
		t.Fatalf("%d RtpStatisticsUpdate, want the periodic ones and the final one", len(ups))
	}
	if i := slices.Index(types, "RtpStreamStopped"); i != len(types)-1 {
		t.Fatalf("RtpStreamStopped at %d of %v, want last", i, types)
	}
}

// Jitter (RFC 3550 A.8) with the arrival clock driven by hand, so that
// the expected value is exact: packets paced exactly as their timestamps
// give 0 even with RFC 4733 packets (which repeat a timestamp) between
// them; packets arriving 10 and 30 ms apart give the A.8 recurrence of
// |D| = 80 timestamp units.
func TestJitter(t *testing.T) {
	cases := []struct {
		name      string
		gaps      []time.Duration // arrival gaps, cycled
		withEvent bool
		want      func(updates int) float64 // ms
	}{
		{"pacing=exact", []time.Duration{20 * time.Millisecond}, false,
			func(int) float64 { return 0 }},
		{"pacing=exact/dtmf=between", []time.Duration{20 * time.Millisecond}, true,
			func(int) float64 { return 0 }},
		{"pacing=10ms-30ms", []time.Duration{10 * time.Millisecond, 30 * time.Millisecond}, false,
			func(n int) float64 {
				j := 0.0
				for range n {
					j += (80 - j) / 16
				}
				return j / 8
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBus(t)
			clock := &fakeClock{}
			h := newHubWith(t, b, quiet, clock)
			rec := record(t, b, events.ChannelRTPToMedia)
			far := udp(t, 0)
			port := startStream(t, b, rec, "s", portOf(far))

			var seq uint16
			var n uint64
			deliver := func(pt uint8, ts uint32) {
				t.Helper()
				seq++
				n++
				write(t, far, port, rtpPacket(t, 9, seq, ts, pt, false, []byte{1, 2, 3, 4}))
				bustest.CheckFor(t, 5*time.Second, func() error {
					if got := info(t, h, "s").PacketsReceived; got != n {
						return fmt.Errorf("received %d, want %d", got, n)
					}
					return nil
				})
			}
			const packets = 40
			for i := range packets {
				if i > 0 {
					clock.advance(c.gaps[(i-1)%len(c.gaps)])
				}
				ts := uint32(i) * 160
				deliver(0, ts)
				if c.withEvent && i%4 == 1 {
					// A telephone event: its packets carry the event's
					// start time while arriving 5 and 10 ms later.
					clock.advance(5 * time.Millisecond)
					deliver(101, ts)
					clock.advance(5 * time.Millisecond)
					deliver(101, ts)
					clock.advance(-10 * time.Millisecond)
				}
			}
			got, want := info(t, h, "s").JitterMS, c.want(packets-1)
			if math.Abs(got-want) > 1e-9 {
				t.Fatalf("jitter %v ms, want %v", got, want)
			}
			if c.name == "pacing=10ms-30ms" && got < 9 {
				t.Fatalf("jitter %v ms: the recurrence should be close to 10 after %d packets", got, packets)
			}
		})
	}
}

// withoutJitter zeroes the jitter of s: with the real clock it depends on
// the machine (TestJitter drives it exactly).
func withoutJitter(s events.RtpStats) events.RtpStats {
	s.JitterMS = 0
	return s
}

// One timer serves every stream: a hundred streams cost their two readers
// each and nothing more, and every one of them still reports on time.
func TestOneTimerForManyStreams(t *testing.T) {
	const n = 100
	b := newBus(t)
	h := newHubWith(t, b, Config{Ports: freePairs(t, n), RTCPInterval: 20 * time.Millisecond,
		StatsInterval: 20 * time.Millisecond}, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	far := newPeer(t)
	go drain(far.rtp)
	go drain(far.rtcp)
	before := runtime.NumGoroutine()
	for i := range n {
		startStream(t, b, rec, fmt.Sprint("s", i), far.port)
	}
	// Readers: 2 per stream. A timer per stream would add n more; the
	// slack covers the bus's own workers.
	if extra := runtime.NumGoroutine() - before; extra > 2*n+n/4 {
		t.Fatalf("%d goroutines for %d streams, want about %d", extra, n, 2*n)
	}
	bustest.CheckFor(t, 10*time.Second, func() error {
		for i := range n {
			s := fmt.Sprint("s", i)
			if sent := info(t, h, s).RTCPSent; sent == 0 {
				return fmt.Errorf("%s sent no RTCP yet", s)
			}
			if len(all[*events.RtpStatisticsUpdate](rec, s)) == 0 {
				return fmt.Errorf("%s published no statistics yet", s)
			}
		}
		return nil
	})
}
