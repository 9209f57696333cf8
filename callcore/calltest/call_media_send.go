package calltest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/audio"
)

// ptime is the phone's packet time: one 20 ms frame of 160 samples.
const ptime = 20 * time.Millisecond

// dtmfPause is the silence between two digits of one SendRTPDTMF, from
// the last end packet of a digit to the first packet of the next.
const dtmfPause = 60 * time.Millisecond

// toneAmplitude is the peak of StartTone's signal, as a share of full
// scale: loud enough to measure, far from clipping.
const toneAmplitude = 0.5

// rtpSender is a call's outgoing RTP stream: one SSRC, one sequence number
// space and one RTP clock for audio and telephone events alike.
type rtpSender struct {
	sem chan struct{} // held by the one burst, DTMF run or tone sending

	mu      sync.Mutex
	ssrc    uint32
	seq     uint16    // the next packet's sequence number
	ts      uint32    // RTP time at last
	last    time.Time // deadline of the last frame sent or skipped
	started bool      // ts and last are set
	spurt   bool      // the next audio packet sent starts a talkspurt
	tone    *toneRun  // the tone playing, if any
}

func newRTPSender() rtpSender {
	return rtpSender{
		sem:  make(chan struct{}, 1),
		ssrc: uint32(randID()), seq: uint16(randID()), ts: uint32(randID()),
	}
}

// begin returns the deadline of a burst's first frame: the next 20 ms slot
// when the burst follows the last frame without a gap (a continuous
// stream), else now, which starts a talkspurt.
func (s *rtpSender) begin(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		if next := s.last.Add(ptime); now.Before(next.Add(ptime)) {
			return next
		}
	}
	s.spurt = true
	return now
}

// tickLocked moves the RTP clock to a frame's deadline and returns the
// frame's RTP time. The clock follows wall time in whole frames, like a
// phone that samples continuously and sends only while it has something
// to send: after a pause, the timestamp jumps by the pause.
func (s *rtpSender) tickLocked(deadline time.Time) uint32 {
	if !s.started {
		s.started, s.last = true, deadline
		return s.ts
	}
	frames := int64((deadline.Sub(s.last) + ptime/2) / ptime)
	s.ts += uint32(max(frames, 1) * audio.FrameSamples)
	s.last = deadline
	return s.ts
}

// SSRC returns the synchronisation source the phone sends the call's RTP
// with, audio and telephone events alike.
func (c *Call) SSRC() uint32 { return c.tx.ssrc }

// acquireSender waits for the call's sender to be free: one SendAudio or
// SendRTPDTMF at a time. It returns ErrInvalidState while a tone plays,
// ErrCallEnded for an ended call, and ctx's error.
func (c *Call) acquireSender(ctx context.Context, op string) (release func(), err error) {
	if c.ended() {
		return nil, fmt.Errorf("calltest: call %s: %s: %w", c.callID, op, ErrCallEnded)
	}
	c.tx.mu.Lock()
	playing := c.tx.tone != nil
	c.tx.mu.Unlock()
	if playing {
		return nil, fmt.Errorf("calltest: call %s: %s while a tone plays: %w", c.callID, op, ErrInvalidState)
	}
	select {
	case c.tx.sem <- struct{}{}:
		return func() { <-c.tx.sem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("calltest: call %s: %s: wait for the sender: %w", c.callID, op, ctx.Err())
	case <-c.ctx.Done():
		return nil, fmt.Errorf("calltest: call %s: %s: %w", c.callID, op, ErrCallEnded)
	}
}

// sendable checks that the call can send audio (or, with events,
// telephone events) now.
func (c *Call) sendable(op string, events bool) error {
	n := c.params()
	switch {
	case !events && !n.hasCodec:
		return fmt.Errorf("calltest: call %s: %s: neither PCMU nor PCMA negotiated: %w", c.callID, op, ErrInvalidState)
	case events && !n.hasEvents:
		return fmt.Errorf("calltest: call %s: %s: telephone-event not negotiated: %w", c.callID, op, ErrInvalidState)
	case !n.canSend:
		return fmt.Errorf("calltest: call %s: %s: the media direction does not let the phone send: %w", c.callID, op, ErrInvalidState)
	}
	return nil
}

// sleepUntil waits for deadline; it returns ctx's error, or ErrCallEnded
// when the call ends first.
func (c *Call) sleepUntil(ctx context.Context, op string, deadline time.Time) error {
	if d := time.Until(deadline); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-c.ctx.Done():
		}
	}
	if c.ctx.Err() != nil {
		return fmt.Errorf("calltest: call %s: %s: %w", c.callID, op, ErrCallEnded)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("calltest: call %s: %s: %w", c.callID, op, err)
	}
	return nil
}

// SendAudio sends pcm (8 kHz linear samples) as RTP in the negotiated
// codec: one packet per 20 ms frame, paced in real time on absolute
// deadlines, the last frame padded with silence. It returns after the last
// packet is sent. Packets carry the phone's SSRC and continue its sequence
// numbers across calls; the timestamp follows wall time (a burst that
// starts within a frame of the last one continues the stream, a later one
// starts a talkspurt: marker set, timestamp advanced by the pause in whole
// frames). If a re-INVITE stops the phone from sending meanwhile, frames
// are skipped (the clock runs on). It returns ErrInvalidState when no
// G.711 codec was negotiated, the direction forbids sending, or a tone
// plays; ErrCallEnded when the call ends; and ctx's error.
func (c *Call) SendAudio(ctx context.Context, pcm []int16) error {
	const op = "SendAudio"
	release, err := c.acquireSender(ctx, op)
	if err != nil {
		return err
	}
	defer release()
	if err := c.sendable(op, false); err != nil {
		return err
	}
	frame := make([]int16, audio.FrameSamples)
	deadline := c.tx.begin(time.Now())
	for off := 0; off < len(pcm); off += audio.FrameSamples {
		if off > 0 {
			deadline = deadline.Add(ptime)
		}
		if err := c.sleepUntil(ctx, op, deadline); err != nil {
			return err
		}
		clear(frame[copy(frame, pcm[off:]):])
		if err := c.sendFrame(op, deadline, frame); err != nil {
			return err
		}
	}
	return nil
}

// sendFrame sends one audio frame due at deadline, or skips it when the
// call cannot send now.
func (c *Call) sendFrame(op string, deadline time.Time, frame []int16) error {
	n := c.params()
	s := &c.tx
	s.mu.Lock()
	ts := s.tickLocked(deadline)
	if !n.canSend || !n.hasCodec {
		s.spurt = true
		s.mu.Unlock()
		return nil
	}
	h := rtp.Header{Version: 2, PayloadType: n.sendPT, SequenceNumber: s.seq, Timestamp: ts, SSRC: s.ssrc, Marker: s.spurt}
	s.seq++
	s.spurt = false
	s.mu.Unlock()
	return c.writeRTP(op, n.remote, &h, n.codec.Encode(nil, frame), 1)
}

// writeRTP sends copies identical RTP packets to dst from the call's RTP
// socket, the port its SDP advertises (symmetric RTP).
func (c *Call) writeRTP(op string, dst netip.AddrPort, h *rtp.Header, payload []byte, copies int) error {
	b, err := (&rtp.Packet{Header: *h, Payload: payload}).Marshal()
	if err != nil {
		return fmt.Errorf("calltest: call %s: %s: marshal RTP: %w", c.callID, op, err)
	}
	to := net.UDPAddrFromAddrPort(dst)
	for range copies {
		if _, err := c.rtp.WriteTo(b, to); err != nil {
			if c.ended() {
				return fmt.Errorf("calltest: call %s: %s: %w", c.callID, op, ErrCallEnded)
			}
			return fmt.Errorf("calltest: call %s: %s: send RTP to %s: %w", c.callID, op, dst, err)
		}
	}
	return nil
}

// toneRun is a tone playing on a call (StartTone).
type toneRun struct {
	stop, done chan struct{}
}

// StartTone plays the sum of sines at freqs (Hz), at half of full scale in
// all, continuously in the background, paced like SendAudio, until
// StopTone or the end of the call. It returns ErrInvalidState while
// SendAudio, SendRTPDTMF or another tone is sending, or when no G.711
// codec was negotiated or the direction forbids sending; ErrCallEnded
// for an ended call.
func (c *Call) StartTone(freqs ...float64) error {
	const op = "StartTone"
	if err := c.sendable(op, false); err != nil {
		return err
	}
	select {
	case c.tx.sem <- struct{}{}:
	default:
		return fmt.Errorf("calltest: call %s: %s while sending: %w", c.callID, op, ErrInvalidState)
	}
	c.mu.Lock()
	if c.state == callcore.StateTerminated {
		c.mu.Unlock()
		<-c.tx.sem
		return fmt.Errorf("calltest: call %s: %s: %w", c.callID, op, ErrCallEnded)
	}
	c.mediaWG.Add(1) // under mu, before end can mark the call terminated and Wait
	c.mu.Unlock()
	run := &toneRun{stop: make(chan struct{}), done: make(chan struct{})}
	c.tx.mu.Lock()
	c.tx.tone = run
	c.tx.mu.Unlock()
	go c.playTone(run, audio.NewTone(toneAmplitude, freqs...))
	return nil
}

// StopTone stops the tone StartTone plays and waits until it stopped; it
// does nothing when no tone plays.
func (c *Call) StopTone() {
	c.tx.mu.Lock()
	run := c.tx.tone
	c.tx.tone = nil
	c.tx.mu.Unlock()
	if run == nil {
		return
	}
	close(run.stop)
	<-run.done
}

func (c *Call) playTone(run *toneRun, tone *audio.ToneGenerator) {
	defer c.mediaWG.Done()
	defer close(run.done)
	defer func() {
		c.tx.mu.Lock()
		if c.tx.tone == run {
			c.tx.tone = nil
		}
		c.tx.mu.Unlock()
		<-c.tx.sem
	}()
	frame := make([]int16, audio.FrameSamples)
	deadline := c.tx.begin(time.Now())
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-run.stop:
			return
		case <-c.ctx.Done():
			return
		}
		tone.Fill(frame)
		if err := c.sendFrame("tone", deadline, frame); err != nil {
			c.p.ep.log.Warn("calltest: tone", "call_id", c.callID, "error", err)
			return
		}
		deadline = deadline.Add(ptime)
		t.Reset(time.Until(deadline))
	}
}

// DTMFOptions injects faults into SendRTPDTMF, to test a receiver with
// what lossy networks and sloppy senders produce. The zero value sends
// every packet once.
type DTMFOptions struct {
	// DropStart drops the first packet of each digit, the one with the
	// marker bit.
	DropStart bool
	// DropEnds drops the first n of each digit's 3 end packets (0-3).
	DropEnds int
	// DuplicateEnds sends every end packet that is not dropped n more
	// times at once, identical (same sequence number).
	DuplicateEnds int
	// DropEvery drops every nth packet of the whole SendRTPDTMF (counting
	// from 1, duplicates not counted); 0 drops none.
	DropEvery int
}

// SendRTPDTMF sends digits (0-9 * # A-D; a-d too) as RFC 4733 telephone
// events with the payload type of telephone-event in the far end's SDP:
// per digit, the packet sequence of audio.DTMFSender (a marker packet,
// growing durations, three end packets, all with the digit's start
// timestamp), one packet per 20 ms on the call's RTP clock and sequence
// numbers, with 60 ms between digits; opts injects faults (a dropped
// packet still uses up its sequence number). It returns after the last
// packet. It returns an error for a bad digit, duration (20-8000 ms) or
// option; ErrInvalidState when telephone-event was not negotiated, the
// direction forbids sending, or a tone plays; ErrCallEnded and ctx's error.
// SendDTMF sends digits as SIP INFO instead.
func (c *Call) SendRTPDTMF(ctx context.Context, digits string, durationMS int, opts DTMFOptions) error {
	const op = "SendRTPDTMF"
	digits = strings.ToUpper(digits)
	if err := audio.ValidDigits(digits); err != nil {
		return fmt.Errorf("calltest: call %s: %s: %w", c.callID, op, err)
	}
	if opts.DropEnds < 0 || opts.DropEnds > 3 || opts.DuplicateEnds < 0 || opts.DropEvery < 0 {
		return fmt.Errorf("calltest: call %s: %s: bad options %+v", c.callID, op, opts)
	}
	senders := make([]*audio.DTMFSender, len(digits))
	for i := range digits {
		s, err := audio.NewDTMFSender(digits[i], durationMS, int(ptime/time.Millisecond))
		if err != nil {
			return fmt.Errorf("calltest: call %s: %s: %w", c.callID, op, err)
		}
		senders[i] = s
	}
	release, err := c.acquireSender(ctx, op)
	if err != nil {
		return err
	}
	defer release()
	if err := c.sendable(op, true); err != nil {
		return err
	}
	deadline := c.tx.begin(time.Now())
	count := 0 // packets of this call, for DropEvery
	for i, s := range senders {
		if i > 0 {
			deadline = deadline.Add(ptime + dtmfPause)
		}
		var start uint32 // the digit's RTP timestamp
		ends := 0
		for k := 0; ; k++ {
			ev, marker, done := s.Next()
			if k > 0 {
				deadline = deadline.Add(ptime)
			}
			if err := c.sleepUntil(ctx, op, deadline); err != nil {
				return err
			}
			count++
			drop := (marker && opts.DropStart) || (opts.DropEvery > 0 && count%opts.DropEvery == 0)
			if ev.End {
				drop = drop || ends < opts.DropEnds
				ends++
			}
			copies := 1
			if ev.End {
				copies += opts.DuplicateEnds
			}
			n := c.params()
			c.tx.mu.Lock()
			ts := c.tx.tickLocked(deadline)
			if k == 0 {
				start = ts
			}
			h := rtp.Header{Version: 2, PayloadType: n.eventPT, SequenceNumber: c.tx.seq, Timestamp: start, SSRC: c.tx.ssrc, Marker: marker}
			c.tx.seq++
			c.tx.spurt = true // audio after the digits starts a talkspurt
			c.tx.mu.Unlock()
			if !drop && n.canSend && n.hasEvents {
				if err := c.writeRTP(op, n.remote, &h, ev.Marshal(nil), copies); err != nil {
					return err
				}
			}
			if done {
				break
			}
		}
	}
	return nil
}

// SendRTPRaw sends b as it is, one datagram, from the call's RTP socket to
// the far end's RTP address (RemoteRTP), whatever the media direction: for
// tests of bad input (garbage, truncated packets, wrong payload types,
// foreign SSRCs). It returns ErrInvalidState when the far end has no RTP
// address, ErrCallEnded for an ended call, and the socket's error.
func (c *Call) SendRTPRaw(b []byte) error { return c.sendRaw("SendRTPRaw", c.rtp, b, 0) }

// SendRTPRawFrom is SendRTPRaw from another socket, e.g. to test how the
// far end treats RTP from an address other than the one the phone
// advertised.
func (c *Call) SendRTPRawFrom(conn net.PacketConn, b []byte) error {
	return c.sendRaw("SendRTPRawFrom", conn, b, 0)
}

// SendRTCPRaw sends b as it is to the far end's RTCP port (its RTP port +
// 1, RFC 3550), from the call's RTP socket: the phone binds no RTCP port
// of its own. Errors are those of SendRTPRaw.
func (c *Call) SendRTCPRaw(b []byte) error { return c.sendRaw("SendRTCPRaw", c.rtp, b, 1) }

func (c *Call) sendRaw(op string, conn net.PacketConn, b []byte, portOffset uint16) error {
	if c.ended() {
		return fmt.Errorf("calltest: call %s: %s: %w", c.callID, op, ErrCallEnded)
	}
	remote := c.RemoteRTP()
	if !remote.IsValid() {
		return fmt.Errorf("calltest: call %s: %s: the far end has no RTP address: %w", c.callID, op, ErrInvalidState)
	}
	dst := netip.AddrPortFrom(remote.Addr(), remote.Port()+portOffset)
	if _, err := conn.WriteTo(b, net.UDPAddrFromAddrPort(dst)); err != nil {
		if c.ended() {
			return fmt.Errorf("calltest: call %s: %s: %w", c.callID, op, ErrCallEnded)
		}
		return fmt.Errorf("calltest: call %s: %s to %s: %w", c.callID, op, dst, err)
	}
	return nil
}
