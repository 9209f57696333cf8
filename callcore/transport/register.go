package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// maxRegisterRetry caps the backoff between transient registration failures.
const maxRegisterRetry = 10 * time.Minute

// registration is one AOR kept registered by a goroutine of its own.
type registration struct {
	ev    *events.RegisterEndpoint
	ctx   context.Context // ends when replaced or on Close
	stop  context.CancelFunc
	unreg chan struct{} // closed by UnregisterEndpoint
	done  chan struct{} // closed when the goroutine returns

	// The REGISTER dialog (RFC 3261 §10.2): one Call-ID and From tag, a
	// CSeq that grows, one Contact.
	callID    string
	fromTag   string
	cseq      uint32
	registrar string
	network   string
	contact   string
	username  string
}

type registrations struct {
	mu    sync.Mutex
	byURI map[string]*registration
}

func (r *registrations) init() { r.byURI = make(map[string]*registration) }

// remove forgets reg if it is still the registration of its URI.
func (r *registrations) remove(reg *registration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byURI[reg.ev.URI] == reg {
		delete(r.byURI, reg.ev.URI)
	}
}

// stopAll stops every refresh loop, without unregistering.
func (r *registrations) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for uri, reg := range r.byURI {
		reg.stop()
		delete(r.byURI, uri)
	}
}

// regError is a failed REGISTER; permanent ones (wrong credentials, a 4xx
// other than 408/423) are not retried.
type regError struct {
	err       error
	permanent bool
}

func (e *regError) Error() string { return e.err.Error() }
func (e *regError) Unwrap() error { return e.err }

// register executes RegisterEndpoint: it replaces any registration of the
// same URI and starts the goroutine that registers and refreshes it. It
// does not block.
func (t *Hub) register(ctx context.Context, ev *events.RegisterEndpoint) {
	reg, err := t.newRegistration(ev)
	if err != nil {
		t.publish(ctx, &events.RegistrationStatusUpdate{URI: ev.URI, Status: events.RegStatusFailed,
			RegistrationID: ev.RegistrationID, Error: err.Error()})
		return
	}
	reg.ctx, reg.stop = context.WithCancel(ctx)
	t.regs.mu.Lock()
	old := t.regs.byURI[ev.URI]
	t.regs.byURI[ev.URI] = reg
	t.regs.mu.Unlock()
	if old != nil {
		old.stop()
	}
	started := t.g.Go("registration", func(context.Context) {
		defer close(reg.done)
		defer t.regs.remove(reg)
		if old != nil {
			<-old.done
		}
		t.runRegistration(reg)
	})
	if !started {
		t.regs.remove(reg)
		reg.stop()
	}
}

// unregister executes UnregisterEndpoint: the registration's goroutine
// sends REGISTER with Expires: 0 and stops. A URI with no registration is
// reported unregistered at once.
func (t *Hub) unregister(ctx context.Context, ev *events.UnregisterEndpoint) {
	t.regs.mu.Lock()
	reg := t.regs.byURI[ev.URI]
	delete(t.regs.byURI, ev.URI)
	t.regs.mu.Unlock()
	if reg == nil {
		t.publish(ctx, &events.RegistrationStatusUpdate{URI: ev.URI, Status: events.RegStatusUnregistered})
		return
	}
	close(reg.unreg)
}

// newRegistration checks ev and fills in its defaults: the registrar is
// the AOR's domain, the username the AOR's user, the Contact our address.
func (t *Hub) newRegistration(ev *events.RegisterEndpoint) (*registration, error) {
	var aor sip.Uri
	if err := sip.ParseUri(strings.Trim(ev.URI, "<> "), &aor); err != nil {
		return nil, fmt.Errorf("register %s: %w: address of record: %v", ev.URI, ErrBadMessage, err)
	}
	reg := &registration{
		ev:        ev,
		unreg:     make(chan struct{}),
		done:      make(chan struct{}),
		callID:    callcore.NewID("reg_"),
		fromTag:   sip.GenerateTagN(16),
		registrar: strings.Trim(ev.Registrar, "<> "),
		username:  ev.Username,
	}
	if reg.registrar == "" {
		r := sip.Uri{Scheme: aor.Scheme, Host: aor.Host, Port: aor.Port, UriParams: aor.UriParams}
		reg.registrar = r.String()
	} else if !strings.HasPrefix(reg.registrar, "sip:") && !strings.HasPrefix(reg.registrar, "sips:") {
		reg.registrar = "sip:" + reg.registrar // "host:port" is accepted too
	}
	var ruri sip.Uri
	if err := sip.ParseUri(reg.registrar, &ruri); err != nil {
		return nil, fmt.Errorf("register %s: %w: registrar %q: %v", ev.URI, ErrBadMessage, reg.registrar, err)
	}
	network, err := hopNetwork(ruri)
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", ev.URI, err)
	}
	reg.network = network
	if reg.username == "" {
		reg.username = aor.User
	}
	reg.contact = ev.Contact
	if reg.contact == "" {
		a, ok := t.viaAddr(network)
		if !ok {
			return nil, fmt.Errorf("register %s: no contact given and no %s listener to name", ev.URI, network)
		}
		c := sip.Uri{Scheme: "sip", User: aor.User, Host: uriHost(a.Hostname), Port: a.Port}
		if network == "tcp" {
			c.UriParams = sip.NewParams()
			c.UriParams.Add("transport", "tcp")
		}
		reg.contact = "<" + c.String() + ">"
	}
	return reg, nil
}

// runRegistration registers, then refreshes at 80% of the granted
// lifetime, until unregistered, replaced or closed. Every outcome is a
// RegistrationStatusUpdate.
func (t *Hub) runRegistration(reg *registration) {
	want := reg.ev.Expires
	if want <= 0 {
		want = t.cfg.DefaultExpires
	}
	retry := t.cfg.RegisterRetry
	for {
		granted, err := t.sendRegister(reg, want)
		if reg.ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err == nil {
			retry = t.cfg.RegisterRetry
			t.log.Info("registered", "uri", reg.ev.URI, "expires", granted)
			t.publishReg(reg, events.RegStatusRegistered, granted, nil)
			wait = max(time.Duration(granted)*time.Second*8/10, 500*time.Millisecond)
		} else {
			t.log.Info("registration failed", "uri", reg.ev.URI, "error", err)
			t.publishReg(reg, events.RegStatusFailed, 0, err)
			var re *regError
			if errors.As(err, &re) && re.permanent {
				return
			}
			wait, retry = retry, min(retry*2, maxRegisterRetry)
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-reg.unreg:
			timer.Stop()
			if _, err := t.sendRegister(reg, 0); err != nil {
				t.publishReg(reg, events.RegStatusFailed, 0, err)
				return
			}
			t.log.Info("unregistered", "uri", reg.ev.URI)
			t.publishReg(reg, events.RegStatusUnregistered, 0, nil)
			return
		case <-reg.ctx.Done():
			timer.Stop()
			return
		}
	}
}

func (t *Hub) publishReg(reg *registration, status events.RegistrationStatus, expires int, err error) {
	ev := &events.RegistrationStatusUpdate{URI: reg.ev.URI, Status: status, Expires: expires,
		RegistrationID: reg.ev.RegistrationID}
	if err != nil {
		ev.Error = err.Error()
	}
	t.publish(reg.ctx, ev)
}

// sendRegister sends one REGISTER asking for expires seconds, answering a
// digest challenge once, and returns the lifetime granted.
func (t *Hub) sendRegister(reg *registration, expires int) (int, error) {
	reg.cseq++
	hs := events.Headers{
		{Name: "From", Value: "<" + strings.Trim(reg.ev.URI, "<> ") + ">;tag=" + reg.fromTag},
		{Name: "To", Value: "<" + strings.Trim(reg.ev.URI, "<> ") + ">"},
		{Name: "Call-ID", Value: reg.callID},
		{Name: "CSeq", Value: strconv.FormatUint(uint64(reg.cseq), 10) + " REGISTER"},
		{Name: "Contact", Value: reg.contact},
		{Name: "Expires", Value: strconv.Itoa(expires)},
	}
	fail := func(permanent bool, format string, args ...any) (int, error) {
		return 0, &regError{err: fmt.Errorf("register %s: "+format, append([]any{reg.ev.URI}, args...)...), permanent: permanent}
	}
	req, network, err := t.buildRequest(string(sip.REGISTER), reg.registrar, hs, "")
	if err != nil {
		return fail(true, "%w", err)
	}
	client := t.clients[network]
	tx, err := client.TransactionRequest(reg.ctx, req, prebuilt)
	if err != nil {
		return fail(false, "%w", describeSendError(err, req))
	}
	res, err := finalResponse(reg.ctx, tx)
	if err != nil {
		return fail(false, "%w", err)
	}
	if res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired {
		if reg.ev.Password == "" {
			return fail(true, "registrar asks for credentials (%d %s) and none were given", res.StatusCode, res.Reason)
		}
		tx, err := client.TransactionDigestAuth(reg.ctx, req, res, sipgo.DigestAuth{
			Username: reg.username, Password: string(reg.ev.Password)})
		if err != nil {
			return fail(true, "answer digest challenge: %w", err)
		}
		if res, err = finalResponse(reg.ctx, tx); err != nil {
			return fail(false, "%w", err)
		}
	}
	reg.cseq = cseqOf(req) // sipgo's digest retry took the next one
	switch code := res.StatusCode; {
	case res.IsSuccess():
		if expires == 0 {
			return 0, nil
		}
		return grantedExpires(res, reg.contact, expires), nil
	case code == sip.StatusUnauthorized || code == sip.StatusForbidden || code == sip.StatusProxyAuthRequired:
		return fail(true, "credentials refused: %d %s", code, res.Reason)
	case code == 423: // Interval Too Brief
		if minExp, err := strconv.Atoi(headerValue(res, "Min-Expires")); err == nil && minExp > expires {
			return t.sendRegister(reg, minExp)
		}
		return fail(true, "%d %s", code, res.Reason)
	case code == sip.StatusRequestTimeout || code >= 500 && code < 600:
		return fail(false, "%d %s", code, res.Reason)
	default:
		return fail(true, "%d %s", code, res.Reason)
	}
}

// finalResponse waits for tx's final response and terminates tx.
func finalResponse(ctx context.Context, tx sip.ClientTransaction) (*sip.Response, error) {
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if !res.IsProvisional() {
				return res, nil
			}
		case <-tx.Done():
			return nil, tx.Err()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// grantedExpires reads the lifetime the registrar granted our contact:
// its Contact's expires parameter, else the Expires header, else what we
// asked for (RFC 3261 §10.2.4).
func grantedExpires(res *sip.Response, contact string, asked int) int {
	var ours *sip.ContactHeader
	if hs, err := parseHeaders(events.Headers{{Name: "Contact", Value: contact}}); err == nil && len(hs) == 1 {
		ours, _ = hs[0].(*sip.ContactHeader)
	}
	var only string
	n := 0
	for _, h := range res.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			continue
		}
		exp, has := c.Params.Get("expires")
		if !has {
			continue
		}
		n++
		only = exp
		if ours != nil && sameContact(&c.Address, &ours.Address) {
			if v, err := strconv.Atoi(exp); err == nil {
				return v
			}
		}
	}
	if n == 1 {
		if v, err := strconv.Atoi(only); err == nil {
			return v
		}
	}
	if v, err := strconv.Atoi(headerValue(res, "Expires")); err == nil {
		return v
	}
	return asked
}

// sameContact compares the user, host and port of two contact URIs.
func sameContact(a, b *sip.Uri) bool {
	port := func(u *sip.Uri) int {
		if u.Port == 0 {
			return sip.DefaultUdpPort
		}
		return u.Port
	}
	ha, hb := strings.Trim(a.Host, "[]"), strings.Trim(b.Host, "[]")
	sameHost := strings.EqualFold(ha, hb)
	if ipa, ipb := net.ParseIP(ha), net.ParseIP(hb); ipa != nil && ipb != nil {
		sameHost = ipa.Equal(ipb)
	}
	return a.User == b.User && sameHost && port(a) == port(b)
}

// headerValue returns the trimmed value of msg's first header called name.
func headerValue(msg *sip.Response, name string) string {
	if h := msg.GetHeader(name); h != nil {
		return strings.TrimSpace(h.Value())
	}
	return ""
}
