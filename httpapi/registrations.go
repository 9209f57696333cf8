package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/callcore/store"
)

// Registration is the registration resource. The password is never in it.
type Registration struct {
	ID        string    `json:"id"`
	Registrar string    `json:"registrar"`
	AOR       string    `json:"aor"`
	Username  string    `json:"username,omitempty"`
	Status    string    `json:"status"`
	Expires   int       `json:"expires,omitempty"`
	Error     string    `json:"error,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

func registrationOf(r store.Registration) Registration {
	return Registration{ID: r.ID, Registrar: r.Registrar, AOR: r.AOR, Username: r.Username,
		Status: r.Status, Expires: r.Expires, Error: r.Error, UpdatedAt: r.UpdatedAt.UTC()}
}

// RegistrationList is the answer of GET /v1/registrations.
type RegistrationList struct {
	Registrations []Registration `json:"registrations"`
}

type registerRequest struct {
	Registrar string `json:"registrar"`
	AOR       string `json:"aor"`
	Username  string `json:"username,omitempty"`
	Password  string `json:"password,omitempty"`
	Expires   *int   `json:"expires,omitempty"`
}

func (q *registerRequest) validate() error {
	q.Registrar, q.AOR = strings.TrimSpace(q.Registrar), strings.TrimSpace(q.AOR)
	if err := requireSIPURI("registrar", q.Registrar); err != nil {
		return err
	}
	if err := requireSIPURI("aor", q.AOR); err != nil {
		return err
	}
	if strings.ContainsAny(q.Username, "\r\n\x00\"\\") || len(q.Username) > 256 {
		return invalid("username", "username holds a character a digest cannot carry, or is over 256 bytes")
	}
	if !oneLine(q.Password) || len(q.Password) > 256 {
		return invalid("password", "password: one line of at most 256 bytes")
	}
	if q.Expires != nil && (*q.Expires < 1 || *q.Expires > maxRegExpires) {
		return invalid("expires", "expires %d: want 1 to %d seconds", *q.Expires, maxRegExpires)
	}
	return nil
}

// register serves POST /v1/registrations: 201 with the registration,
// status "registering" until the registrar answers.
func (a *api) register(w http.ResponseWriter, r *http.Request) {
	var q registerRequest
	if err := decodeBody(w, r, &q); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if err := q.validate(); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
	defer cancel()
	id := callcore.NewID("reg_")
	cmd := &events.CmdRegister{RegistrationID: id, Registrar: q.Registrar, AOR: q.AOR,
		Username: q.Username, Password: events.Secret(q.Password)}
	if q.Expires != nil {
		cmd.Expires = *q.Expires
	}
	if _, err := a.bus.Request(ctx, cmd); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	reg, err := a.syncedRegistration(ctx, id)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	w.Header().Set("Location", "/v1/registrations/"+id)
	writeJSON(w, http.StatusCreated, registrationOf(reg))
}

// syncedRegistration returns registration id once the store applied every
// event published so far.
func (a *api) syncedRegistration(ctx context.Context, id string) (store.Registration, error) {
	if err := a.store.Sync(ctx); err != nil {
		return store.Registration{}, err
	}
	return a.store.Registration(ctx, id)
}

// listRegistrations serves GET /v1/registrations.
func (a *api) listRegistrations(w http.ResponseWriter, r *http.Request) {
	regs, err := a.store.Registrations(r.Context())
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	out := RegistrationList{Registrations: make([]Registration, len(regs))}
	for i, reg := range regs {
		out.Registrations[i] = registrationOf(reg)
	}
	writeJSON(w, http.StatusOK, out)
}

// getRegistration serves GET /v1/registrations/{id}.
func (a *api) getRegistration(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	reg, err := a.store.Registration(r.Context(), id)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, registrationOf(reg))
}

// unregister serves DELETE /v1/registrations/{id}: 202 with the
// registration, status "unregistering" until the registrar answers.
func (a *api) unregister(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
	defer cancel()
	if _, err := a.bus.Request(ctx, &events.CmdUnregister{RegistrationID: id}); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	reg, err := a.syncedRegistration(ctx, id)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusAccepted, registrationOf(reg))
}

// events serves GET /v1/events, the WebSocket feed.
func (a *api) events(w http.ResponseWriter, r *http.Request) {
	if err := a.feed.Handle(w, r); err != nil {
		writeError(w, r, a.log, err)
	}
}
