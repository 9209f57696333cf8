package media

import (
	"context"
	"time"

	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/events"
)

// rxQueueFrames bounds each session's queue of received audio: 160 ms.
// Past it the oldest audio is dropped, so a far end that sends faster than
// the clock consumes (clock drift, a burst after a network stall) costs a
// click, never a growing delay.
const rxQueueFrames = 8

// maxDecode bounds the samples taken from one received packet (a 1500-byte
// datagram holds at most that many G.711 samples).
const maxDecode = 1500

// rxQueue is a ring of received 8 kHz samples, decoded. Packets of any
// packet time go in; the clock takes whole 20 ms frames out.
type rxQueue struct {
	head, n int // first: read every tick, next to the session's hot fields
	buf     [rxQueueFrames * audio.FrameSamples]int16
}

// push appends samples, dropping the oldest ones that do not fit, and
// returns how many samples it dropped.
func (q *rxQueue) push(samples []int16) int {
	dropped := 0
	if len(samples) > len(q.buf) {
		dropped = len(samples) - len(q.buf)
		samples = samples[dropped:]
	}
	if over := q.n + len(samples) - len(q.buf); over > 0 {
		q.head = (q.head + over) % len(q.buf)
		q.n -= over
		dropped += over
	}
	tail := (q.head + q.n) % len(q.buf)
	k := copy(q.buf[tail:], samples)
	copy(q.buf[:], samples[k:])
	q.n += len(samples)
	return dropped
}

// pop fills dst from the oldest samples when there are enough, and
// reports whether it did.
func (q *rxQueue) pop(dst []int16) bool {
	if q.n < len(dst) {
		return false
	}
	k := copy(dst, q.buf[q.head:])
	copy(dst[k:], q.buf[:])
	q.head = (q.head + len(dst)) % len(q.buf)
	q.n -= len(dst)
	return true
}

// rtpPacket takes one received packet: the codec's payload type is
// decoded into the receive queue; telephone-event goes to the DTMF
// receiver, whose digits are reported (and, when bridged, sent on to the
// peer with the same duration); anything else is counted and dropped. A
// packet of a session media no longer knows is a late one, and dropped.
func (h *Hub) rtpPacket(ctx context.Context, ev *events.RtpPacketReceived) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		return
	}
	digit, ms, ok, peer := s.receive(ev)
	if !ok {
		return
	}
	h.publishFor(ctx, s, &events.DtmfDetected{SessionRef: ev.SessionRef, Digit: string(digit), DurationMS: ms})
	if peer != nil {
		if err := h.queueDTMF(peer, string(digit), ms); err != nil {
			h.log.Debug("DTMF passthrough to the bridged peer", "session_id", s.id, "peer", peer.id, "error", err)
		}
	}
}

// receive applies a received packet to the session and returns the DTMF
// digit it completes, if any, with the bridged peer to pass it on to.
func (s *session) receive(ev *events.RtpPacketReceived) (digit byte, ms int, ok bool, peer *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cnt.received++
	if s.phase != phaseStarted {
		return 0, 0, false, nil
	}
	switch {
	case ev.PayloadType == s.neg.pt:
		p := ev.Payload
		if len(p) > maxDecode {
			p = p[:maxDecode]
		}
		if s.scratch == nil {
			s.scratch = make([]int16, 0, maxDecode)
		}
		s.scratch = s.enc.Decode(s.scratch[:0], p)
		if d := s.rx.push(s.scratch); d > 0 {
			s.cnt.queueDropped += uint64((d + audio.FrameSamples - 1) / audio.FrameSamples)
		}
		return 0, 0, false, nil
	case s.dtmfPT >= 0 && int(ev.PayloadType) == s.dtmfPT:
		d, dur, got, err := s.dtmfIn.Feed(ev.Timestamp, ev.Payload)
		if err != nil || !got {
			if err != nil {
				s.cnt.wrongPT++ // a telephone-event too short to parse is as useless as a wrong type
			} else {
				s.dtmfRxAt = time.Now() // an event is open until its end packet, or quiet
			}
			return 0, 0, false, nil
		}
		s.dtmfRxAt = time.Time{}
		s.cnt.dtmfReceived++
		if s.peer != nil && s.peer.live.Load() {
			peer = s.peer
		}
		return d, dur, true, peer
	}
	s.cnt.wrongPT++
	return 0, 0, false, nil
}

// rtpStatistics keeps the latest statistics of a stream and reports the
// quality they imply: MediaQualityUpdate. rtp sends a final update just
// before RtpStreamStopped, so the final quality precedes
// MediaStreamStopped.
func (h *Hub) rtpStatistics(ctx context.Context, ev *events.RtpStatisticsUpdate) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		h.log.Debug("RTP statistics for an unknown session", "session_id", ev.SessionID)
		return
	}
	s.mu.Lock()
	s.stats = ev.Stats
	s.mu.Unlock()
	h.publishFor(ctx, s, &events.MediaQualityUpdate{SessionRef: ev.SessionRef, QualityMetrics: quality(ev.Stats)})
}

// quality turns RTP statistics into QualityMetrics: loss over the packets
// expected (received + lost; RFC 3550's cumulative loss is negative when
// duplicates outnumber losses, which counts as none), and the E-model MOS
// of that loss, the jitter and the round-trip time.
func quality(st events.RtpStats) events.QualityMetrics {
	var loss float64
	if lost := st.PacketsLost; lost > 0 {
		loss = 100 * float64(lost) / (float64(st.PacketsReceived) + float64(lost))
	}
	return events.QualityMetrics{
		MOS: audio.MOS(loss, st.JitterMS, st.RttMS), PacketLossPct: loss, JitterMS: st.JitterMS,
		RttMS: st.RttMS, PacketsSent: st.PacketsSent, PacketsReceived: st.PacketsReceived,
	}
}
