package session

import (
	"context"
	"fmt"
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// transferCall serves TransferCall: a REFER to Target, blind, or attended
// (replacing the consultation call ConsultSessionID); the call is
// transferring until CallTerminated{transferred} or a DialogError.
func (s *Hub) transferCall(st *step, e *events.CmdTransferCall) error {
	c := st.c
	target := strings.TrimSpace(e.Target)
	if !validSIPURI(target) {
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "target",
			Message: fmt.Sprintf("target %q is not a sip: or sips: URI", e.Target)}
	}
	typ := e.TransferType
	if typ == "" {
		typ = events.TransferBlind
	}
	if typ != events.TransferBlind && typ != events.TransferAttended {
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "transfer_type",
			Message: fmt.Sprintf("transfer_type %q: want blind or attended", e.TransferType)}
	}
	consult := e.ConsultSessionID
	switch {
	case typ == events.TransferBlind && consult != "":
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "consult_session_id",
			Message: "consult_session_id is only for an attended transfer"}
	case typ == events.TransferAttended && (consult == "" || consult == c.id):
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "consult_session_id",
			Message: "an attended transfer needs the id of another call (the consultation)"}
	case typ == events.TransferAttended:
		o := s.lookup(consult)
		if o == nil {
			return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "consult_session_id",
				Message: fmt.Sprintf("call %q not found", consult)}
		}
		if v := o.snap.Load(); v.State != callcore.StateActive && v.State != callcore.StateOnHold {
			return &callcore.Error{Code: callcore.CodeInvalidState,
				Message: fmt.Sprintf("call %s is %s: the consultation call must be answered", consult, v.State)}
		}
	}
	switch {
	case c.state != callcore.StateActive && c.state != callcore.StateOnHold:
		return invalidState(c, "only an answered call can be transferred")
	case c.pending != opNone:
		return invalidState(c, "a hold or resume is in progress")
	}
	c.transfer = &TransferInProgress{Target: target, TransferType: typ}
	c.state = callcore.StateTransferring
	st.emit(&events.TransferCall{SessionRef: ref(c.id), Target: target, TransferType: typ,
		ReplacesSessionID: consult})
	return nil
}

// onTransferRequested places the call the far end asked for with a REFER,
// as MakeCall would (with its Replaces as a header), and reports its
// progress to the REFER's dialog: 100 now, then 180, and 200 or the failure
// from the new call's own handlers.
func (s *Hub) onTransferRequested(ctx context.Context, st *step, e *events.TransferRequested) error {
	c := st.c
	refuse := func(code int) {
		st.emit(&events.TransferProgress{SessionRef: ref(c.id), StatusCode: code, Reason: callcore.ReasonPhrase(code)})
	}
	target := strings.TrimSpace(e.ReferTo)
	switch {
	case c.state != callcore.StateActive && c.state != callcore.StateOnHold:
		s.log.Info("REFER refused", "session_id", c.id, "state", c.state)
		refuse(603)
		return nil
	case !validSIPURI(target):
		s.log.Info("REFER to a target that is not a SIP URI", "session_id", c.id, "refer_to", e.ReferTo)
		refuse(400)
		return nil
	}
	var headers events.Headers
	if e.Replaces != "" {
		if strings.ContainsAny(e.Replaces, "\r\n") {
			refuse(400)
			return nil
		}
		headers = events.Headers{{Name: "Replaces", Value: e.Replaces}}
	}
	n := &call{
		id: callcore.NewSessionID(s.cfg.Node), dir: callcore.Outbound, from: s.cfg.From, to: target,
		state: callcore.StateInitiating, createdAt: s.now(), headers: headers,
		ringTimeout: s.cfg.RingTimeout, transferOf: c.id,
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if taken, full := s.admit(n); taken || full {
		s.log.Info("REFER refused: max calls", "session_id", c.id, "max_calls", s.cfg.MaxCalls)
		refuse(503)
		return nil
	}
	s.log.Info("transfer requested", "session_id", c.id, "new_session_id", n.id, "refer_to", target)
	// The new call's step publishes the 100 before its own first event, so
	// that its 180 and 200 can never overtake it.
	ns := s.begin(n, st.cause)
	ns.emit(&events.TransferProgress{SessionRef: ref(c.id), StatusCode: 100, Reason: callcore.ReasonPhrase(100)})
	s.originate(ns)
	return ns.flush(ctx)
}

// transferFailure is the status reported to the REFER's dialog for a
// transfer call that ended unanswered.
func transferFailure(c *call) int {
	if c.sipStatus >= 300 {
		return c.sipStatus
	}
	switch c.endReason {
	case callcore.EndBusy:
		return 486
	case callcore.EndRejected:
		return 603
	case callcore.EndNoAnswer:
		return 480
	case callcore.EndCancelled, callcore.EndLocalHangup:
		return 487
	case callcore.EndTimeout:
		return 408
	}
	return 503
}
