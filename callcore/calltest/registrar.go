package calltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Registrar is a SIP registrar on loopback that challenges every REGISTER
// with digest authentication (RFC 2617 MD5, qop=auth) for the accounts it
// is given, records the bindings it grants, and counts the REGISTERs it
// sees. A wrong password or an unknown user gets 403 Forbidden, so a client
// that retries on 401 only retries once. It is safe for concurrent use.
type Registrar struct {
	ep       endpoint
	realm    string
	accounts map[string]string
	grant    int

	mu       sync.Mutex
	changed  chan struct{}
	nonces   map[string]bool
	received []Message
	bindings map[string]Registration
	history  []Registration
}

// Registration is a binding the registrar granted: a successful REGISTER.
type Registration struct {
	User    string    // the digest username
	AOR     string    // the To URI
	Contact string    // the first Contact value, "*" for a wildcard
	Expires int       // seconds granted; 0 for an unregistration
	At      time.Time // when it was granted
}

type registrarConfig struct {
	realm    string
	accounts map[string]string
	grant    int
	log      *slog.Logger
}

// RegistrarOption configures a Registrar.
type RegistrarOption func(*registrarConfig)

// WithAccount adds a user and its password.
func WithAccount(user, password string) RegistrarOption {
	return func(c *registrarConfig) { c.accounts[user] = password }
}

// WithRealm sets the digest realm; the default is "calltest".
func WithRealm(realm string) RegistrarOption { return func(c *registrarConfig) { c.realm = realm } }

// WithGrantedExpires caps the Expires the registrar grants (to make a
// client refresh soon); by default it grants what the client asks, 3600
// when it asks nothing.
func WithGrantedExpires(seconds int) RegistrarOption {
	return func(c *registrarConfig) { c.grant = seconds }
}

// WithRegistrarLogger sends the registrar's logs to l; by default they are
// discarded.
func WithRegistrarLogger(l *slog.Logger) RegistrarOption {
	return func(c *registrarConfig) { c.log = l }
}

// NewRegistrar returns a registrar that is not open yet. When tb is not
// nil it is closed at the end of the test.
func NewRegistrar(tb testing.TB, opts ...RegistrarOption) *Registrar {
	cfg := registrarConfig{realm: "calltest", accounts: map[string]string{}}
	for _, o := range opts {
		o(&cfg)
	}
	r := &Registrar{
		ep:       newEndpoint("calltest-registrar", "", cfg.log),
		realm:    cfg.realm,
		accounts: cfg.accounts,
		grant:    cfg.grant,
		changed:  make(chan struct{}),
		nonces:   map[string]bool{},
		bindings: map[string]Registration{},
	}
	if tb != nil {
		tb.Cleanup(func() { _ = r.Close() })
	}
	return r
}

// StartRegistrar returns an open registrar closed at the end of the test;
// it fails the test when the registrar cannot open.
func StartRegistrar(tb testing.TB, opts ...RegistrarOption) *Registrar {
	tb.Helper()
	r := NewRegistrar(tb, opts...)
	if err := r.Open(context.Background()); err != nil {
		tb.Fatalf("calltest: open registrar: %v", err)
	}
	return r
}

// Open binds UDP and TCP on 127.0.0.1, port 0, and starts serving. It
// returns ErrClosed when the registrar was opened or closed before.
func (r *Registrar) Open(ctx context.Context) error {
	return r.ep.open(ctx, func(s *sipgo.Server) {
		s.OnRegister(r.ep.handle(r.onRegister))
		s.OnNoRoute(r.ep.handle(func(req *sip.Request, tx sip.ServerTransaction) {
			r.ep.respond(tx, sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil))
		}))
	}, nil, nil)
}

// Close stops the registrar and waits for its goroutines; it is idempotent
// and returns nil.
func (r *Registrar) Close() error {
	r.ep.close()
	return nil
}

// Addr returns the UDP address, "127.0.0.1:port", or "" before Open.
func (r *Registrar) Addr() string {
	if r.ep.checkOpen() == ErrNotOpen {
		return ""
	}
	return r.ep.udp.LocalAddr().String()
}

// TCPAddr returns the TCP address, or "" before Open.
func (r *Registrar) TCPAddr() string {
	if r.ep.checkOpen() == ErrNotOpen {
		return ""
	}
	return r.ep.tcp.Addr().String()
}

// URI returns the registrar's URI over UDP, "sip:127.0.0.1:port".
func (r *Registrar) URI() string { return "sip:" + r.Addr() }

// TCPURI returns the registrar's URI over TCP.
func (r *Registrar) TCPURI() string { return "sip:" + r.TCPAddr() + ";transport=tcp" }

// Count returns how many REGISTER requests arrived, challenged or not.
func (r *Registrar) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.received)
}

// Received returns every REGISTER that arrived, in order.
func (r *Registrar) Received() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.received)
}

// Registration returns the live binding of user, if any.
func (r *Registrar) Registration(user string) (Registration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reg, ok := r.bindings[user]
	return reg, ok
}

// Registrations returns the live bindings, by user name order.
func (r *Registrar) Registrations() []Registration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Registration, 0, len(r.bindings))
	for _, reg := range r.bindings {
		out = append(out, reg)
	}
	slices.SortFunc(out, func(a, b Registration) int { return strings.Compare(a.User, b.User) })
	return out
}

// History returns every successful REGISTER, refreshes and
// unregistrations (Expires 0) included, in order.
func (r *Registrar) History() []Registration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.history)
}

// WaitCount waits until at least n REGISTERs arrived.
func (r *Registrar) WaitCount(ctx context.Context, n int) error {
	return r.wait(ctx, fmt.Sprintf("%d REGISTERs", n), func() bool { return len(r.received) >= n })
}

// WaitRegistered waits until user has a live binding and returns it.
func (r *Registrar) WaitRegistered(ctx context.Context, user string) (Registration, error) {
	var reg Registration
	err := r.wait(ctx, "registration of "+user, func() bool {
		var ok bool
		reg, ok = r.bindings[user]
		return ok
	})
	return reg, err
}

// WaitUnregistered waits until user sent a successful REGISTER with
// Expires 0.
func (r *Registrar) WaitUnregistered(ctx context.Context, user string) error {
	return r.wait(ctx, "unregistration of "+user, func() bool {
		return slices.ContainsFunc(r.history, func(h Registration) bool { return h.User == user && h.Expires == 0 })
	})
}

func (r *Registrar) wait(ctx context.Context, what string, cond func() bool) error {
	for {
		r.mu.Lock()
		ok, ch := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("calltest: registrar: wait for %s: %w", what, ctx.Err())
		case <-r.ep.ctx.Done():
			return ErrClosed
		}
	}
}

func (r *Registrar) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Registrar) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	r.mu.Lock()
	r.received = append(r.received, requestMessage(req, req.Source()))
	r.notifyLocked()
	r.mu.Unlock()

	h := req.GetHeader("Authorization")
	if h == nil {
		r.challenge(req, tx, false)
		return
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil {
		r.challenge(req, tx, false)
		return
	}
	r.mu.Lock()
	known := r.nonces[cred.Nonce]
	r.mu.Unlock()
	if !known {
		r.challenge(req, tx, true)
		return
	}
	if !r.verify(cred) {
		r.ep.respond(tx, sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
		return
	}

	reg := Registration{User: cred.Username, Expires: 3600, At: time.Now()}
	if to := req.To(); to != nil {
		reg.AOR = to.Address.String()
	}
	if e := req.GetHeader("Expires"); e != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(e.Value())); err == nil {
			reg.Expires = n
		}
	}
	if ct := req.Contact(); ct != nil {
		reg.Contact = ct.Value()
		if ct.Address.Wildcard {
			reg.Contact = "*"
		}
		if v, ok := ct.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				reg.Expires = n
			}
		}
	}
	if r.grant > 0 && reg.Expires > r.grant {
		reg.Expires = r.grant
	}
	r.mu.Lock()
	if reg.Expires > 0 {
		r.bindings[reg.User] = reg
	} else {
		delete(r.bindings, reg.User)
	}
	r.history = append(r.history, reg)
	r.notifyLocked()
	r.mu.Unlock()

	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if ct := req.Contact(); ct != nil && reg.Expires > 0 {
		granted := ct.Clone()
		granted.Params = granted.Params.Clone()
		if granted.Params == nil {
			granted.Params = sip.NewParams()
		}
		granted.Params.Add("expires", strconv.Itoa(reg.Expires))
		res.AppendHeader(granted)
	}
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(reg.Expires)))
	r.ep.respond(tx, res)
}

// challenge answers 401 with a fresh nonce.
func (r *Registrar) challenge(req *sip.Request, tx sip.ServerTransaction, stale bool) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	r.mu.Lock()
	r.nonces[nonce] = true
	r.mu.Unlock()
	chal := digest.Challenge{Realm: r.realm, Nonce: nonce, Opaque: "calltest", Algorithm: "MD5", QOP: []string{"auth"}, Stale: stale}
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", chal.String()))
	r.ep.respond(tx, res)
}

// verify checks digest credentials against the account's password.
func (r *Registrar) verify(cred *digest.Credentials) bool {
	password, ok := r.accounts[cred.Username]
	if !ok || cred.Realm != r.realm {
		return false
	}
	chal := &digest.Challenge{Realm: r.realm, Nonce: cred.Nonce, Opaque: cred.Opaque, Algorithm: cred.Algorithm}
	if cred.QOP != "" {
		chal.QOP = []string{cred.QOP}
	}
	want, err := digest.Digest(chal, digest.Options{
		Method: "REGISTER", URI: cred.URI, Username: cred.Username, Password: password,
		Cnonce: cred.Cnonce, Count: cred.Nc,
	})
	return err == nil && want.Response == cred.Response
}
