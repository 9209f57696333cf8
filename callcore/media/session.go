package media

import (
	"context"
	"math/rand/v2"
	"strings"

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

// session is the media state of one call session. Its fields are guarded
// by Hub.mu.
type session struct {
	id    string
	phase phase
	// Exactly one of answer and offer is set: how the stream was started.
	answer *answer
	offer  *offer
	origin origin

	negotiated
	port          int
	rtpCodec      string // the codec the RTP stream was last started with
	held          bool
	remoteAddress string
	remotePort    int
	localSDP      string

	packets uint64
	stats   events.RtpStats
}

func (s *session) info() StreamInfo {
	return StreamInfo{
		SessionID: s.id, State: s.phase.String(), Offerer: s.offer != nil, LocalPort: s.port,
		Codec: s.codec, PayloadType: s.pt, DTMFPayloadType: s.dtmfPT, Direction: s.direction,
		Held: s.held, RemoteAddress: s.remoteAddress, RemotePort: s.remotePort, LocalSDP: s.localSDP,
		PacketsReceived: s.packets, Stats: s.stats,
	}
}

// lookup returns the session of id, or nil.
func (h *Hub) lookup(id string) *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[id]
}

// startStream plans the SDP and asks rtp for a port.
func (h *Hub) startStream(ctx context.Context, ev *events.StartMediaStream) {
	id := ev.SessionID
	if s := h.lookup(id); s != nil {
		h.fail(ctx, id, ErrorCodeInvalidState, "StartMediaStream: the session already has a media stream (%s)", s.phase)
		return
	}
	if ev.LocalSDP != "" {
		h.fail(ctx, id, ErrorCodeNotSupported,
			"StartMediaStream: local_sdp is not supported; media builds the local SDP from media_config")
		return
	}
	s := &session{id: id, origin: origin{ip: h.cfg.ExternalIP, id: uint64(rand.Int64()), version: 1}}
	if ev.RemoteSDP != "" {
		a, err := negotiateAnswer(ev.RemoteSDP, ev.MediaConfig)
		if err != nil {
			h.failWith(ctx, id, err)
			return
		}
		s.answer, s.negotiated = a, a.negotiated
		s.remoteAddress, s.remotePort = a.remote.address, a.remote.port
	} else {
		of, err := newOffer(ev.MediaConfig)
		if err != nil {
			h.failWith(ctx, id, err)
			return
		}
		s.offer, s.negotiated = of, of.negotiated()
	}
	s.rtpCodec = s.codec
	h.mu.Lock()
	h.sessions[id] = s
	h.mu.Unlock()
	h.publish(ctx, &events.StartRtpStream{SessionRef: ev.SessionRef, LocalPort: 0,
		RemoteAddress: s.remoteAddress, RemotePort: s.remotePort, PayloadType: s.pt, Codec: s.codec})
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
	h.mu.Lock()
	ph, port := s.phase, s.port
	h.mu.Unlock()
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
		h.mu.Lock()
		s.phase = phaseStopping
		h.mu.Unlock()
		h.publish(ctx, &events.StopRtpStream{SessionRef: ev.SessionRef})
		return
	}
	h.mu.Lock()
	s.phase, s.port, s.localSDP = phaseStarted, ev.LocalPort, text
	codec := s.codec
	h.mu.Unlock()
	h.log.Debug("media stream started", "session_id", s.id, "port", ev.LocalPort, "codec", codec,
		"offerer", s.offer != nil)
	h.publish(ctx, &events.MediaStreamStarted{SessionRef: ev.SessionRef, LocalPort: ev.LocalPort,
		Codec: codec, LocalSDP: text})
}

// rtpError reports an RTP failure: a pending start fails, a running
// stream's failure is passed on.
func (h *Hub) rtpError(ctx context.Context, ev *events.RtpError) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		h.log.Warn("RTP error for an unknown session", "session_id", ev.SessionID, "error", ev.Error)
		return
	}
	h.mu.Lock()
	ph := s.phase
	if ph == phaseStarting {
		delete(h.sessions, s.id)
	}
	h.mu.Unlock()
	switch ph {
	case phaseStarting:
		code := ErrorCodeRTP
		if strings.HasPrefix(ev.Error, "no_port:") {
			code = ErrorCodeNoPort
		}
		h.fail(ctx, s.id, code, "%s", ev.Error)
	case phaseStarted:
		h.fail(ctx, s.id, ErrorCodeRTP, "%s", ev.Error)
	default:
		// MediaStreamStopped is on its way; the error changes nothing.
		h.log.Warn("RTP error while stopping", "session_id", s.id, "error", ev.Error)
	}
}

// rtpStopped completes a stop, or reports a stream rtp ended by itself.
func (h *Hub) rtpStopped(ctx context.Context, ev *events.RtpStreamStopped) {
	h.mu.Lock()
	s := h.sessions[ev.SessionID]
	delete(h.sessions, ev.SessionID)
	h.mu.Unlock()
	if s == nil {
		h.log.Debug("RTP stream stopped for an unknown session", "session_id", ev.SessionID, "reason", ev.Reason)
		return
	}
	h.log.Debug("media stream stopped", "session_id", s.id, "reason", ev.Reason, "was", s.phase)
	h.publish(ctx, &events.MediaStreamStopped{SessionRef: ev.SessionRef, Reason: ev.Reason})
}

// stopStream asks rtp to close the session's stream.
func (h *Hub) stopStream(ctx context.Context, ev *events.StopMediaStream) {
	h.mu.Lock()
	s := h.sessions[ev.SessionID]
	var was phase
	if s != nil {
		was, s.phase = s.phase, phaseStopping
	}
	h.mu.Unlock()
	switch {
	case s == nil:
		h.fail(ctx, ev.SessionID, ErrorCodeNoSession, "StopMediaStream: no media stream for the session")
	case was == phaseStopping:
		h.log.Debug("StopMediaStream while stopping; MediaStreamStopped is on its way", "session_id", s.id)
	default:
		// rtp handles the session's events in order: a pending
		// StartRtpStream is handled before this stop.
		h.publish(ctx, &events.StopRtpStream{SessionRef: ev.SessionRef})
	}
}

// updateStream applies a completed offer/answer pair.
func (h *Hub) updateStream(ctx context.Context, ev *events.UpdateMediaStream) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		h.fail(ctx, ev.SessionID, ErrorCodeNoSession, "UpdateMediaStream: no media stream for the session")
		return
	}
	h.mu.Lock()
	ph, local := s.phase, s.localSDP
	h.mu.Unlock()
	if ph != phaseStarted {
		h.fail(ctx, s.id, ErrorCodeInvalidState, "UpdateMediaStream: the media stream is %s", ph)
		return
	}
	if ev.LocalSDP != "" {
		local = ev.LocalSDP
	}
	u, err := negotiateUpdate(local, ev.RemoteSDP)
	if err != nil {
		h.failWith(ctx, s.id, err)
		return
	}
	h.mu.Lock()
	s.negotiated = u.negotiated
	s.remoteAddress, s.remotePort, s.localSDP = u.remote.address, u.remote.port, local
	restart := s.rtpCodec != u.codec
	s.rtpCodec = u.codec
	port := s.port
	h.mu.Unlock()
	h.log.Debug("media stream updated", "session_id", s.id, "remote_address", u.remote.address,
		"remote_port", u.remote.port, "codec", u.codec, "direction", u.direction)
	h.publish(ctx, &events.UpdateRtpStream{SessionRef: ev.SessionRef,
		RemoteAddress: u.remote.address, RemotePort: u.remote.port})
	if restart {
		// The stream's payload type is the codec's: reconfigure it on its
		// own port (rtp answers RtpStreamStarted again).
		h.publish(ctx, &events.StartRtpStream{SessionRef: ev.SessionRef, LocalPort: port,
			RemoteAddress: u.remote.address, RemotePort: u.remote.port, PayloadType: u.pt, Codec: u.codec})
	}
}

// hold records whether the session's sending is held.
func (h *Hub) hold(ctx context.Context, ref events.SessionRef, held bool) {
	h.mu.Lock()
	s := h.sessions[ref.SessionID]
	if s != nil {
		s.held = held
	}
	h.mu.Unlock()
	if s == nil {
		typ := "ResumeMedia"
		if held {
			typ = "HoldMedia"
		}
		h.fail(ctx, ref.SessionID, ErrorCodeNoSession, "%s: no media stream for the session", typ)
		return
	}
	h.log.Debug("media hold", "session_id", s.id, "held", held)
}

// rtpPacket counts a received packet; the audio issue decodes it. A packet
// of a session media no longer knows is a late one, and dropped.
func (h *Hub) rtpPacket(ev *events.RtpPacketReceived) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.sessions[ev.SessionID]; s != nil {
		s.packets++
	}
}

// rtpStatistics keeps the latest statistics of a stream.
func (h *Hub) rtpStatistics(ev *events.RtpStatisticsUpdate) {
	h.mu.Lock()
	s := h.sessions[ev.SessionID]
	if s != nil {
		s.stats = ev.Stats
	}
	h.mu.Unlock()
	if s == nil {
		h.log.Debug("RTP statistics for an unknown session", "session_id", ev.SessionID)
	}
}
