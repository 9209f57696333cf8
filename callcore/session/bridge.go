package session

import (
	"fmt"
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// bridgeCalls serves BridgeCalls: both calls must be active and in no
// other bridge. BridgeMedia connects them both ways; CallBridged is
// reported for each. The bridge ends when either call ends (UnbridgeMedia).
func (s *Hub) bridgeCalls(st *step, e *events.CmdBridgeCalls) error {
	c := st.c
	peer := strings.TrimSpace(e.PeerSessionID)
	switch {
	case peer == "":
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "peer_session_id",
			Message: "peer_session_id is required"}
	case peer == c.id:
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "peer_session_id",
			Message: "a call cannot be bridged with itself"}
	case c.state != callcore.StateActive:
		return invalidState(c, "only an active call can be bridged")
	}
	p := s.lookup(peer)
	if p == nil {
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "peer_session_id",
			Message: fmt.Sprintf("call %q not found", peer)}
	}
	if err := s.pair(c, p); err != nil {
		return err
	}
	st.touch(p)
	st.emit(&events.BridgeMedia{SessionRef: ref(c.id), PeerSessionID: p.id})
	st.emit(&events.CallBridged{SessionRef: ref(c.id), PeerSessionID: p.id})
	st.emit(&events.CallBridged{SessionRef: ref(p.id), PeerSessionID: c.id})
	return nil
}

// pair records the bridge of c and p, checking (atomically with the
// record) that neither is bridged and that p is active. The peer's state
// is read from its snapshot: its own lock belongs to its own handler.
func (s *Hub) pair(c, p *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := p.snap.Load(); v.State != callcore.StateActive {
		return &callcore.Error{Code: callcore.CodeInvalidState,
			Message: fmt.Sprintf("call %s is %s: only an active call can be bridged", p.id, v.State)}
	}
	if b := c.bridge(); b != "" {
		return invalidState(c, "it is already bridged with "+b)
	}
	if p.bridge() != "" {
		return &callcore.Error{Code: callcore.CodeInvalidState,
			Message: fmt.Sprintf("call %s is already bridged with %s", p.id, p.bridge())}
	}
	c.setBridge(p.id)
	p.setBridge(c.id)
	return nil
}

// unbridge ends the bridge of the step's call, if any.
func (s *Hub) unbridge(st *step) {
	c := st.c
	s.mu.Lock()
	peer := c.bridge()
	if peer != "" {
		c.setBridge("")
		if p := s.calls[peer]; p != nil && p.bridge() == c.id {
			p.setBridge("")
			st.touch(p)
		}
	}
	s.mu.Unlock()
	if peer != "" {
		st.emit(&events.UnbridgeMedia{SessionRef: ref(c.id)})
	}
}
