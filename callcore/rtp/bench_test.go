package rtp

import (
	"net"
	"testing"
	"time"

	pionrtp "github.com/pion/rtp"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// drain reads c until it is closed, so that the far end's socket buffer
// never fills.
func drain(c *net.UDPConn) {
	buf := make([]byte, maxDatagram)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// BenchmarkSendRtpPacket measures what one outgoing RTP packet costs:
// path=bus publishes SendRtpPacket on a memory bus to the hub, which
// marshals it and writes it to a loopback UDP socket; path=direct is the
// same marshal and write done in place, the floor. The bus run ends only
// when the hub has written every packet. Compare the two in one run:
//
//	go test -run XXX -bench SendRtpPacket -benchtime=20000x -count=3 ./callcore/rtp
func BenchmarkSendRtpPacket(b *testing.B) {
	payload := make([]byte, 160)

	b.Run("path=bus", func(b *testing.B) {
		// The bus sets a key apart when its handler runs past BlockedAfter;
		// on a loaded machine a descheduled handler does, and while the
		// publisher outruns the hub the set-apart path loses an event
		// (reported to the bus's owner). The hop measured here is the
		// plain one.
		bs := bustest.NewBus(b, bus.Config{BlockedAfter: time.Minute})
		h := newHubWith(b, bs, quiet, nil)
		rec := record(b, bs, events.ChannelRTPToMedia)
		far := udp(b, 0)
		go drain(far)
		startStream(b, bs, rec, "s", portOf(far))
		evs := make([]events.SendRtpPacket, b.N)
		for i := range evs {
			evs[i] = events.SendRtpPacket{SessionRef: ref("s"), Payload: payload,
				Timestamp: uint32(i) * 160, SequenceNumber: uint16(i)}
		}
		st := h.lookup("s")
		ctx := b.Context()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range evs {
			if err := bs.Publish(ctx, &evs[i]); err != nil {
				b.Fatal(err)
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for st.packetsSent.Load() < uint64(b.N) {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d packets sent, %d dropped; RtpErrors %+v", st.packetsSent.Load(), b.N,
					st.sendDropped.Load(), all[*events.RtpError](rec, "s"))
			}
			time.Sleep(10 * time.Microsecond)
		}
		b.StopTimer()
		if d := st.sendDropped.Load(); d != 0 {
			b.Fatalf("%d packets dropped", d)
		}
	})

	b.Run("path=direct", func(b *testing.B) {
		conn, far := udp(b, 0), udp(b, 0)
		go drain(far)
		dst := addrOf(far)
		var buf [maxDatagram]byte
		sent := 0
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			hdr := pionrtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(i),
				Timestamp: uint32(i) * 160, SSRC: 0x1234}
			n, err := hdr.MarshalTo(buf[:])
			if err != nil {
				b.Fatal(err)
			}
			n += copy(buf[n:], payload)
			if _, err := conn.WriteToUDPAddrPort(buf[:n], dst); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		b.StopTimer()
		if sent != b.N {
			b.Fatalf("%d of %d packets sent", sent, b.N)
		}
	})
}
