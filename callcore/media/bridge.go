package media

import (
	"context"

	"github.com/callbus/callbus/callcore/events"
)

// bridge links two started sessions both ways: from the next tick, each
// one's outgoing audio is the other's received audio (decoded PCM, which
// each leg encodes with its own codec: PCMU↔PCMA is transcoded on the
// way), and DTMF received on one is sent on the other. A session already
// bridged elsewhere leaves that bridge first. Success is not answered (the
// session reports CallBridged itself); an unknown or unstarted session is
// MediaError{no_session}.
func (h *Hub) bridge(ctx context.Context, ev *events.BridgeMedia) {
	a := h.lookup(ev.SessionID)
	if a == nil || !a.live.Load() {
		h.fail(ctx, ev.SessionID, events.MediaErrNoSession, "BridgeMedia: no started media stream for the session")
		return
	}
	if ev.PeerSessionID == ev.SessionID {
		h.failFor(ctx, a, events.MediaErrInvalidRequest, "BridgeMedia: a session cannot be bridged with itself")
		return
	}
	b := h.lookup(ev.PeerSessionID)
	if b == nil || !b.live.Load() {
		h.failFor(ctx, a, events.MediaErrNoSession, "BridgeMedia: no started media stream for the peer session %s", ev.PeerSessionID)
		return
	}
	h.unlink(a)
	h.unlink(b)
	// One session's lock at a time. A peer stopping meanwhile is noticed
	// by the clock (live is cleared before its links are undone).
	a.peered.Store(true)
	b.peered.Store(true)
	b.mu.Lock()
	b.peer = a
	b.mu.Unlock()
	a.mu.Lock()
	a.peer = b
	a.mu.Unlock()
	h.log.Debug("media bridged", "session_id", a.id, "peer", b.id)
}

// unbridge ends the bridge of a session, if any, on both sides.
func (h *Hub) unbridge(ctx context.Context, ev *events.UnbridgeMedia) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		h.fail(ctx, ev.SessionID, events.MediaErrNoSession, "UnbridgeMedia: no media stream for the session")
		return
	}
	h.unlink(s)
}

// unlink undoes s's link and, if the peer still points back at s, the
// peer's, taking one session's lock at a time.
func (h *Hub) unlink(s *session) {
	s.mu.Lock()
	p := s.peer
	s.peer = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	s.peered.Store(false)
	p.mu.Lock()
	if p.peer == s {
		p.peer = nil
		p.peered.Store(false)
	}
	p.mu.Unlock()
	h.log.Debug("media unbridged", "session_id", s.id, "peer", p.id)
}
