package transport

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// registrar is a sipgo peer that challenges every REGISTER without
// credentials with a digest (qop=auth) and grants Expires: grant.
type registrar struct {
	*peer
	password string
	grant    int

	mu     sync.Mutex
	reqs   []*sip.Request
	nonces int
}

func newRegistrar(t *testing.T, password string, grant int) *registrar {
	r := &registrar{password: password, grant: grant}
	r.peer = newPeer(t, func(srv *sipgo.Server) { srv.OnRegister(r.onRegister) })
	return r
}

func (r *registrar) challenge(req *sip.Request, tx sip.ServerTransaction) {
	r.mu.Lock()
	r.nonces++
	nonce := "nonce" + strconv.Itoa(r.nonces)
	r.mu.Unlock()
	chal := digest.Challenge{Realm: "test", Nonce: nonce, Algorithm: "MD5", QOP: []string{"auth"}}
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", chal.String()))
	_ = tx.Respond(res)
}

func (r *registrar) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	h := req.GetHeader("Authorization")
	if h == nil {
		r.challenge(req, tx)
		return
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil {
		r.challenge(req, tx)
		return
	}
	want, err := digest.Digest(&digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm,
		QOP: []string{cred.QOP}}, digest.Options{Method: "REGISTER", URI: cred.URI, Username: cred.Username,
		Password: r.password, Cnonce: cred.Cnonce, Count: cred.Nc})
	if err != nil || want.Response != cred.Response || cred.Username != "alice" {
		r.challenge(req, tx)
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if exp := req.GetHeader("Expires"); exp != nil && exp.Value() != "0" {
		c := req.Contact().Clone()
		c.Params.Add("expires", strconv.Itoa(r.grant))
		res.AppendHeader(c)
		res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(r.grant)))
	}
	_ = tx.Respond(res)
}

func (r *registrar) requests() []*sip.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*sip.Request(nil), r.reqs...)
}

func statusIs(uri string, status events.RegistrationStatus) func(*events.RegistrationStatusUpdate) bool {
	return func(e *events.RegistrationStatusUpdate) bool { return e.URI == uri && e.Status == status }
}

func TestRegister(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run("transport="+network, func(t *testing.T) {
			b := newBus(t)
			rec := record(t, b)
			tr := newTransport(t, b, Config{})
			reg := newRegistrar(t, "secret", 2)
			aor := "sip:alice@example.com"
			registrarURI := "sip:" + reg.addr(network)
			if network == "tcp" {
				registrarURI += ";transport=tcp"
			}
			publish(t, b, &events.RegisterEndpoint{URI: aor, Registrar: registrarURI, Username: "alice",
				Password: "secret", Expires: 2, RegistrationID: "reg1"})

			first := waitEvent(t, rec, "registered", statusIs(aor, events.RegStatusRegistered))
			if first.Expires != 2 || first.RegistrationID != "reg1" || first.Error != "" {
				t.Errorf("got %+v, want expires 2 and registration_id reg1", first)
			}
			// The refresh at 80% of 2s: a second challenged REGISTER pair.
			bustest.CheckFor(t, waitTotal, func() error {
				if n := len(matching(rec, statusIs(aor, events.RegStatusRegistered))); n < 2 {
					return fmt.Errorf("%d registered updates, want 2: %s", n, describe(rec.Events()))
				}
				return nil
			})
			publish(t, b, &events.UnregisterEndpoint{URI: aor})
			waitEvent(t, rec, "unregistered", statusIs(aor, events.RegStatusUnregistered))

			reqs := reg.requests()
			if len(reqs) < 6 {
				t.Fatalf("registrar saw %d REGISTERs, want 2 per registration, refresh and removal", len(reqs))
			}
			wantContact := "sip:alice@" + tr.AdvertisedAddr(network)
			var lastCSeq uint32
			for i, r := range reqs {
				switch {
				case r.CallID().Value() != reqs[0].CallID().Value():
					t.Errorf("REGISTER %d: Call-ID %q changed", i, r.CallID().Value())
				case r.CSeq().SeqNo <= lastCSeq:
					t.Errorf("REGISTER %d: CSeq %d after %d", i, r.CSeq().SeqNo, lastCSeq)
				case r.To().Address.String() != aor || r.From().Params.GetOr("tag", "") == "":
					t.Errorf("REGISTER %d: To %q From %q", i, r.To().Value(), r.From().Value())
				case r.Contact() == nil || !strings.HasPrefix(r.Contact().Address.String(), wantContact):
					t.Errorf("REGISTER %d: Contact %v, want %s", i, r.Contact(), wantContact)
				case r.Recipient.User != "" || r.Recipient.Host != "127.0.0.1":
					t.Errorf("REGISTER %d: Request-URI %s", i, r.Recipient.String())
				}
				lastCSeq = r.CSeq().SeqNo
			}
			last := reqs[len(reqs)-1]
			if last.GetHeader("Expires").Value() != "0" || last.GetHeader("Authorization") == nil {
				t.Errorf("last REGISTER: Expires %q, Authorization %v", last.GetHeader("Expires").Value(), last.GetHeader("Authorization"))
			}
			if n := len(matching(rec, statusIs(aor, events.RegStatusFailed))); n != 0 {
				t.Errorf("%d failed updates: %s", n, describe(rec.Events()))
			}
		})
	}
}

// TestRegisterRefused: credentials the registrar refuses are one failed
// update, and the registration stops (no retry loop).
func TestRegisterRefused(t *testing.T) {
	for _, tc := range []struct {
		name, password string
		wantErr        string
		wantRequests   int
	}{
		{"password=wrong", "wrong", "credentials refused: 401", 2},
		{"password=none", "", "none were given", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBus(t)
			rec := record(t, b)
			tr := newTransport(t, b, Config{RegisterRetry: 10 * time.Millisecond})
			reg := newRegistrar(t, "secret", 60)
			aor := "sip:alice@" + reg.udp
			publish(t, b, &events.RegisterEndpoint{URI: aor, Username: "alice",
				Password: events.Secret(tc.password), RegistrationID: "reg2"})
			failed := waitEvent(t, rec, "failed", statusIs(aor, events.RegStatusFailed))
			if !strings.Contains(failed.Error, tc.wantErr) || failed.RegistrationID != "reg2" {
				t.Errorf("got %+v, want an error mentioning %q", failed, tc.wantErr)
			}
			if strings.Contains(failed.Error, tc.password) && tc.password != "" {
				t.Errorf("error %q shows the password", failed.Error)
			}
			// The registration's goroutine has ended: no retry can follow.
			bustest.CheckFor(t, waitTotal, func() error {
				tr.regs.mu.Lock()
				defer tr.regs.mu.Unlock()
				if len(tr.regs.byURI) > 0 {
					return fmt.Errorf("registration still running")
				}
				return nil
			})
			// Unregistering an unknown URI answers at once, after anything
			// published before for the URI (same key).
			publish(t, b, &events.UnregisterEndpoint{URI: aor})
			waitEvent(t, rec, "unregistered", statusIs(aor, events.RegStatusUnregistered))
			if n := len(matching(rec, statusIs(aor, events.RegStatusFailed))); n != 1 {
				t.Errorf("%d failed updates, want 1: %s", n, describe(rec.Events()))
			}
			if n := len(reg.requests()); n != tc.wantRequests {
				t.Errorf("registrar saw %d REGISTERs, want %d", n, tc.wantRequests)
			}
			if n := len(matching(rec, statusIs(aor, events.RegStatusRegistered))); n != 0 {
				t.Errorf("%d registered updates", n)
			}
		})
	}
}
