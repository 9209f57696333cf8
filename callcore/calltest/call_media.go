package calltest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/pion/rtp"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/audio"
)

// RTPPacket is one RTP packet the phone received on a call's RTP socket,
// from any source, copied out of the datagram.
type RTPPacket struct {
	Seq         uint16
	Timestamp   uint32
	PayloadType uint8
	Marker      bool
	SSRC        uint32
	Payload     []byte
	// Arrival is when the phone read the datagram.
	Arrival time.Time
	// From is the datagram's source address.
	From netip.AddrPort
}

// rtpReceiver is what a call's receive goroutine keeps; it is guarded by
// the call's mu, so the call's waits (Call.wait) see every packet.
type rtpReceiver struct {
	started bool
	packets []RTPPacket
	pcm     []int16 // decoded audio of the negotiated codec, in arrival order
	digits  []byte
	bad     int // datagrams that were not RTP
	dtmf    audio.DTMFReceiver
	teLast  time.Time // arrival of the last telephone-event packet not flushed yet
}

// dtmfIdle is how long the telephone-event stream may be silent before an
// event whose end packets were all lost is reported anyway (Flush).
const dtmfIdle = 200 * time.Millisecond

// negotiated is a call's media parameters as its SDPs settle them, worked
// out again whenever either SDP changes (a re-INVITE moves the far end or
// changes the direction).
type negotiated struct {
	localSDP, remoteSDP string // the SDPs these parameters come from

	codec          audio.Codec
	hasCodec       bool  // PCMU or PCMA is common to both SDPs
	sendPT, recvPT uint8 // the codec's payload type in the far end's SDP, in ours
	hasEvents      bool  // telephone-event is in the far end's SDP
	eventPT        uint8 // its payload type there: what we send
	recvEventPTs   []uint8
	remote         netip.AddrPort // where the far end receives RTP
	canSend        bool           // the directions let us send, and the far end has an address
}

// paramsLocked returns the call's media parameters for its current SDPs.
func (c *Call) paramsLocked() *negotiated {
	if c.neg != nil && c.neg.localSDP == c.localSDP && c.neg.remoteSDP == c.remoteSDP {
		return c.neg
	}
	c.neg = negotiate(c.localSDP, c.remoteSDP)
	return c.neg
}

func (c *Call) params() *negotiated {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paramsLocked()
}

// negotiate works out the media parameters of a local and a remote SDP.
// The codec is the first G.711 codec of the far end's SDP that ours lists
// too: the far end's answer when the phone offered (an answer lists the
// answerer's preference first), the offer when the phone answered (the
// phone answers with the first offered codec it supports).
func negotiate(localBody, remoteBody string) *negotiated {
	n := &negotiated{localSDP: localBody, remoteSDP: remoteBody}
	local, lerr := ParseSDP(localBody)
	remote, rerr := ParseSDP(remoteBody)
	if lerr != nil || rerr != nil {
		return n
	}
	for _, rc := range remote.Codecs {
		ac, ok := audio.CodecByName(rc.Name)
		lc, common := local.Codec(rc.Name)
		if ok && common {
			n.codec, n.hasCodec = ac, true
			n.sendPT, n.recvPT = rc.PT, lc.PT
			break
		}
	}
	if ev, ok := remote.Codec("telephone-event"); ok {
		n.hasEvents, n.eventPT = true, ev.PT
		n.recvEventPTs = append(n.recvEventPTs, ev.PT)
	}
	if ev, ok := local.Codec("telephone-event"); ok && !slices.Contains(n.recvEventPTs, ev.PT) {
		n.recvEventPTs = append(n.recvEventPTs, ev.PT)
	}
	if addr, err := netip.ParseAddr(remote.Addr); err == nil && remote.Port > 0 && !addr.IsUnspecified() {
		n.remote = netip.AddrPortFrom(addr.Unmap(), uint16(remote.Port))
	}
	weSend := local.Direction == SendRecv || local.Direction == SendOnly
	theyReceive := remote.Direction == SendRecv || remote.Direction == RecvOnly
	n.canSend = weSend && theyReceive && n.remote.IsValid()
	return n
}

// startMedia starts the call's receive goroutine once the call is
// answered; end stops it (closing the socket) and waits for it.
func (c *Call) startMedia() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rx.started || c.state == callcore.StateTerminated {
		return
	}
	c.rx.started = true
	c.mediaWG.Add(1) // under mu, before end can mark the call terminated and Wait
	go c.receive()
}

// receive reads the call's RTP socket until it is closed. The read
// deadline wakes it now and then to report a DTMF event whose end packets
// were lost once the event stream has gone quiet.
func (c *Call) receive() {
	defer c.mediaWG.Done()
	buf := make([]byte, 2048)
	for {
		_ = c.rtp.SetReadDeadline(time.Now().Add(dtmfIdle / 2))
		n, from, err := c.rtp.ReadFrom(buf)
		now := time.Now()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.flushDTMF(now)
				continue
			}
			return // closed: the call ended
		}
		c.onDatagram(buf[:n], from, now)
	}
}

// onDatagram records one datagram read on the RTP socket.
func (c *Call) onDatagram(b []byte, from net.Addr, now time.Time) {
	var p rtp.Packet
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := p.Unmarshal(b); err != nil {
		c.rx.bad++
		c.notifyLocked()
		return
	}
	var src netip.AddrPort
	if u, ok := from.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		src = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	c.rx.packets = append(c.rx.packets, RTPPacket{
		Seq: p.SequenceNumber, Timestamp: p.Timestamp, PayloadType: p.PayloadType,
		Marker: p.Marker, SSRC: p.SSRC, Payload: slices.Clone(p.Payload),
		Arrival: now, From: src,
	})
	n := c.paramsLocked()
	switch {
	case n.hasCodec && (p.PayloadType == n.recvPT || p.PayloadType == n.sendPT):
		c.rx.pcm = n.codec.Decode(c.rx.pcm, p.Payload)
	case slices.Contains(n.recvEventPTs, p.PayloadType):
		c.rx.teLast = now
		// A packet that completes two digits (a lost end, then an event
		// whose first packet is its end) returns the second from the next
		// Feed, or from flushDTMF once the stream is quiet.
		if d, _, ok, err := c.rx.dtmf.Feed(p.Timestamp, p.Payload); ok && err == nil {
			c.rx.digits = append(c.rx.digits, d)
		}
	}
	c.notifyLocked()
}

// flushDTMF reports a telephone event left open once no telephone-event
// packet came for dtmfIdle.
func (c *Call) flushDTMF(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rx.teLast.IsZero() || now.Sub(c.rx.teLast) < dtmfIdle {
		return
	}
	c.rx.teLast = time.Time{}
	changed := false
	for {
		d, _, ok := c.rx.dtmf.Flush()
		if !ok {
			break
		}
		c.rx.digits = append(c.rx.digits, d)
		changed = true
	}
	if changed {
		c.notifyLocked()
	}
}

// RTPPackets returns every RTP packet received on the call since it was
// answered (or since ResetReceived), in arrival order, from any source.
func (c *Call) RTPPackets() []RTPPacket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.rx.packets)
}

// BadRTP returns how many datagrams arrived on the call's RTP socket that
// did not parse as RTP.
func (c *Call) BadRTP() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rx.bad
}

// ReceivedAudio returns the audio received so far: the payloads of the
// packets in the negotiated codec (Codec), decoded and joined in arrival
// order. There is no jitter buffer: a lost packet leaves no gap, a
// reordered one is decoded where it arrived.
func (c *Call) ReceivedAudio() []int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.rx.pcm)
}

// WaitAudio waits until at least samples samples of audio were received
// (ReceivedAudio) and returns the first samples of them. It returns
// ErrCallEnded when the call ends first, and ctx's error when ctx ends.
func (c *Call) WaitAudio(ctx context.Context, samples int) ([]int16, error) {
	var got []int16
	err := c.wait(ctx, fmt.Sprintf("%d audio samples", samples), func() (bool, error) {
		if len(c.rx.pcm) >= samples {
			got = slices.Clone(c.rx.pcm[:samples])
			return true, nil
		}
		return false, c.endedErrLocked()
	})
	return got, err
}

// RTPDigits returns the DTMF digits received as RFC 4733 telephone events,
// each once, in the order they completed. A digit completes at its first
// end packet; when every end packet is lost, when the next event starts or
// once the event stream has been quiet for 200 ms.
func (c *Call) RTPDigits() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.rx.digits)
}

// WaitRTPDigits waits until at least n digits were received as RFC 4733
// telephone events and returns the first n. It returns ErrCallEnded when
// the call ends first, and ctx's error when ctx ends.
func (c *Call) WaitRTPDigits(ctx context.Context, n int) (string, error) {
	var got string
	err := c.wait(ctx, fmt.Sprintf("%d RFC 4733 digits", n), func() (bool, error) {
		if len(c.rx.digits) >= n {
			got = string(c.rx.digits[:n])
			return true, nil
		}
		return false, c.endedErrLocked()
	})
	return got, err
}

// ResetReceived forgets the packets, audio and RFC 4733 digits received so
// far, so that a test can look at the next phase of a call on its own. An
// event in progress is still reported once when it completes.
func (c *Call) ResetReceived() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rx.packets, c.rx.pcm, c.rx.digits, c.rx.bad = nil, nil, nil, 0
	c.notifyLocked()
}

// Codec returns the audio codec negotiated on the call: the first of PCMU
// and PCMA in the far end's SDP that the phone's SDP lists too. It is PCMU
// (the zero value) until both SDPs are known, and when neither G.711 codec
// is common; SendAudio reports the latter.
func (c *Call) Codec() audio.Codec { return c.params().codec }

// RemoteRTP returns where the far end receives RTP (its SDP's connection
// address and audio port, as of the last offer/answer), or the zero
// AddrPort when it has none (no SDP yet, port 0 or address 0.0.0.0).
func (c *Call) RemoteRTP() netip.AddrPort { return c.params().remote }
