package session

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// Registration states reported by Registrations, besides the statuses of
// RegistrationUpdated (events.RegistrationStatus).
const (
	RegRegistering   = "registering"
	RegUnregistering = "unregistering"
)

// Registration is a snapshot of an outbound registration made with Register.
type Registration struct {
	ID        string `json:"id"`
	Registrar string `json:"registrar"`
	AOR       string `json:"aor"`
	Status    string `json:"status"`
	Expires   int    `json:"expires,omitempty"`
	Error     string `json:"error,omitempty"`
}

// registration is the state of one registration; guarded by Hub.mu.
type registration struct {
	Registration
	leaving bool // Unregister asked: forget it once unregistered
}

// Registrations returns a snapshot of every registration, by id.
func (s *Hub) Registrations() []Registration {
	s.mu.RLock()
	out := make([]Registration, 0, len(s.regs))
	for _, r := range s.regs {
		out = append(out, r.Registration)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Registration) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// register serves Register: dialog registers the AOR and keeps it fresh.
// Registering an id again replaces its registration.
func (s *Hub) register(ctx context.Context, e *events.CmdRegister) (*events.CommandResult, error) {
	bad := func(field, format string, args ...any) error {
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: field, Message: fmt.Sprintf(format, args...)}
	}
	switch {
	case !validSIPURI(e.Registrar):
		return nil, bad("registrar", "registrar %q is not a sip: or sips: URI", e.Registrar)
	case !validSIPURI(e.AOR):
		return nil, bad("aor", "aor %q is not a sip: or sips: URI", e.AOR)
	case e.Expires < 0:
		return nil, bad("expires", "expires %d: want 0 (the default) or more", e.Expires)
	case strings.ContainsAny(e.Username, "\r\n\"\\"):
		return nil, bad("username", "username holds a character a digest cannot carry")
	}
	s.mu.Lock()
	s.regs[e.RegistrationID] = &registration{Registration: Registration{ID: e.RegistrationID,
		Registrar: e.Registrar, AOR: e.AOR, Status: RegRegistering}}
	s.mu.Unlock()
	err := s.bus.Publish(ctx, &events.RegisterAccount{RegistrationID: e.RegistrationID, Registrar: e.Registrar,
		AOR: e.AOR, Username: e.Username, Password: e.Password, Expires: e.Expires})
	if err != nil {
		return nil, &callcore.Error{Code: callcore.CodeUnavailable, Message: "register " + e.RegistrationID, Err: err}
	}
	return &events.CommandResult{ID: e.RegistrationID, State: RegRegistering}, nil
}

// unregister serves Unregister; an unknown registration is not_found.
func (s *Hub) unregister(ctx context.Context, e *events.CmdUnregister) (*events.CommandResult, error) {
	s.mu.Lock()
	r := s.regs[e.RegistrationID]
	if r != nil {
		r.Status, r.leaving = RegUnregistering, true
	}
	s.mu.Unlock()
	if r == nil {
		return nil, &callcore.Error{Code: callcore.CodeNotFound,
			Message: fmt.Sprintf("registration %q not found", e.RegistrationID)}
	}
	if err := s.bus.Publish(ctx, &events.UnregisterAccount{RegistrationID: e.RegistrationID}); err != nil {
		return nil, &callcore.Error{Code: callcore.CodeUnavailable, Message: "unregister " + e.RegistrationID, Err: err}
	}
	return &events.CommandResult{ID: e.RegistrationID, State: RegUnregistering}, nil
}

// onRegistrationUpdated relays a registration's new state to the app.
func (s *Hub) onRegistrationUpdated(ctx context.Context, e *events.RegistrationUpdated) error {
	aor := e.AOR
	s.mu.Lock()
	if r := s.regs[e.RegistrationID]; r != nil {
		if aor == "" {
			aor = r.AOR
		}
		r.Status, r.Expires, r.Error = string(e.Status), e.Expires, e.Error
		if r.leaving && e.Status == events.RegStatusUnregistered {
			delete(s.regs, e.RegistrationID)
		}
	}
	s.mu.Unlock()
	return s.bus.Publish(ctx, &events.RegistrationChanged{RegistrationID: e.RegistrationID, AOR: aor,
		Status: string(e.Status), Expires: e.Expires, Error: e.Error})
}
