package media

import (
	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"time"
)

// dtmfPtimeMS is the packet time of the RFC 4733 events media sends: one
// per clock tick.
const dtmfPtimeMS = 20

// dtmfGapTicks is the audio between two digits sent: 60 ms, so that a
// receiver that detects digits from audio (after a gateway) hears them
// apart.
const dtmfGapTicks = 3

// clockState is a session's sending state. Only the clock goroutine
// touches it (newSession sets the random starts before the session
// reaches the clock's list).
type clockState struct {
	begun bool
	n0    uint64 // the tick of the session's first frame
	last  uint64 // the last tick the session was served
	ts0   uint32 // the RTP timestamp at tick n0
	seq   uint16 // the last sequence number sent
	// needMarker marks the next audio packet: the first of the stream, the
	// first after a pause in sending (hold, skipped ticks) and the first
	// after a digit.
	needMarker bool

	dtmf   *audio.DTMFSender // the digit being sent
	dtmfTS uint32            // its RTP timestamp: the tick it started on
	gap    int               // audio ticks still due before the next digit

	rxTick uint64 // the tick whose received frame frames.rx holds; 0 none
}

// clockFrames are a session's frames of the current tick, the clock's
// like clockState; apart from it because they are large and cold for a
// silent session.
type clockFrames struct {
	rx  [audio.FrameSamples]int16 // received
	out [audio.FrameSamples]int16 // to send
}

// outPacket is one SendRtpPacket with its payload's storage: a packet
// costs one allocation, and the payload is never reused, so every
// subscriber (rtp, a tap) may keep it.
type outPacket struct {
	ev  events.SendRtpPacket
	buf [audio.FrameSamples]byte
}

// popReceived takes tick n's received frame from the session's queue,
// if a whole one is there. Call with mu held, on the clock goroutine.
func (s *session) popReceived(n uint64) {
	if s.clk.rxTick != n && s.rx.pop(s.frames.rx[:]) {
		s.clk.rxTick = n
	}
}

// dtmfQuiet is how long telephone events must be quiet before a digit
// whose end packets were all lost is reported (a digit's packets come
// every 20-50 ms; a pause of 200 ms means it is over).
const dtmfQuiet = 200 * time.Millisecond

// sendFrame produces tick n of one session: a DTMF packet, else a frame
// of audio from the playback, the bridged peer, echo, the tone or
// silence; publishes it when the session sends; and hands the frame
// received and the frame sent to the recording. The RTP timestamp follows
// the tick index whether or not a packet goes out, so it stays true to
// wall time across hold; the sequence number counts packets sent.
func (h *Hub) sendFrame(s *session, n uint64) {
	s.pubMu.Lock()
	s.mu.Lock()
	if s.phase != phaseStarted {
		s.mu.Unlock()
		s.pubMu.Unlock()
		return
	}
	s.popReceived(n)
	c := &s.clk
	if !c.begun {
		c.begun, c.n0 = true, n
	} else if n != c.last+1 {
		// Skipped ticks are a pause in the stream: the timestamp jumps,
		// and the packet after a pause is marked (RFC 3551 §4.1).
		c.needMarker = true
	}
	c.last = n
	ts := c.ts0 + uint32(n-c.n0)*audio.FrameSamples
	sending := s.sending()
	if !sending && c.dtmf != nil {
		c.dtmf, c.gap = nil, 0 // a digit cut by a hold is abandoned, not resumed late
	}
	if sending && c.dtmf == nil && c.gap == 0 && len(s.dtmfOut) > 0 {
		c.dtmf, c.dtmfTS = s.dtmfOut[0], ts
		s.dtmfOut[0] = nil
		s.dtmfOut = s.dtmfOut[1:]
		s.cnt.dtmfSent++
	}

	var pkt *outPacket
	var fin *playback
	sentAudio := false
	if c.dtmf != nil {
		ev, marker, done := c.dtmf.Next()
		pkt = new(outPacket)
		pkt.ev.Payload = ev.Marshal(pkt.buf[:0])
		pkt.ev.PayloadType = uint8(s.dtmfPT)
		pkt.ev.Timestamp = c.dtmfTS
		pkt.ev.Marker = marker
		if done {
			c.dtmf, c.gap, c.needMarker = nil, dtmfGapTicks, true
		}
	} else {
		if c.gap > 0 {
			c.gap--
		}
		var hasAudio bool
		hasAudio, fin = s.fill(n)
		if sending {
			pkt = new(outPacket)
			if hasAudio {
				pkt.ev.Payload = s.enc.Encode(pkt.buf[:0], s.frames.out[:])
			} else {
				pkt.buf = h.silence[silenceIndex(s.enc)]
				pkt.ev.Payload = pkt.buf[:]
			}
			pkt.ev.Timestamp = ts
			pkt.ev.Marker = c.needMarker
			c.needMarker = false
			sentAudio = hasAudio
		}
	}
	if pkt != nil {
		c.seq++
		pkt.ev.SessionID = s.id
		pkt.ev.SequenceNumber = c.seq
		s.cnt.sent++
	} else {
		c.needMarker = true
	}
	if s.rec != nil {
		s.recordFrame(n, sentAudio)
	}
	var quietDigit *events.DtmfDetected
	var quietPeer *session
	if !s.dtmfRxAt.IsZero() && time.Since(s.dtmfRxAt) >= dtmfQuiet {
		// Every end packet of the digit was lost: report it now rather
		// than when the next digit starts.
		s.dtmfRxAt = time.Time{}
		if d, ms, ok := s.dtmfIn.Flush(); ok {
			s.cnt.dtmfReceived++
			quietDigit = &events.DtmfDetected{SessionRef: events.SessionRef{SessionID: s.id}, Digit: string(d), DurationMS: ms}
			if s.peer != nil && s.peer.live.Load() {
				quietPeer = s.peer
			}
		}
	}
	s.mu.Unlock()
	if quietDigit != nil {
		h.publish(h.ctx, quietDigit)
		if quietPeer != nil {
			if err := h.queueDTMF(quietPeer, quietDigit.Digit, quietDigit.DurationMS); err != nil {
				h.log.Debug("DTMF passthrough to the bridged peer", "session_id", s.id, "peer", quietPeer.id, "error", err)
			}
		}
	}

	if pkt != nil {
		if err := h.bus.Publish(h.clockCtx, &pkt.ev); err != nil {
			h.log.Debug("media: send packet", "session_id", s.id, "error", err)
		}
	}
	if fin != nil {
		h.publish(bus.WithCause(h.ctx, fin.cause), &events.AudioPlaybackFinished{SessionRef: events.SessionRef{SessionID: s.id}})
	}
	s.pubMu.Unlock()
}

// fill writes tick n's audio into frames.out from the first source there
// is: the playback, the bridged peer's received frame, the session's own
// received frame (echo), the tone. It reports whether frames.out holds
// audio (else the frame is silence), and the playback that ended with
// this frame. A bridge, or echo, with nothing received this tick is
// silence. Call with mu held, on the clock goroutine.
func (s *session) fill(n uint64) (bool, *playback) {
	out := &s.frames.out
	if p := s.play; p != nil {
		if p.fill(out[:]) {
			s.play = nil
			return true, p
		}
		return true, nil
	}
	if p := s.peer; p != nil {
		if p.live.Load() {
			// The peer's frame of this tick was taken from its queue
			// before any session sent (it is peered); p.clk and p.frames
			// are the clock's own, like s's: no lock of p's needed.
			if p.clk.rxTick == n {
				*out = p.frames.rx
				return true, nil
			}
			return false, nil
		}
		s.peer = nil // the peer's stream stopped
	}
	switch {
	case s.echo:
		if s.clk.rxTick == n {
			*out = s.frames.rx
			return true, nil
		}
	case s.tone != nil:
		s.tone.Fill(out[:])
		return true, nil
	}
	return false, nil
}

// playback is a file (or URL) being played: its decoded 8 kHz samples,
// shared read-only with the clip cache, and where the clock is in them.
type playback struct {
	name    string
	samples []int16
	pos     int
	plays   int       // plays left, the current one included
	cause   events.ID // the PlayAudio, cause of AudioPlaybackFinished
}

// fill writes the next frame into dst (silence after the end) and
// reports whether the playback is over with it. Loops join without a gap.
func (p *playback) fill(dst []int16) bool {
	i := 0
	for i < len(dst) {
		if p.pos >= len(p.samples) {
			if p.plays <= 1 || len(p.samples) == 0 {
				clear(dst[i:])
				return true
			}
			p.plays--
			p.pos = 0
		}
		k := copy(dst[i:], p.samples[p.pos:])
		i += k
		p.pos += k
	}
	return p.pos >= len(p.samples) && p.plays <= 1
}

// silenceIndex is the index of codec's frame in Hub.silence.
func silenceIndex(c audio.Codec) int {
	if c == audio.PCMA {
		return 1
	}
	return 0
}
