// Package dialog is the SIP dialog layer of callbus (RFC 3261 §12–§17, RFC
// 3515, RFC 6086 and RFC 3891 from the UA core's point of view), as fixed by
// docs/signalling.md.
//
// Hub is a hub on the bus. It receives transport_to_dialog (SIP requests
// and responses as the transport parsed them) and session_to_dialog (the
// session layer's call commands), keeps the state of every dialog — Call-ID,
// tags, CSeq, route set, remote target, pending transactions — and
// publishes what must be sent as dialog_to_transport and what the session
// must know as dialog_to_session. It never sends anything itself and never
// imports another layer.
package dialog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
)

// Default timers of RFC 3261 §17.1.1.1.
const (
	DefaultT1 = 500 * time.Millisecond
	DefaultT2 = 4 * time.Second
)

// Config configures Hub. Only ContactAddr is required.
type Config struct {
	// ContactAddr is the host:port the transport layer is bound to (or the
	// external address it advertises); it goes into every Contact header.
	ContactAddr string
	// Transport is "udp" (the default) or "tcp"; "tcp" adds
	// ;transport=tcp to Contact so that the far end reaches us over TCP.
	Transport string
	// ContactUser is the user part of our Contact URI. Default "callbus".
	ContactUser string
	// UserAgent, when set, is sent as User-Agent in the requests the dialog
	// builds and as Server in its responses.
	UserAgent string
	// FromDisplay is the display name of From in outgoing INVITEs whose
	// from has none of its own.
	FromDisplay string
	// T1 is the round-trip estimate that paces 2xx retransmissions.
	// Default DefaultT1.
	T1 time.Duration
	// T2 caps the 2xx retransmission interval. Default DefaultT2.
	T2 time.Duration
	// NoACKTimeout is how long a 2xx to an INVITE is retransmitted before
	// the dialog gives up on its ACK and sends BYE. Default 64·T1.
	NoACKTimeout time.Duration
	// DtmfDuration is the Duration, in milliseconds, of the INFO DTMF the
	// dialog sends. Default 160.
	DtmfDuration int
}

func (c Config) withDefaults() Config {
	if c.Transport == "" {
		c.Transport = "udp"
	}
	c.Transport = strings.ToLower(c.Transport)
	if c.ContactUser == "" {
		c.ContactUser = "callbus"
	}
	if c.T1 <= 0 {
		c.T1 = DefaultT1
	}
	if c.T2 <= 0 {
		c.T2 = DefaultT2
	}
	if c.T2 < c.T1 {
		c.T2 = c.T1
	}
	if c.NoACKTimeout <= 0 {
		c.NoACKTimeout = 64 * c.T1
	}
	if c.DtmfDuration <= 0 {
		c.DtmfDuration = 160
	}
	return c
}

// The package's sentinel errors.
var (
	// ErrConfig is wrapped by New for an invalid Config.
	ErrConfig = errors.New("dialog: invalid config")
	// ErrClosed is returned by Open after Close.
	ErrClosed = errors.New("dialog: closed")
	// ErrOpen is returned by Open when Hub is already open.
	ErrOpen = errors.New("dialog: already open")
)

// Hub is the dialog hub. Build it with New, start it with Open and
// stop it with Close. Its methods are safe for concurrent use.
type Hub struct {
	cfg     Config
	bus     bus.Bus
	log     *slog.Logger
	host    string // the Contact host, for Call-IDs and default From
	contact string // our Contact header value
	node    string

	// mu guards the indexes below; a dialog's own state is guarded by its
	// own mu. Lock order: dialog.mu, then Hub.mu — never the reverse.
	mu        sync.Mutex
	byCall    map[string]*dialog
	bySession map[string]*dialog
	byTx      map[string]*dialog
	regs      map[string]string // registration id → AOR

	timers timers

	life     sync.Mutex // guards the fields below; held by Close
	sub      bus.Subscription
	opened   bool
	closed   bool
	closeErr error
}

// New returns a dialog hub publishing on b. It starts nothing. It returns
// an error wrapping ErrConfig when cfg.ContactAddr is not a host:port or
// cfg.Transport is neither udp nor tcp, or when b is nil.
func New(cfg Config, b bus.Bus, log *slog.Logger) (*Hub, error) {
	cfg = cfg.withDefaults()
	if b == nil {
		return nil, fmt.Errorf("%w: nil bus", ErrConfig)
	}
	host, port, err := net.SplitHostPort(cfg.ContactAddr)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("%w: ContactAddr %q is not host:port", ErrConfig, cfg.ContactAddr)
	}
	if cfg.Transport != "udp" && cfg.Transport != "tcp" {
		return nil, fmt.Errorf("%w: Transport %q (want udp or tcp)", ErrConfig, cfg.Transport)
	}
	if log == nil {
		log = slog.Default()
	}
	contact := "<sip:" + cfg.ContactUser + "@" + net.JoinHostPort(host, port)
	if cfg.Transport == "tcp" {
		contact += ";transport=tcp"
	}
	contact += ">"
	return &Hub{
		cfg:       cfg,
		bus:       b,
		log:       log.With("layer", "dialog"),
		host:      host,
		contact:   contact,
		node:      b.Node(),
		byCall:    make(map[string]*dialog),
		bySession: make(map[string]*dialog),
		byTx:      make(map[string]*dialog),
		regs:      make(map[string]string),
	}, nil
}

// Open subscribes the hub to transport_to_dialog and session_to_dialog.
// From then on its timers (2xx retransmission, ACK timeout) may run; Close
// stops them. It returns ErrOpen when already open, ErrClosed after Close,
// ctx's error when ctx has ended, and the bus's error when it refuses the
// subscription.
func (h *Hub) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h.life.Lock()
	defer h.life.Unlock()
	switch {
	case h.closed:
		return ErrClosed
	case h.opened:
		return ErrOpen
	}
	// The timers run before the first event can arm one.
	h.timers.open(callcore.NewGroup(context.WithoutCancel(ctx), "dialog"))
	sub, err := h.bus.Subscribe(bus.Subscriber{
		Name:     "dialog",
		Channels: []string{events.ChannelTransportToDialog, events.ChannelSessionToDialog},
		Handle:   h.handle,
	})
	if err != nil {
		h.timers.close()
		return fmt.Errorf("dialog: subscribe: %w", err)
	}
	h.sub = sub
	h.opened = true
	return nil
}

// Close unsubscribes from the bus (letting queued events drain until ctx
// ends), stops every timer and waits, until ctx ends, for the timer
// callbacks running; their publishes are cancelled. Dialogs in progress
// are abandoned. When ctx ends first the error says what was cut short:
// the bus's *bus.DrainError for the events not handled, a
// *callcore.RunningError for the callbacks still running. Close is
// idempotent: a later call waits for the first and returns its result.
func (h *Hub) Close(ctx context.Context) error {
	h.life.Lock()
	defer h.life.Unlock()
	if h.closed {
		return h.closeErr
	}
	h.closed = true
	var errs []error
	if h.sub != nil {
		if err := h.sub.Unsubscribe(ctx); err != nil {
			errs = append(errs, fmt.Errorf("dialog: close: %w", err))
		}
	}
	if g := h.timers.close(); g != nil {
		if err := g.Wait(ctx); err != nil {
			errs = append(errs, fmt.Errorf("dialog: close: %w", err))
		}
	}
	h.closeErr = errors.Join(errs...)
	return h.closeErr
}

// handle is the one bus handler of the hub: transport events arrive keyed
// by Call-ID (or transaction id), session events by session id, so two
// events of one dialog may be handled at once; each dialog's mu orders them.
func (h *Hub) handle(ctx context.Context, env events.Envelope, ev events.Event) error {
	o := &out{h: h, ctx: ctx, cause: env.ID}
	switch e := ev.(type) {
	case *events.SipMessageReceived:
		h.onRequest(o, e)
	case *events.SipResponseReceived:
		h.onResponse(o, e)
	case *events.TransportError:
		h.onTransportError(o, e)
	case *events.RegistrationStatusUpdate:
		h.onRegistrationStatus(o, e)
	case *events.InitiateCall:
		h.initiateCall(o, e)
	case *events.AcceptCall:
		h.acceptCall(o, e)
	case *events.RejectCall:
		h.rejectCall(o, e)
	case *events.TerminateSession:
		h.terminateSession(o, e)
	case *events.HoldSession:
		h.sendReinvite(o, e.SessionID, e.SDPOffer, true)
	case *events.ResumeSession:
		h.sendReinvite(o, e.SessionID, e.SDPOffer, false)
	case *events.TransferCall:
		h.transferCall(o, e)
	case *events.TransferProgress:
		h.transferProgress(o, e)
	case *events.SendDtmf:
		h.sendDtmf(o, e)
	case *events.RegisterAccount:
		h.registerAccount(o, e)
	case *events.UnregisterAccount:
		h.unregisterAccount(o, e)
	default:
		h.log.Warn("event not handled by dialog", "type", ev.Type(), "channel", ev.Channel())
	}
	return o.err
}

// out publishes on behalf of one handler run or one timer firing, so that
// everything it publishes names the right cause.
type out struct {
	h     *Hub
	ctx   context.Context
	cause events.ID
	err   error
}

// send publishes ev. A failure is kept (the first one) for the handler to
// return, so the bus counts and logs it; the dialog goes on regardless.
func (o *out) send(ev events.Event) {
	if err := o.h.bus.Publish(o.ctx, ev); err != nil && o.err == nil {
		o.err = fmt.Errorf("dialog: publish %s (key %s): %w", ev.Type(), ev.Key(), err)
	}
}

// logErr logs what a timer failed to publish (timers have no handler to
// return it to).
func (o *out) logErr() {
	if o.err != nil {
		o.h.log.Error("timer publish failed", "error", o.err)
	}
}

// after runs fn after d on the hub's timers, with an out whose publishes
// name cause and end at Close. It returns nil once the hub is closing.
func (h *Hub) after(d time.Duration, cause events.ID, fn func(o *out)) *timer {
	return h.timers.after(d, func(ctx context.Context) {
		o := &out{h: h, ctx: bus.WithCause(ctx, cause), cause: cause}
		fn(o)
		o.logErr()
	})
}

// Lookups. Each returns the dialog unlocked; the caller locks it and checks
// that it has not ended meanwhile.

func (h *Hub) byCallID(id string) *dialog {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byCall[id]
}

func (h *Hub) bySessionID(id string) *dialog {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bySession[id]
}

func (h *Hub) byTxID(id string) *dialog {
	if id == "" {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byTx[id]
}

// lockSession returns the live dialog of a session, locked, or nil.
func (h *Hub) lockSession(id string) *dialog {
	d := h.bySessionID(id)
	if d == nil {
		return nil
	}
	d.mu.Lock()
	if d.phase == phaseEnded {
		d.mu.Unlock()
		return nil
	}
	return d
}

// add indexes d (locked by the caller) unless its Call-ID or session is
// taken, in which case it returns the dialog that holds it.
func (h *Hub) add(d *dialog) *dialog {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old := h.byCall[d.callID]; old != nil {
		return old
	}
	if old := h.bySession[d.sessionID]; old != nil {
		return old
	}
	h.byCall[d.callID] = d
	h.bySession[d.sessionID] = d
	return nil
}

// trackTx indexes a transaction id of d, so that its responses and
// TransportErrors (keyed by transaction id alone) find the dialog.
func (h *Hub) trackTx(tx string, d *dialog) {
	h.mu.Lock()
	h.byTx[tx] = d
	h.mu.Unlock()
}

func (h *Hub) untrackTx(tx string) {
	h.mu.Lock()
	delete(h.byTx, tx)
	h.mu.Unlock()
}

// remove forgets d (locked by the caller) everywhere and stops its timers.
func (h *Hub) remove(d *dialog) {
	d.phase = phaseEnded
	d.stopOK()
	h.mu.Lock()
	if h.byCall[d.callID] == d {
		delete(h.byCall, d.callID)
	}
	if h.bySession[d.sessionID] == d {
		delete(h.bySession, d.sessionID)
	}
	for tx := range d.txs {
		if h.byTx[tx] == d {
			delete(h.byTx, tx)
		}
	}
	if d.serverTx != "" && h.byTx[d.serverTx] == d {
		delete(h.byTx, d.serverTx)
	}
	h.mu.Unlock()
	d.txs = nil
}

// count returns how many dialogs are live (for tests and metrics).
func (h *Hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bySession)
}
