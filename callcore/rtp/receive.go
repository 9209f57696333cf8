package rtp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	pionrtp "github.com/pion/rtp"

	"github.com/callbus/callbus/callcore/events"
)

// RFC 3550 Appendix A.1.
const (
	maxDropout    = 3000
	maxMisorder   = 100
	minSequential = 2
	seqMod        = 1 << 16
)

// clockRate is the RTP clock of the codecs callbus speaks (G.711 and
// telephone-event/8000): jitter and SR timestamps are in its units.
const clockRate = 8000

// seqStats is the reception state of one remote source: RFC 3550 A.1
// sequence validation, A.3 loss and A.8 jitter.
type seqStats struct {
	maxSeq        uint16
	cycles        uint32 // count of sequence number wraps, shifted by 16
	baseSeq       uint32
	badSeq        uint32
	received      uint32
	expectedPrior uint32
	receivedPrior uint32
	// carried is the loss of the sources and sequence resyncs before
	// this one, so that the stream's cumulative loss never resets.
	carried int64

	transit     uint32 // A.8, in timestamp units
	haveTransit bool
	jitter      float64 // timestamp units
}

// init starts counting at seq (A.1 init_seq), keeping what was carried.
func (s *seqStats) init(seq uint16) {
	s.baseSeq = uint32(seq)
	s.maxSeq = seq
	s.badSeq = seqMod + 1 // so that seq == badSeq is false
	s.cycles = 0
	s.received = 0
	s.receivedPrior = 0
	s.expectedPrior = 0
	s.haveTransit = false
}

// update validates seq of a packet of the source (A.1 update_seq after
// probation) and counts it. It returns false for a packet to drop: the
// first of a very large jump. The second packet in sequence after such a
// jump resyncs: the far end restarted its numbering.
func (s *seqStats) update(seq uint16) bool {
	udelta := seq - s.maxSeq
	switch {
	case udelta < maxDropout:
		if seq < s.maxSeq {
			s.cycles += seqMod
		}
		s.maxSeq = seq
	case int(udelta) <= seqMod-maxMisorder:
		if uint32(seq) != s.badSeq {
			s.badSeq = (uint32(seq) + 1) & (seqMod - 1)
			return false
		}
		s.carried += s.lost()
		s.init(seq)
	default:
		// A duplicate or a reordered packet: counted, the maximum stays.
	}
	s.received++
	return true
}

// extendedMax is the extended highest sequence number received.
func (s *seqStats) extendedMax() uint32 { return s.cycles + uint32(s.maxSeq) }

// expected is how many packets the source sent since counting began (A.3).
func (s *seqStats) expected() uint32 { return s.extendedMax() - s.baseSeq + 1 }

// lost is the source's cumulative loss (A.3), negative with duplicates.
func (s *seqStats) lost() int64 { return int64(s.expected()) - int64(s.received) }

// totalLost is the stream's cumulative loss over all its sources.
func (s *seqStats) totalLost() int64 { return s.carried + s.lost() }

// interval returns the fraction lost since the last call, in 1/256
// (A.3), and starts a new interval.
func (s *seqStats) interval() uint8 {
	expected := s.expected()
	expInt := expected - s.expectedPrior
	s.expectedPrior = expected
	recInt := s.received - s.receivedPrior
	s.receivedPrior = s.received
	lostInt := int64(expInt) - int64(recInt)
	if expInt == 0 || lostInt <= 0 {
		return 0
	}
	return uint8(min((lostInt<<8)/int64(expInt), 255))
}

// updateJitter folds one packet into the interarrival jitter (A.8);
// arrival and ts are in timestamp units.
func (s *seqStats) updateJitter(arrival, ts uint32) {
	transit := arrival - ts
	if s.haveTransit {
		d := int64(int32(transit - s.transit))
		if d < 0 {
			d = -d
		}
		s.jitter += (float64(d) - s.jitter) / 16
	}
	s.transit, s.haveTransit = transit, true
}

// arrivalUnits converts a mono time into RTP timestamp units.
func arrivalUnits(now time.Duration) uint32 {
	return uint32(int64(now) / int64(time.Second/clockRate))
}

// verdict is what a receiver decides about one valid packet.
type verdict int

const (
	accepted verdict = iota
	dropForeignSource
	dropForeignSSRC
	dropBadSeq
)

// candidate is an SSRC other than the remote source's, on probation
// (A.1 with MIN_SEQUENTIAL): it takes over once minSequential of its
// packets arrive in sequence.
type candidate struct {
	ssrc      uint32
	maxSeq    uint16
	probation int // 0: no candidate
}

// receiver applies symmetric RTP latching and SSRC validation to the
// valid packets of a stream and keeps their statistics. It is pure state:
// no socket, no clock of its own, so tests and fuzzing drive it directly.
type receiver struct {
	relatchAfter time.Duration
	payloadType  uint8 // the stream's own: jitter is computed over it only

	latched   netip.AddrPort
	lastHeard time.Duration // when the latched source was last heard

	haveSSRC bool
	ssrc     uint32
	stats    seqStats
	cand     candidate

	packets, octets                    uint64
	foreignSource, foreignSSRC, badSeq uint64
}

// unlatch forgets the latched source: the next valid packet latches.
func (r *receiver) unlatch() { r.latched = netip.AddrPort{} }

// receive decides about a valid packet with header h and payloadLen
// octets of payload from src, arriving at now. relatched reports that the
// packet moved the latch.
func (r *receiver) receive(h *pionrtp.Header, payloadLen int, src netip.AddrPort, now time.Duration) (v verdict, relatched bool) {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	if src != r.latched {
		if r.latched.IsValid() && now-r.lastHeard <= r.relatchAfter {
			r.foreignSource++
			return dropForeignSource, false
		}
		r.latched, relatched = src, true
	}
	r.lastHeard = now

	switch {
	case !r.haveSSRC:
		r.adopt(h.SSRC, h.SequenceNumber)
	case h.SSRC != r.ssrc:
		if !r.probe(h.SSRC, h.SequenceNumber) {
			r.foreignSSRC++
			return dropForeignSSRC, relatched
		}
		r.adopt(h.SSRC, h.SequenceNumber)
	default:
		if !r.stats.update(h.SequenceNumber) {
			r.badSeq++
			return dropBadSeq, relatched
		}
	}
	// Telephone-event packets repeat their timestamp for a whole event:
	// they would read as jitter.
	if h.PayloadType == r.payloadType {
		r.stats.updateJitter(arrivalUnits(now), h.Timestamp)
	}
	r.packets++
	r.octets += uint64(payloadLen)
	return accepted, relatched
}

// probe advances the probation of a foreign SSRC and reports whether it
// has proved itself.
func (r *receiver) probe(ssrc uint32, seq uint16) bool {
	c := &r.cand
	switch {
	case c.probation == 0 || c.ssrc != ssrc:
		*c = candidate{ssrc: ssrc, maxSeq: seq, probation: minSequential - 1}
	case seq == c.maxSeq+1:
		c.probation--
		c.maxSeq = seq
	default:
		c.probation = minSequential - 1
		c.maxSeq = seq
	}
	return c.probation == 0
}

// adopt makes ssrc the remote source, starting its statistics at seq
// with this packet counted, and carrying the previous source's loss.
func (r *receiver) adopt(ssrc uint32, seq uint16) {
	var carried int64
	if r.haveSSRC {
		carried = r.stats.totalLost()
	}
	r.ssrc, r.haveSSRC = ssrc, true
	r.stats = seqStats{carried: carried}
	r.stats.init(seq)
	r.stats.received = 1
	r.cand = candidate{}
}

// parseRTP parses datagram into pkt and reports whether it is an RTP
// packet the stream can take: version 2, a payload type that is not RTCP's
// (RFC 5761 §4), CSRCs, extension and padding within the datagram, and a
// payload.
func parseRTP(pkt *pionrtp.Packet, datagram []byte) bool {
	if len(datagram) < 12 || datagram[0]>>6 != 2 {
		return false
	}
	if pt := datagram[1] & 0x7f; pt >= 72 && pt <= 76 {
		return false
	}
	if err := pkt.Unmarshal(datagram); err != nil {
		return false
	}
	return len(pkt.Payload) > 0
}

// receiveRTP takes one datagram read from src at now: it counts it and
// returns the event to publish when the packet is accepted.
func (h *Hub) receiveRTP(st *stream, datagram []byte, truncated bool, src netip.AddrPort, now time.Duration,
	pkt *pionrtp.Packet) *events.RtpPacketReceived {
	if truncated || !parseRTP(pkt, datagram) {
		st.mu.Lock()
		st.malformed++
		st.mu.Unlock()
		return nil
	}
	st.mu.Lock()
	oldSSRC, hadSSRC := st.rx.ssrc, st.rx.haveSSRC
	v, relatched := st.rx.receive(&pkt.Header, len(pkt.Payload), src, now)
	if relatched {
		st.refreshDest()
	}
	newSSRC := st.rx.ssrc
	st.mu.Unlock()
	if relatched {
		h.log.Debug("rtp source latched", "session_id", st.session, "source", src)
	}
	if hadSSRC && newSSRC != oldSSRC {
		h.log.Debug("rtp remote source changed", "session_id", st.session,
			"old_ssrc", oldSSRC, "ssrc", newSSRC)
	}
	if v != accepted {
		return nil
	}
	return &events.RtpPacketReceived{SessionRef: events.SessionRef{SessionID: st.session},
		Payload: bytes.Clone(pkt.Payload), Timestamp: pkt.Timestamp, SequenceNumber: pkt.SequenceNumber,
		PayloadType: pkt.PayloadType, Marker: pkt.Marker}
}

// readRTP reads the RTP socket until it is closed, relaying accepted
// packets as RtpPacketReceived. A publish waits at most for the stream's
// life. A read error other than the socket's closing is reported as
// RtpError and ends the reader.
func (h *Hub) readRTP(ctx context.Context, st *stream) {
	buf := make([]byte, maxDatagram)
	var pkt pionrtp.Packet
	for {
		n, src, err := st.pair.rtp.ReadFromUDPAddrPort(buf)
		if err != nil {
			h.readFailed(ctx, st, "RTP", err)
			return
		}
		ev := h.receiveRTP(st, buf[:n], n == len(buf), src, h.rtpClock(), &pkt)
		if ev == nil {
			continue
		}
		if err := h.bus.Publish(ctx, ev); err != nil && ctx.Err() == nil {
			h.log.Warn("rtp packet not relayed", "session_id", st.session, "error", err)
		}
	}
}

// readFailed reports a read error, unless the socket was closed on purpose.
func (h *Hub) readFailed(ctx context.Context, st *stream, what string, err error) {
	if errors.Is(err, net.ErrClosed) {
		return
	}
	h.log.Warn("rtp read failed; the reader stops", "session_id", st.session,
		"socket", what, "port", st.pair.port, "error", err)
	h.fail(ctx, st.session, events.RtpErrSocket, "read %s socket on port %d: %v", what, st.pair.port, err)
}
