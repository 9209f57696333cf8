package rtp

import (
	"context"

	pionrtp "github.com/pion/rtp"

	"github.com/callbus/callbus/callcore/events"
)

// Bits of stream.reported: each send failure is reported once per stream.
const (
	reportedNoDestination uint32 = 1 << iota
	reportedBadRequest
	reportedSocket
)

// send writes one SendRtpPacket to the stream's destination. It allocates
// nothing: the header is marshalled into the stream's own buffer, which
// only this session's handler touches (the bus runs a key's events one at
// a time). A packet that cannot be sent is dropped and counted, and the
// first of each kind per stream is reported as RtpError.
func (h *Hub) send(ctx context.Context, ev *events.SendRtpPacket) {
	st := h.lookup(ev.SessionID)
	if st == nil {
		h.fail(ctx, ev.SessionID, events.RtpErrNoStream, "SendRtpPacket: the session has no RTP stream")
		return
	}
	dst := st.dest.Load()
	if dst == nil {
		st.sendDropped.Add(1)
		h.failOnce(ctx, st, reportedNoDestination, events.RtpErrNoDestination,
			"SendRtpPacket: no usable remote address and no latched source; packets are dropped")
		return
	}
	own := uint8(st.payloadType.Load())
	pt := ev.PayloadType
	if pt == 0 {
		pt = own
	}
	if pt > 127 {
		st.sendDropped.Add(1)
		h.failOnce(ctx, st, reportedBadRequest, events.RtpErrBadRequest,
			"SendRtpPacket: payload_type %d out of range 0-127; packets are dropped", pt)
		return
	}
	hdr := pionrtp.Header{Version: 2, Marker: ev.Marker, PayloadType: pt,
		SequenceNumber: ev.SequenceNumber, Timestamp: ev.Timestamp, SSRC: st.ssrc}
	n, err := hdr.MarshalTo(st.sendBuf[:])
	if err != nil || len(ev.Payload) > len(st.sendBuf)-n {
		st.sendDropped.Add(1)
		h.failOnce(ctx, st, reportedBadRequest, events.RtpErrBadRequest,
			"SendRtpPacket: payload of %d octets exceeds %d; packets are dropped", len(ev.Payload), len(st.sendBuf)-n)
		return
	}
	n += copy(st.sendBuf[n:], ev.Payload)
	if _, err := st.pair.rtp.WriteToUDPAddrPort(st.sendBuf[:n], *dst); err != nil {
		st.sendDropped.Add(1)
		h.failOnce(ctx, st, reportedSocket, events.RtpErrSocket, "SendRtpPacket: write to %v: %v", *dst, err)
		return
	}
	st.packetsSent.Add(1)
	st.octetsSent.Add(uint64(len(ev.Payload)))
	// The SR extrapolates the media clock; an RFC 4733 packet carries the
	// start of its event, not the current time.
	if pt == own || st.lastSentAt.Load() == 0 {
		st.lastTS.Store(ev.Timestamp)
		st.lastSentAt.Store(int64(h.mono()))
	}
}

// failOnce publishes an RtpError unless the stream already reported the
// kind bit.
func (h *Hub) failOnce(ctx context.Context, st *stream, bit uint32, code events.RtpErrorCode, format string, args ...any) {
	if st.reported.Or(bit)&bit != 0 {
		return
	}
	h.log.Warn("rtp send failing", "session_id", st.session, "code", code)
	h.fail(ctx, st.session, code, format, args...)
}
