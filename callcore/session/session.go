// Package session is the call state machine of callbus (docs/signalling.md,
// section "session"). It is driven only by bus events: it receives
// dialog_to_session and media_to_session, serves the api_to_session commands
// and publishes session_to_dialog, session_to_media and session_to_app.
//
// One bus subscriber takes all three input channels, so the events of one
// call (all keyed by its session id) are handled one at a time, while
// different calls are handled in parallel. A call's own timers (ring
// timeout, recording limit, teardown guard) take the same per-call lock as
// its handlers, so they never interleave with them.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
)

// Policy says what an inbound call does when it arrives.
type Policy string

// The inbound policies (CALLBUS_INBOUND).
const (
	// PolicyRing lets an inbound call ring until AnswerCall, RejectCall or
	// HangupCall, or until Config.RingTimeout (then 480, end reason no_answer).
	PolicyRing Policy = "ring"
	// PolicyAnswer answers every inbound call at once.
	PolicyAnswer Policy = "answer"
	// PolicyWebhook hands inbound calls to the IVR app. The IVR comes in a
	// later issue: until then a call under PolicyWebhook rings exactly as
	// under PolicyRing, and the IVR will answer it with AnswerCall.
	PolicyWebhook Policy = "webhook"
)

// The built-in numbers (the user part of an inbound call's To URI) that
// answer at once whatever the policy (DESIGN.md §5).
const (
	NumberEcho = "echo"
	NumberTone = "tone"
)

// Defaults of Config.
const (
	DefaultRingTimeout     = 30 * time.Second
	DefaultRecentCalls     = 1000
	DefaultFrom            = "sip:callbus@localhost"
	DefaultRecordingDir    = "recordings"
	DefaultTeardownTimeout = 40 * time.Second
	DefaultDtmfDurationMS  = 100 // of SendDtmf over RFC 4733
)

// Config configures Hub. The zero value works.
type Config struct {
	// Node is the id of this node, the owner part of new session ids
	// (callcore.NewSessionID). Default: the bus's Node().
	Node string
	// Inbound is the policy for inbound calls. Default PolicyRing.
	Inbound Policy
	// RingTimeout bounds how long a call rings unanswered: an inbound call
	// under PolicyRing is then rejected with 480, an outgoing call without
	// ring_timeout_s is cancelled; both end with reason no_answer.
	// Default 30s.
	RingTimeout time.Duration
	// MaxCalls bounds the live (not terminated) calls: an inbound call past
	// it is rejected with 503, a MakeCall is answered unavailable. 0 means
	// no limit.
	MaxCalls int
	// From is the From URI of outgoing calls whose MakeCall names none, and
	// of the calls placed for a transfer the far end asked for (REFER).
	// Default DefaultFrom.
	From string
	// Codecs lists the codecs offered and accepted, in order of preference.
	// Default ["PCMU", "PCMA"].
	Codecs []string
	// RecentCalls is how many terminated calls Get and List keep reporting
	// (a ring: the oldest is forgotten first). Default 1000.
	RecentCalls int
	// RecordingDir is where recordings are written; the media layer creates
	// the files. Default "recordings".
	RecordingDir string
	// TeardownTimeout bounds how long a call may stay terminating while it
	// waits for CallTerminated and MediaStreamStopped; past it the call
	// ends anyway. Default 40s (longer than a BYE transaction's 32s).
	TeardownTimeout time.Duration
}

// Errors of New and Open.
var (
	ErrBadConfig   = errors.New("session: bad config")
	ErrAlreadyOpen = errors.New("session: already open")
	ErrClosed      = errors.New("session: closed")
)

func (c Config) withDefaults(node string) (Config, error) {
	if c.Node == "" {
		c.Node = node
	}
	if c.Inbound == "" {
		c.Inbound = PolicyRing
	}
	switch c.Inbound {
	case PolicyRing, PolicyAnswer, PolicyWebhook:
	default:
		return c, fmt.Errorf("%w: inbound policy %q: want ring, answer or webhook", ErrBadConfig, c.Inbound)
	}
	if c.RingTimeout < 0 || c.TeardownTimeout < 0 || c.MaxCalls < 0 || c.RecentCalls < 0 {
		return c, fmt.Errorf("%w: negative RingTimeout, TeardownTimeout, MaxCalls or RecentCalls", ErrBadConfig)
	}
	if c.RingTimeout == 0 {
		c.RingTimeout = DefaultRingTimeout
	}
	if c.TeardownTimeout == 0 {
		c.TeardownTimeout = DefaultTeardownTimeout
	}
	if c.RecentCalls == 0 {
		c.RecentCalls = DefaultRecentCalls
	}
	if c.From == "" {
		c.From = DefaultFrom
	}
	if !validSIPURI(c.From) {
		return c, fmt.Errorf("%w: From %q is not a sip: or sips: URI", ErrBadConfig, c.From)
	}
	if len(c.Codecs) == 0 {
		c.Codecs = []string{"PCMU", "PCMA"}
	}
	if c.RecordingDir == "" {
		c.RecordingDir = DefaultRecordingDir
	}
	return c, nil
}

// Hub is the session layer: every call's state machine. Create it with
// New, start it with Open and stop it with Close. Get and List are safe
// for concurrent use at any time.
type Hub struct {
	cfg   Config
	bus   bus.Bus
	log   *slog.Logger
	media events.MediaConfig

	mu      sync.RWMutex // guards calls, live, created, ring, next, regs and every call's bridge changes
	calls   map[string]*call
	live    int
	created uint64
	ring    []string // ids of terminated calls, oldest at next
	next    int
	regs    map[string]*registration

	// g runs the timers' callbacks; its context bounds their publishes.
	g      *callcore.Group
	timers timers

	life     sync.Mutex // guards sub, opened, closed and closeErr; held by Close
	sub      bus.Subscription
	opened   bool
	closed   bool
	closeErr error
}

// New returns the session layer configured by cfg, publishing on b. It
// starts nothing. It returns an error wrapping ErrBadConfig when cfg is
// invalid. A nil log takes slog.Default().
func New(cfg Config, b bus.Bus, log *slog.Logger) (*Hub, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: nil bus", ErrBadConfig)
	}
	cfg, err := cfg.withDefaults(b.Node())
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Hub{
		cfg:   cfg,
		bus:   b,
		log:   log.With("layer", "session"),
		media: events.MediaConfig{Codecs: append([]string(nil), cfg.Codecs...)},
		calls: make(map[string]*call),
		ring:  make([]string, cfg.RecentCalls),
		regs:  make(map[string]*registration),
	}
	s.g = callcore.NewGroup(context.Background(), "session")
	s.timers.init(s.g)
	return s, nil
}

// Open subscribes to the bus. It returns ErrAlreadyOpen when called twice,
// ErrClosed after Close, and the bus's error when it refuses the subscriber
// (another server of api_to_session, a closed bus).
func (s *Hub) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.life.Lock()
	defer s.life.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.opened:
		return ErrAlreadyOpen
	}
	sub, err := s.bus.Subscribe(bus.Subscriber{
		Name: "session",
		Channels: []string{events.ChannelDialogToSession, events.ChannelMediaToSession,
			events.ChannelAPIToSession},
		Handle: s.handle,
		Serve:  s.serve,
	})
	if err != nil {
		return fmt.Errorf("session: subscribe: %w", err)
	}
	s.sub, s.opened = sub, true
	return nil
}

// Close unsubscribes (handling what is already queued until ctx ends),
// stops every timer and waits, until ctx ends, for the timer callbacks
// that are running; their publishes are cancelled. When ctx ends first the
// error says what was cut short: the bus's *bus.DrainError for the events
// not handled, a *callcore.RunningError for the callbacks still running.
// Close is idempotent: a later call waits for the first and returns its
// result.
func (s *Hub) Close(ctx context.Context) error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return s.closeErr
	}
	s.closed = true
	var errs []error
	if s.sub != nil {
		if err := s.sub.Unsubscribe(ctx); err != nil {
			errs = append(errs, fmt.Errorf("session: close: %w", err))
		}
	}
	s.timers.stopAll()
	if err := s.g.Wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("session: close: %w", err))
	}
	s.closeErr = errors.Join(errs...)
	return s.closeErr
}

// handle receives the dialog_to_session and media_to_session events, and
// api_to_session commands that were published instead of requested (their
// reply is dropped).
func (s *Hub) handle(ctx context.Context, env events.Envelope, ev events.Event) error {
	switch e := ev.(type) {
	case *events.IncomingCall:
		return s.onIncomingCall(ctx, env, e)
	case *events.RegistrationUpdated:
		return s.onRegistrationUpdated(ctx, e)
	}
	if ev.Channel() == events.ChannelAPIToSession {
		_, err := s.serve(ctx, env, ev)
		if err != nil && callcore.ErrorCode(err) != callcore.CodeInternal {
			s.log.Info("published command refused", "type", ev.Type(), "session_id", ev.Key(), "error", err)
			return nil
		}
		return err
	}
	c := s.lookup(events.SessionOf(ev))
	if c == nil {
		s.log.Debug("event for an unknown session", "type", ev.Type(), "key", ev.Key(), "event_id", env.ID)
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := s.begin(c, env.ID)
	switch e := ev.(type) {
	case *events.CallStateChanged:
		s.onCallStateChanged(st, e)
	case *events.CallEstablished:
		s.onCallEstablished(st, e)
	case *events.CallTerminated:
		s.onCallTerminated(st, e)
	case *events.DtmfReceived:
		s.onDtmfReceived(st, e)
	case *events.DialogError:
		s.onDialogError(st, e)
	case *events.ReinviteReceived:
		s.onReinviteReceived(st, e)
	case *events.TransferRequested:
		if err := s.onTransferRequested(ctx, st, e); err != nil {
			return err
		}
	case *events.MediaStreamStarted:
		s.onMediaStreamStarted(st, e)
	case *events.MediaStreamStopped:
		s.onMediaStreamStopped(st, e)
	case *events.MediaQualityUpdate:
		s.onMediaQualityUpdate(st, e)
	case *events.RecordingStarted:
		s.onRecordingStarted(st, e)
	case *events.RecordingStopped:
		s.onRecordingStopped(st, e)
	case *events.AudioPlaybackFinished:
		s.onAudioPlaybackFinished(st, e)
	case *events.MediaError:
		s.onMediaError(st, e)
	case *events.DtmfDetected:
		s.onDtmfDetected(st, e)
	default:
		// A new event type in the catalogue that this layer does not handle
		// yet is a defect (DESIGN.md §3): say so loudly.
		return fmt.Errorf("session %s: no handler for %s/%s", c.id, ev.Channel(), ev.Type())
	}
	return st.flush(ctx)
}

// serve answers the api_to_session commands.
func (s *Hub) serve(ctx context.Context, env events.Envelope, cmd events.Event) (*events.CommandResult, error) {
	switch e := cmd.(type) {
	case *events.CmdMakeCall:
		return s.makeCall(ctx, env, e)
	case *events.CmdRegister:
		return s.register(ctx, e)
	case *events.CmdUnregister:
		return s.unregister(ctx, e)
	}
	id := events.SessionOf(cmd)
	c := s.lookup(id)
	if c == nil {
		return nil, &callcore.Error{Code: callcore.CodeNotFound, Message: fmt.Sprintf("call %q not found", id)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := s.begin(c, env.ID)
	var err error
	switch e := cmd.(type) {
	case *events.CmdAnswerCall:
		err = s.answerCall(st)
	case *events.CmdRejectCall:
		err = s.rejectCall(st, e)
	case *events.CmdHangupCall:
		err = s.hangupCall(st, e)
	case *events.CmdHoldCall:
		err = s.holdCall(st)
	case *events.CmdResumeCall:
		err = s.resumeCall(st)
	case *events.CmdTransferCall:
		err = s.transferCall(st, e)
	case *events.CmdSendDtmf:
		err = s.sendDtmf(st, e)
	case *events.CmdPlayAudio:
		err = s.playAudio(st, e)
	case *events.CmdStopAudio:
		err = s.stopAudio(st)
	case *events.CmdStartRecording:
		err = s.startRecording(st, e)
	case *events.CmdStopRecording:
		err = s.stopRecording(st)
	case *events.CmdBridgeCalls:
		err = s.bridgeCalls(st, e)
	default:
		return nil, fmt.Errorf("session %s: no server for command %s", c.id, cmd.Type())
	}
	if err != nil {
		return nil, err
	}
	res := &events.CommandResult{ID: c.id, State: string(c.state)}
	if err := st.flush(ctx); err != nil {
		return nil, &callcore.Error{Code: callcore.CodeUnavailable,
			Message: fmt.Sprintf("call %s: %s accepted but not published", c.id, cmd.Type()), Err: err}
	}
	return res, nil
}
