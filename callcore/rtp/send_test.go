package rtp

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// What media asks for is what goes on the wire: the event's sequence
// number, timestamp, marker and payload type (the stream's when 0), the
// stream's one SSRC, the payload byte for byte, and nothing else.
func TestSendPath(t *testing.T) {
	b := newBus(t)
	h := newHubWith(t, b, quiet, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	far := udp(t, 0)
	publish(t, b, &events.StartRtpStream{SessionRef: ref("s"), RemoteAddress: "127.0.0.1",
		RemotePort: portOf(far), PayloadType: 8, Codec: "PCMA"})
	port := waitFor[*events.RtpStreamStarted](t, rec, "s").LocalPort

	sends := []*events.SendRtpPacket{
		{SessionRef: ref("s"), Payload: bytes.Repeat([]byte{0xd5}, 160), Timestamp: 1000, SequenceNumber: 65535, Marker: true},
		{SessionRef: ref("s"), Payload: []byte{1, 2, 3}, Timestamp: 1160, SequenceNumber: 0},
		{SessionRef: ref("s"), Payload: []byte{5, 0x80, 0, 160}, Timestamp: 1160, SequenceNumber: 1, PayloadType: 101, Marker: true},
	}
	for _, ev := range sends {
		publish(t, b, ev)
	}
	ssrc := info(t, h, "s").SSRC
	for i, want := range sends {
		p, raw, from := readRTP(t, far)
		wantPT := want.PayloadType
		if wantPT == 0 {
			wantPT = 8
		}
		if p.Version != 2 || p.SequenceNumber != want.SequenceNumber || p.Timestamp != want.Timestamp ||
			p.Marker != want.Marker || p.PayloadType != wantPT || p.SSRC != ssrc {
			t.Fatalf("packet %d header %+v: want V=2 seq %d ts %d marker %v pt %d ssrc %d", i, p.Header,
				want.SequenceNumber, want.Timestamp, want.Marker, wantPT, ssrc)
		}
		if p.Padding || p.Extension || len(p.CSRC) != 0 || len(raw) != 12+len(want.Payload) {
			t.Fatalf("packet %d: %d octets, padding %v, extension %v, %d CSRCs: want a bare 12-octet header",
				i, len(raw), p.Padding, p.Extension, len(p.CSRC))
		}
		if !bytes.Equal(p.Payload, want.Payload) {
			t.Fatalf("packet %d payload % x, want % x", i, p.Payload, want.Payload)
		}
		if from.Port() != uint16(port) {
			t.Fatalf("packet %d came from port %d, want the stream's %d", i, from.Port(), port)
		}
	}
	// The counters move just after the write.
	bustest.CheckFor(t, 5*time.Second, func() error {
		if i := info(t, h, "s"); i.PacketsSent != 3 || i.OctetsSent != 167 || i.SendDropped != 0 {
			return fmt.Errorf("sent %d packets, %d octets, %d dropped: want 3, 167, 0", i.PacketsSent, i.OctetsSent, i.SendDropped)
		}
		return nil
	})
	publish(t, b, &events.StopRtpStream{SessionRef: ref("s")})
	waitFor[*events.RtpStreamStopped](t, rec, "s")
	if errs := all[*events.RtpError](rec, "s"); len(errs) != 0 {
		t.Fatalf("RtpErrors %+v", errs)
	}
}

// Without a usable destination a packet is dropped and counted, and the
// stream reports it once, not once per packet. A latched source gives it
// somewhere to send.
func TestSendWithoutDestination(t *testing.T) {
	cases := []struct {
		name string
		addr string
		port int
	}{
		{"remote=port-zero", "127.0.0.1", 0},
		{"remote=empty-address", "", 5004},
		{"remote=unparsable", "phone.example", 5004},
		{"remote=unspecified", "0.0.0.0", 5004},
	}
	b := newBus(t)
	h := newHubWith(t, b, quiet, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := fmt.Sprintf("s%d", i)
			publish(t, b, &events.StartRtpStream{SessionRef: ref(s), RemoteAddress: c.addr, RemotePort: c.port, Codec: "PCMU"})
			port := waitFor[*events.RtpStreamStarted](t, rec, s).LocalPort
			for seq := range 5 {
				publish(t, b, &events.SendRtpPacket{SessionRef: ref(s), Payload: []byte{1}, SequenceNumber: uint16(seq)})
			}
			bustest.CheckFor(t, 5e9, func() error {
				if i := info(t, h, s); i.SendDropped != 5 || i.PacketsSent != 0 {
					return fmt.Errorf("dropped %d, sent %d: want 5, 0", i.SendDropped, i.PacketsSent)
				}
				return nil
			})
			wantRtpError(t, waitFor[*events.RtpError](t, rec, s), events.RtpErrNoDestination)

			// The far end speaks first: the stream answers it there.
			far := udp(t, 0)
			write(t, far, port, rtpPacket(t, 7, 1, 0, 0, false, []byte{9}))
			waitFor[*events.RtpPacketReceived](t, rec, s)
			publish(t, b, &events.SendRtpPacket{SessionRef: ref(s), Payload: []byte{2}, SequenceNumber: 5})
			if p, _, _ := readRTP(t, far); p.SequenceNumber != 5 {
				t.Fatalf("latched far end got seq %d, want 5", p.SequenceNumber)
			}
			publish(t, b, &events.StopRtpStream{SessionRef: ref(s)})
			waitFor[*events.RtpStreamStopped](t, rec, s)
			if n := len(all[*events.RtpError](rec, s)); n != 1 {
				t.Fatalf("%d RtpErrors, want still 1", n)
			}
		})
	}
}

func TestSendRefusals(t *testing.T) {
	b := newBus(t)
	h := newHubWith(t, b, quiet, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	far := udp(t, 0)
	startStream(t, b, rec, "s", portOf(far))

	publish(t, b, &events.SendRtpPacket{SessionRef: ref("s"), Payload: make([]byte, maxDatagram)})
	publish(t, b, &events.SendRtpPacket{SessionRef: ref("s"), Payload: []byte{1}, PayloadType: 128})
	publish(t, b, &events.SendRtpPacket{SessionRef: ref("s"), Payload: []byte{1}, SequenceNumber: 9})
	if p, _, _ := readRTP(t, far); p.SequenceNumber != 9 {
		t.Fatalf("first packet on the wire has seq %d, want 9 (the refused ones must not be sent)", p.SequenceNumber)
	}
	bustest.CheckFor(t, 5*time.Second, func() error {
		if i := info(t, h, "s"); i.SendDropped != 2 || i.PacketsSent != 1 {
			return fmt.Errorf("dropped %d, sent %d: want 2, 1", i.SendDropped, i.PacketsSent)
		}
		return nil
	})
	// Once the stop is answered, every RtpError of the stream is recorded
	// (the bus keeps a session's events in order).
	publish(t, b, &events.StopRtpStream{SessionRef: ref("s")})
	waitFor[*events.RtpStreamStopped](t, rec, "s")
	errs := all[*events.RtpError](rec, "s")
	if len(errs) != 1 {
		t.Fatalf("RtpErrors %+v: want one bad_request", errs)
	}
	wantRtpError(t, errs[0], events.RtpErrBadRequest)

	publish(t, b, &events.SendRtpPacket{SessionRef: ref("nobody"), Payload: []byte{1}})
	if e := waitFor[*events.RtpError](t, rec, "nobody"); !strings.HasPrefix(e.Error, "no_stream: ") {
		t.Fatalf("RtpError %q, want no_stream", e.Error)
	}
}

// Sending allocates nothing: media sends 50 packets a second per call.
func TestSendAllocatesNothing(t *testing.T) {
	b := newBus(t)
	h := newHubWith(t, b, quiet, nil)
	rec := record(t, b, events.ChannelRTPToMedia)
	far := udp(t, 0)
	startStream(t, b, rec, "s", portOf(far))
	ev := &events.SendRtpPacket{SessionRef: ref("s"), Payload: make([]byte, 160)}
	before := info(t, h, "s").PacketsSent
	allocs := testing.AllocsPerRun(200, func() {
		ev.SequenceNumber++
		ev.Timestamp += 160
		h.send(t.Context(), ev)
	})
	if allocs != 0 {
		t.Fatalf("send allocates %.1f times per packet, want 0", allocs)
	}
	if sent := info(t, h, "s").PacketsSent - before; sent != 201 {
		t.Fatalf("%d packets sent, want 201", sent)
	}
}
