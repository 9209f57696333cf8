package media

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// BenchmarkClockTick measures one tick of the sender clock: a 20 ms frame
// of silence encoded and published as SendRtpPacket for every session,
// onto a real bus whose media_to_rtp subscriber discards. The baseline
// publishes the same number of ready-made packets on the same bus: the
// difference is what media adds per packet.
func BenchmarkClockTick(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			h := benchHub(b, benchBus(b), n)
			b.ReportAllocs()
			var tick uint64
			cpu := processCPU()
			for b.Loop() {
				tick++
				h.runTick(tick)
			}
			reportPerPacket(b, n, processCPU()-cpu)
		})
	}
	// Media's own share: the same tick with a Publish that does nothing.
	b.Run("sessions=1000/bus=none", func(b *testing.B) {
		h := benchHub(b, discardBus{}, 1000)
		b.ReportAllocs()
		var tick uint64
		cpu := processCPU()
		for b.Loop() {
			tick++
			h.runTick(tick)
		}
		reportPerPacket(b, 1000, processCPU()-cpu)
	})
	b.Run("baseline=bus-only/packets=1000", func(b *testing.B) {
		bb := benchBus(b)
		ctx := bus.WithCause(context.Background(), events.ID{})
		ids := make([]string, 1000)
		for i := range ids {
			ids[i] = fmt.Sprintf("s%d", i)
		}
		b.ReportAllocs()
		cpu := processCPU()
		for b.Loop() {
			for _, id := range ids {
				p := new(outPacket)
				p.ev.SessionID, p.ev.Payload = id, p.buf[:]
				if err := bb.Publish(ctx, &p.ev); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportPerPacket(b, 1000, processCPU()-cpu)
	})
}

// reportPerPacket reports wall and CPU time per packet of a benchmark
// whose operation produces perOp packets.
func reportPerPacket(b *testing.B, perOp int, cpu time.Duration) {
	packets := float64(b.N) * float64(perOp)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/packets, "ns/packet")
	b.ReportMetric(float64(cpu.Nanoseconds())/packets, "cpu-ns/packet")
}

// benchBus returns a bus with a media_to_rtp subscriber that discards.
func benchBus(b *testing.B) *bus.Memory {
	bb := bustest.NewBus(b, bus.Config{})
	sub, err := bb.Subscribe(bus.Subscriber{Name: "rtp-discard", Channels: []string{events.ChannelMediaToRTP},
		Handle: func(context.Context, events.Envelope, events.Event) error { return nil }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Unsubscribe(context.Background()) })
	return bb
}

// discardBus is a bus whose Publish does nothing (and whose other methods
// are not used).
type discardBus struct{ bus.Bus }

func (discardBus) Publish(context.Context, events.Event) error { return nil }

// benchHub returns a hub on bb (not opened: the benchmark is its clock)
// with n started PCMU sessions that send.
func benchHub(b *testing.B, bb bus.Bus, n int) *Hub {
	h, err := New(Config{}, bb, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close(context.Background()) })
	for i := range n {
		s := newSession(fmt.Sprintf("s%d", i), origin{})
		s.phase = phaseStarted
		s.setNegotiated(negotiated{codec: "PCMU", pt: 0, dtmfPT: 101, direction: events.MediaSendRecv})
		s.setRemote("192.0.2.1", 4000+2*i)
		s.live.Store(true)
		h.sessions.Store(s.id, s)
		h.addActive(s)
	}
	return h
}
