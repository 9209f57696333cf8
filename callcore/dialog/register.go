package dialog

import (
	"net"

	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore/events"
)

// This file relays registrations between the session and the transport,
// which does the REGISTER, digest and refresh work.

// registerAccount hands a registration to the transport, with a Contact
// carrying the AOR's user.
func (h *Hub) registerAccount(o *out, e *events.RegisterAccount) {
	aor, err := targetAddress(e.AOR)
	if err != nil {
		o.send(&events.RegistrationUpdated{RegistrationID: e.RegistrationID, AOR: e.AOR,
			Status: events.RegStatusFailed, Error: "bad AOR: " + err.Error()})
		return
	}
	var u sip.Uri
	_ = sip.ParseUri(aor.uri, &u) // targetAddress validated it
	user := u.User
	if user == "" {
		user = h.cfg.ContactUser
	}
	h.mu.Lock()
	h.regs[e.RegistrationID] = aor.uri
	h.mu.Unlock()
	o.send(&events.RegisterEndpoint{
		URI:            aor.uri,
		Expires:        e.Expires,
		Contact:        h.contactFor(user),
		Username:       e.Username,
		Password:       e.Password,
		Registrar:      e.Registrar,
		RegistrationID: e.RegistrationID,
	})
}

// contactFor returns our Contact with the given user part.
func (h *Hub) contactFor(user string) string {
	_, port, _ := net.SplitHostPort(h.cfg.ContactAddr)
	c := "<sip:" + user + "@" + net.JoinHostPort(h.host, port)
	if h.cfg.Transport == "tcp" {
		c += ";transport=tcp"
	}
	return c + ">"
}

// unregisterAccount asks the transport to remove a registration.
func (h *Hub) unregisterAccount(o *out, e *events.UnregisterAccount) {
	h.mu.Lock()
	aor, ok := h.regs[e.RegistrationID]
	h.mu.Unlock()
	if !ok && e.RegistrationID == "" {
		h.log.Warn("UnregisterAccount without a registration id")
		return
	}
	if !ok {
		o.send(&events.RegistrationUpdated{RegistrationID: e.RegistrationID, Status: events.RegStatusFailed,
			Error: "unknown registration"})
		return
	}
	o.send(&events.UnregisterEndpoint{URI: aor})
}

// onRegistrationStatus reports the transport's registration outcome to
// the session, under the registration's id.
func (h *Hub) onRegistrationStatus(o *out, e *events.RegistrationStatusUpdate) {
	id := e.RegistrationID
	h.mu.Lock()
	if id == "" {
		for rid, aor := range h.regs {
			if aor == e.URI {
				id = rid
				break
			}
		}
	}
	if e.Status == events.RegStatusUnregistered && id != "" {
		delete(h.regs, id)
	}
	h.mu.Unlock()
	if id == "" {
		id = e.URI // RegistrationUpdated is keyed by its id, which may not be empty
	}
	o.send(&events.RegistrationUpdated{
		RegistrationID: id,
		AOR:            e.URI,
		Status:         e.Status,
		Expires:        e.Expires,
		Error:          e.Error,
	})
}
