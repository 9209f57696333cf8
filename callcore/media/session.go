package media

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/events"
)

// phase is where a session's stream is in its life.
type phase int

const (
	phaseStarting phase = iota // StartRtpStream sent, waiting for RtpStreamStarted
	phaseStarted               // MediaStreamStarted published
	phaseStopping              // StopRtpStream sent, waiting for RtpStreamStopped
)

func (p phase) String() string {
	switch p {
	case phaseStarting:
		return "starting"
	case phaseStarted:
		return "started"
	}
	return "stopping"
}

// toneFreqs is the built-in tone: the North American dial tone, 350 Hz +
// 440 Hz (ANSI T1.401), continuous.
var toneFreqs = [2]float64{350, 440}

// toneAmplitude is the built-in tone's peak, a share of full scale
// (about -13 dBm0 per tone).
const toneAmplitude = 0.35

// session is the media state of one call session.
//
// Locking: the bus hands a session's events to one handler at a time, but
// the clock, Stream and a bridged peer's handlers reach the session too.
// mu guards the fields below it but id, answer, offer and origin (set
// before the session is shared, then only read) and clk and frames (the
// clock goroutine's alone). pubMu is held by whoever publishes an event of
// the session (see Hub.publishFor) around the state change that decided
// it. Lock order is pubMu before mu; no code holds the locks of two
// sessions at once.
type session struct {
	// The fields the clock reads every tick come first, so that a tick
	// touches two or three cache lines of a session rather than a dozen.
	pubMu sync.Mutex
	mu    sync.Mutex
	// live is set while the stream is started and not stopping: the
	// clock serves the session and a bridged peer may take its audio.
	live atomic.Bool
	// peered is set while a peer may take this session's received audio:
	// the clock then takes it from the queue before any session sends.
	peered atomic.Bool

	phase    phase
	held     bool
	sendsDir bool // our direction sends (derived from negotiated.direction)
	remoteOK bool // the far end's address is known and not 0.0.0.0
	echo     bool // media_config.builtin is echo
	enc      audio.Codec
	dtmfPT   int // telephone-event's payload type, or -1 (= negotiated.dtmfPT)
	play     *playback
	peer     *session
	tone     *audio.ToneGenerator
	rec      *recorder
	dtmfOut  []*audio.DTMFSender // digits waiting to be sent
	cnt      counters
	id       string
	clk      clockState
	rx       rxQueue // its indices first: they are hot too

	// Exactly one of answer and offer is set: how the stream was started.
	answer *answer
	offer  *offer
	origin origin

	neg           negotiated
	builtin       string
	port          int
	rtpCodec      string // the codec the RTP stream was last started with
	remoteAddress string
	remotePort    int
	localSDP      string
	stats         events.RtpStats
	scratch       []int16 // decoded payload before it enters rx
	dtmfIn        audio.DTMFReceiver
	// dtmfRxAt is when the last telephone-event packet that left an event
	// open arrived; zero when none is open. The clock reports an event
	// whose end packets were all lost once telephone events have been
	// quiet for dtmfQuiet.
	dtmfRxAt time.Time

	frames clockFrames
}

// counters are a session's figures for StreamInfo.
type counters struct {
	sent, received, wrongPT, queueDropped, dtmfSent, dtmfReceived, recDropped uint64
}

func newSession(id string, o origin) *session {
	s := &session{id: id, origin: o}
	// RFC 3550 §5.1: random initial sequence number and timestamp.
	s.clk.ts0 = rand.Uint32()
	s.clk.seq = uint16(rand.Uint32())
	s.clk.needMarker = true
	return s
}

func (s *session) info() StreamInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := StreamInfo{
		SessionID: s.id, State: s.phase.String(), Offerer: s.offer != nil, LocalPort: s.port,
		Codec: s.neg.codec, PayloadType: s.neg.pt, DTMFPayloadType: s.dtmfPT, Direction: string(s.neg.direction),
		Held: s.held, RemoteAddress: s.remoteAddress, RemotePort: s.remotePort, LocalSDP: s.localSDP,
		Builtin: s.builtin, PacketsSent: s.cnt.sent, PacketsReceived: s.cnt.received,
		WrongPayloadType: s.cnt.wrongPT, QueueDropped: s.cnt.queueDropped, DTMFSent: s.cnt.dtmfSent,
		DTMFReceived: s.cnt.dtmfReceived, Playing: s.play != nil, Recording: s.rec != nil,
		RecordingDropped: s.cnt.recDropped, Stats: s.stats,
	}
	if s.peer != nil && s.peer.live.Load() {
		i.BridgedWith = s.peer.id
	}
	return i
}

// setNegotiated records what an offer/answer settled. Call with mu held.
func (s *session) setNegotiated(n negotiated) {
	s.neg = n
	s.enc, _ = audio.CodecByName(n.codec) // negotiation only yields PCMU or PCMA
	s.dtmfPT = n.dtmfPT
	s.sendsDir = n.direction.Sends()
}

// setRemote records where the far end receives. Call with mu held.
func (s *session) setRemote(address string, port int) {
	s.remoteAddress, s.remotePort = address, port
	a, err := netip.ParseAddr(address)
	s.remoteOK = err == nil && !a.IsUnspecified() && port > 0
}

// sending reports whether the clock sends the session's audio: our
// direction sends, the session is not held and the far end's address is
// known. Call with mu held.
func (s *session) sending() bool {
	return s.sendsDir && !s.held && s.remoteOK
}

// addActive puts s on the clock's list.
func (h *Hub) addActive(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.active.Load()
	if slices.Contains(old, s) {
		return
	}
	next := make([]*session, len(old), len(old)+1)
	copy(next, old)
	next = append(next, s)
	h.active.Store(&next)
}

// removeActive takes s off the clock's list.
func (h *Hub) removeActive(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.active.Load()
	i := slices.Index(old, s)
	if i < 0 {
		return
	}
	next := make([]*session, 0, len(old)-1)
	next = append(next, old[:i]...)
	next = append(next, old[i+1:]...)
	h.active.Store(&next)
}

// startStream plans the SDP and asks rtp for a port.
func (h *Hub) startStream(ctx context.Context, ev *events.StartMediaStream) {
	id := ev.SessionID
	if s := h.lookup(id); s != nil {
		s.mu.Lock()
		ph := s.phase
		s.mu.Unlock()
		h.failFor(ctx, s, events.MediaErrInvalidState, "StartMediaStream: the session already has a media stream (%s)", ph)
		return
	}
	if ev.LocalSDP != "" {
		h.fail(ctx, id, events.MediaErrNotSupported,
			"StartMediaStream: local_sdp is not supported; media builds the local SDP from media_config")
		return
	}
	switch ev.MediaConfig.Builtin {
	case "", events.BuiltinEcho, events.BuiltinTone:
	default:
		h.fail(ctx, id, events.MediaErrInvalidConfig, "StartMediaStream: media_config builtin %q is not echo or tone",
			ev.MediaConfig.Builtin)
		return
	}
	s := newSession(id, origin{ip: h.cfg.ExternalIP, id: uint64(rand.Int64()), version: 1})
	if ev.RemoteSDP != "" {
		a, err := negotiateAnswer(ev.RemoteSDP, ev.MediaConfig)
		if err != nil {
			h.failWith(ctx, id, err)
			return
		}
		s.answer = a
		s.setNegotiated(a.negotiated)
		s.setRemote(a.remote.address, a.remote.port)
	} else {
		of, err := newOffer(ev.MediaConfig)
		if err != nil {
			h.failWith(ctx, id, err)
			return
		}
		s.offer = of
		s.setNegotiated(of.negotiated())
	}
	s.builtin = ev.MediaConfig.Builtin
	s.echo = s.builtin == events.BuiltinEcho
	if s.builtin == events.BuiltinTone {
		s.tone = audio.NewTone(toneAmplitude, toneFreqs[:]...)
	}
	s.rtpCodec = s.neg.codec
	h.sessions.Store(id, s)
	h.publish(ctx, &events.StartRtpStream{SessionRef: ev.SessionRef, LocalPort: 0,
		RemoteAddress: s.remoteAddress, RemotePort: s.remotePort, PayloadType: s.neg.pt, Codec: s.neg.codec})
}

// rtpStarted completes a pending start with the port rtp bound.
func (h *Hub) rtpStarted(ctx context.Context, ev *events.RtpStreamStarted) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		// A stream nobody here asked for (media restarted, or the start
		// was given up): release it rather than leak the port.
		h.log.Warn("RTP stream for an unknown session; stopping it", "session_id", ev.SessionID, "port", ev.LocalPort)
		h.publish(ctx, &events.StopRtpStream{SessionRef: ev.SessionRef})
		return
	}
	s.mu.Lock()
	ph, port := s.phase, s.port
	s.mu.Unlock()
	switch ph {
	case phaseStopping:
		h.log.Debug("RTP stream started after stop; its stop is on the way", "session_id", s.id)
		return
	case phaseStarted:
		if ev.LocalPort != port {
			h.log.Warn("RTP stream moved", "session_id", s.id, "port", port, "new_port", ev.LocalPort)
		}
		return // the acknowledgement of a reconfiguration
	}

	var text string
	var err error
	if s.answer != nil {
		text, err = s.answer.sdp(s.origin, ev.LocalPort)
	} else {
		text, err = s.offer.sdp(s.origin, ev.LocalPort)
	}
	if err != nil {
		h.failWith(ctx, s.id, err)
		s.mu.Lock()
		s.phase = phaseStopping
		s.mu.Unlock()
		h.publish(ctx, &events.StopRtpStream{SessionRef: ev.SessionRef})
		return
	}
	s.mu.Lock()
	s.phase, s.port, s.localSDP = phaseStarted, ev.LocalPort, text
	codec := s.neg.codec
	s.mu.Unlock()
	h.log.Debug("media stream started", "session_id", s.id, "port", ev.LocalPort, "codec", codec,
		"offerer", s.offer != nil)
	// MediaStreamStarted goes out before the clock's first packet.
	s.pubMu.Lock()
	h.publish(ctx, &events.MediaStreamStarted{SessionRef: ev.SessionRef, LocalPort: ev.LocalPort,
		Codec: codec, LocalSDP: text})
	s.live.Store(true)
	h.addActive(s)
	s.pubMu.Unlock()
}

// rtpError reports an RTP failure: a pending start fails, a running
// stream's failure is passed on.
func (h *Hub) rtpError(ctx context.Context, ev *events.RtpError) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		h.log.Warn("RTP error for an unknown session", "session_id", ev.SessionID, "error", ev.Error)
		return
	}
	s.mu.Lock()
	ph := s.phase
	s.mu.Unlock()
	switch ph {
	case phaseStarting:
		h.sessions.Delete(s.id)
		h.fail(ctx, s.id, startFailure(ev.ErrorCode), "%s", ev.Error)
	case phaseStarted:
		h.failFor(ctx, s, events.MediaErrRTP, "%s", ev.Error)
	default:
		// MediaStreamStopped is on its way; the error changes nothing.
		h.log.Warn("RTP error while stopping", "session_id", s.id, "error", ev.Error)
	}
}

// startFailure is the one table from the RtpError that fails a pending
// start to the MediaError that reports it: the session layer tells a full
// port pool (503) from other failures (488).
func startFailure(code events.RtpErrorCode) events.MediaErrorCode {
	switch code {
	case events.RtpErrNoPort:
		return events.MediaErrNoPort
	default:
		return events.MediaErrRTP
	}
}

// rtpStopped completes a stop, or reports a stream rtp ended by itself:
// the playback in progress finishes, digits still open in the DTMF
// receiver are reported, the recording is closed (RecordingStopped), and
// then MediaStreamStopped is published.
func (h *Hub) rtpStopped(ctx context.Context, ev *events.RtpStreamStopped) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		h.log.Debug("RTP stream stopped for an unknown session", "session_id", ev.SessionID, "reason", ev.Reason)
		return
	}
	h.sessions.Delete(s.id)
	s.live.Store(false)
	h.removeActive(s)
	h.unlink(s)

	s.mu.Lock()
	was := s.phase
	s.phase = phaseStopping
	play := s.play
	s.play = nil
	s.dtmfOut = nil
	var digits []events.Event
	for {
		d, ms, ok := s.dtmfIn.Flush()
		if !ok {
			break
		}
		s.cnt.dtmfReceived++
		digits = append(digits, &events.DtmfDetected{SessionRef: ev.SessionRef, Digit: string(d), DurationMS: ms})
	}
	s.mu.Unlock()
	rec := s.detachRecording()
	if rec != nil {
		close(rec.ch)
		<-rec.done
	}

	h.log.Debug("media stream stopped", "session_id", s.id, "reason", ev.Reason, "was", was)
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	for _, d := range digits {
		h.publish(ctx, d)
	}
	if play != nil {
		h.publish(ctx, &events.AudioPlaybackFinished{SessionRef: ev.SessionRef})
	}
	if rec != nil {
		h.publish(ctx, h.recordingOutcome(s, rec))
	}
	h.publish(ctx, &events.MediaStreamStopped{SessionRef: ev.SessionRef, Reason: ev.Reason})
}

// stopStream asks rtp to close the session's stream.
func (h *Hub) stopStream(ctx context.Context, ev *events.StopMediaStream) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		h.fail(ctx, ev.SessionID, events.MediaErrNoSession, "StopMediaStream: no media stream for the session")
		return
	}
	s.mu.Lock()
	was := s.phase
	s.phase = phaseStopping
	s.mu.Unlock()
	if was == phaseStopping {
		h.log.Debug("StopMediaStream while stopping; MediaStreamStopped is on its way", "session_id", s.id)
		return
	}
	s.live.Store(false)
	h.removeActive(s)
	// rtp handles the session's events in order: a pending StartRtpStream
	// is handled before this stop. Under pubMu, no packet of the clock's
	// follows the stop.
	h.publishFor(ctx, s, &events.StopRtpStream{SessionRef: ev.SessionRef})
}

// updateStream applies a completed offer/answer pair.
func (h *Hub) updateStream(ctx context.Context, ev *events.UpdateMediaStream) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		h.fail(ctx, ev.SessionID, events.MediaErrNoSession, "UpdateMediaStream: no media stream for the session")
		return
	}
	s.mu.Lock()
	ph, local := s.phase, s.localSDP
	s.mu.Unlock()
	if ph != phaseStarted {
		h.failFor(ctx, s, events.MediaErrInvalidState, "UpdateMediaStream: the media stream is %s", ph)
		return
	}
	if ev.LocalSDP != "" {
		local = ev.LocalSDP
	}
	u, err := negotiateUpdate(local, ev.RemoteSDP)
	if err != nil {
		h.failWithFor(ctx, s, err)
		return
	}
	s.mu.Lock()
	s.setNegotiated(u.negotiated)
	s.setRemote(u.remote.address, u.remote.port)
	s.localSDP = local
	restart := s.rtpCodec != u.codec
	s.rtpCodec = u.codec
	port := s.port
	s.mu.Unlock()
	h.log.Debug("media stream updated", "session_id", s.id, "remote_address", u.remote.address,
		"remote_port", u.remote.port, "codec", u.codec, "direction", u.direction)
	evs := []events.Event{&events.UpdateRtpStream{SessionRef: ev.SessionRef,
		RemoteAddress: u.remote.address, RemotePort: u.remote.port}}
	if restart {
		// The stream's payload type is the codec's: reconfigure it on its
		// own port (rtp answers RtpStreamStarted again).
		evs = append(evs, &events.StartRtpStream{SessionRef: ev.SessionRef, LocalPort: port,
			RemoteAddress: u.remote.address, RemotePort: u.remote.port, PayloadType: u.pt, Codec: u.codec})
	}
	h.publishFor(ctx, s, evs...)
}

// hold records whether the session's sending is held. The clock sends
// nothing while held (the RTP timestamp keeps counting) and marks the
// first packet after it.
func (h *Hub) hold(ctx context.Context, ref events.SessionRef, held bool) {
	s := h.lookup(ref.SessionID)
	if s == nil {
		typ := "ResumeMedia"
		if held {
			typ = "HoldMedia"
		}
		h.fail(ctx, ref.SessionID, events.MediaErrNoSession, "%s: no media stream for the session", typ)
		return
	}
	s.mu.Lock()
	s.held = held
	s.mu.Unlock()
	h.log.Debug("media hold", "session_id", s.id, "held", held)
}
