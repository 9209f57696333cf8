package rtp

import (
	"context"
	"net/netip"
	"time"

	"github.com/pion/rtcp"
)

// ntpEpochOffset is the seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

// ntpTime is t as a 64-bit NTP timestamp.
func ntpTime(t time.Time) uint64 {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// ntpMiddle is the middle 32 bits of an NTP timestamp: the LSR unit.
func ntpMiddle(ntp uint64) uint32 { return uint32(ntp >> 16) }

// clamp24 encodes a cumulative loss as the reception report's 24-bit
// signed field, clamped to its range.
func clamp24(lost int64) uint32 {
	lost = max(min(lost, 0x7fffff), -0x800000)
	return uint32(lost) & 0xffffff
}

// buildReport returns st's compound RTCP packet at now: an SR when st sent
// RTP since its last report, else an RR; a reception report about the
// remote source once there is one; an SDES CNAME; and a BYE when bye is
// set. It starts a new loss interval. The caller holds st.reportMu.
func (h *Hub) buildReport(st *stream, now time.Time, bye bool) ([]byte, netip.AddrPort, error) {
	ntp := ntpTime(now)
	st.mu.Lock()
	var reports []rtcp.ReceptionReport
	if st.rx.haveSSRC {
		s := &st.rx.stats
		st.fraction = s.interval()
		rep := rtcp.ReceptionReport{SSRC: st.rx.ssrc, FractionLost: st.fraction,
			TotalLost: clamp24(s.lost()), LastSequenceNumber: s.extendedMax(), Jitter: uint32(s.jitter)}
		if st.haveLSR && st.lsrSSRC == st.rx.ssrc {
			rep.LastSenderReport = st.lsr
			// now may predate lsrAt by a hair: the SR raced the report.
			rep.Delay = uint32(max(now.Sub(st.lsrAt), 0).Seconds() * 65536)
		}
		reports = []rtcp.ReceptionReport{rep}
	}
	dest := st.rtcpDest()
	st.mu.Unlock()

	var first rtcp.Packet
	if sent := st.packetsSent.Load(); sent > st.sentAtReport {
		st.sentAtReport = sent
		elapsed := max(h.mono()-time.Duration(st.lastSentAt.Load()), 0)
		rtpTime := st.lastTS.Load() + uint32(int64(elapsed)/int64(time.Second/clockRate))
		first = &rtcp.SenderReport{SSRC: st.ssrc, NTPTime: ntp, RTPTime: rtpTime,
			PacketCount: uint32(sent), OctetCount: uint32(st.octetsSent.Load()), Reports: reports}
	} else {
		first = &rtcp.ReceiverReport{SSRC: st.ssrc, Reports: reports}
	}
	pkts := []rtcp.Packet{first, rtcp.NewCNAMESourceDescription(st.ssrc, h.cname)}
	if bye {
		pkts = append(pkts, &rtcp.Goodbye{Sources: []uint32{st.ssrc}})
	}
	b, err := rtcp.Marshal(pkts)
	return b, dest, err
}

// sendReport sends st's compound RTCP packet when it has somewhere to go.
// Failures are logged only: RTCP is best effort. The caller holds
// st.reportMu.
func (h *Hub) sendReport(st *stream, now time.Time, bye bool) {
	b, dest, err := h.buildReport(st, now, bye)
	if err != nil {
		h.log.Warn("rtcp report not built", "session_id", st.session, "error", err)
		return
	}
	if !dest.IsValid() {
		return
	}
	if _, err := st.pair.rtcp.WriteToUDPAddrPort(b, dest); err != nil {
		h.log.Debug("rtcp report not sent", "session_id", st.session, "to", dest, "error", err)
		return
	}
	st.rtcpSent.Add(1)
}

// handleRTCP takes one datagram read from src on st's RTCP socket at now.
// It reports whether the datagram was valid RTCP.
func (h *Hub) handleRTCP(st *stream, datagram []byte, truncated bool, src netip.AddrPort, now time.Time) bool {
	var pkts []rtcp.Packet
	var err error
	if !truncated {
		pkts, err = rtcp.Unmarshal(datagram)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if truncated || err != nil || len(pkts) == 0 {
		st.malformedRTCP++
		return false
	}
	st.rtcpReceived++
	remote, known := st.rx.ssrc, st.rx.haveSSRC
	fromRemote := false
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.SenderReport:
			if !known || p.SSRC == remote {
				st.lsr, st.lsrSSRC, st.lsrAt, st.haveLSR = ntpMiddle(p.NTPTime), p.SSRC, now, true
				fromRemote = true
			}
			st.receptionReports(p.Reports, now)
		case *rtcp.ReceiverReport:
			if !known || p.SSRC == remote {
				fromRemote = true
			}
			st.receptionReports(p.Reports, now)
		case *rtcp.Goodbye:
			h.log.Debug("rtcp goodbye from the far end", "session_id", st.session,
				"sources", p.Sources, "reason", p.Reason)
		}
	}
	// The far end's RTCP source, like its RTP source, is where it can be
	// reached behind a NAT. Once its SSRC is known, only its own reports
	// may move the latch.
	if fromRemote && (known || !st.rtcpLatched.IsValid()) {
		st.rtcpLatched = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	}
	return true
}

// receptionReports takes the RTT from a report about st's own source:
// arrival − LSR − DLSR (RFC 3550 §6.4.1), in 1/65536 s. The caller holds
// st.mu.
func (st *stream) receptionReports(reports []rtcp.ReceptionReport, now time.Time) {
	for _, r := range reports {
		if r.SSRC != st.ssrc || r.LastSenderReport == 0 {
			continue
		}
		rtt := int32(ntpMiddle(ntpTime(now)) - r.LastSenderReport - r.Delay)
		if rtt < 0 {
			continue
		}
		st.rttMS = float64(rtt) * 1000 / 65536
	}
}

// readRTCP reads the RTCP socket until it is closed.
func (h *Hub) readRTCP(ctx context.Context, st *stream) {
	buf := make([]byte, maxDatagram)
	for {
		n, src, err := st.pair.rtcp.ReadFromUDPAddrPort(buf)
		if err != nil {
			h.readFailed(ctx, st, "RTCP", err)
			return
		}
		h.handleRTCP(st, buf[:n], n == len(buf), src, time.Now())
	}
}
