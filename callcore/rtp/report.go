package rtp

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/callbus/callbus/callcore/events"
)

// rtcpInterval returns one randomised report interval: RTCPInterval ×
// [0.5, 1.5) (RFC 3550 §6.3.1), so that streams started together do not
// report in lockstep.
func (h *Hub) rtcpInterval() time.Duration {
	return time.Duration(float64(h.cfg.RTCPInterval) * (0.5 + rand.Float64()))
}

// runTimer is the hub's one report timer: every tick it visits every
// stream and sends the RTCP reports and statistics updates that are due.
// One goroutine and one scan per tick keep a thousand streams cheap.
func (h *Hub) runTimer(ctx context.Context) {
	t := time.NewTicker(h.tick)
	defer t.Stop()
	var due []*stream
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due = h.snapshot(due[:0])
		mono := h.mono()
		for _, st := range due {
			h.service(ctx, st, mono)
		}
		clear(due)
	}
}

// snapshot appends every stream to dst.
func (h *Hub) snapshot(dst []*stream) []*stream {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, st := range h.streams {
		dst = append(dst, st)
	}
	return dst
}

// service sends st's RTCP report and publishes its statistics when they
// are due. It holds st.reportMu so that a stream being stopped gets no
// periodic update after its final one.
func (h *Hub) service(ctx context.Context, st *stream, mono time.Duration) {
	st.reportMu.Lock()
	defer st.reportMu.Unlock()
	if st.stopped {
		return
	}
	if mono >= st.nextRTCP {
		// Read per stream: the SR's NTP time is what the far end's RTT
		// is measured from, and a tick may serve many streams.
		h.sendReport(st, time.Now(), false)
		st.nextRTCP = mono + h.rtcpInterval()
	}
	if mono >= st.nextStats {
		st.nextStats = mono + h.cfg.StatsInterval
		ctx, cancel := context.WithTimeout(ctx, timerPublishTimeout)
		h.publish(ctx, &events.RtpStatisticsUpdate{SessionRef: events.SessionRef{SessionID: st.session},
			Stats: st.info().stats()})
		cancel()
	}
}
