package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
)

// The error codes of MediaError (see the package doc). The session layer
// cannot import this package; these strings are the contract.
const (
	ErrorCodeIncompatibleSDP = "incompatible_sdp"
	ErrorCodeNoPort          = "no_port"
	ErrorCodeNoSession       = "no_session"
	ErrorCodeInvalidState    = "invalid_state"
	ErrorCodeInvalidConfig   = "invalid_config"
	ErrorCodeNotSupported    = "not_supported"
	ErrorCodeRTP             = "rtp_error"
	ErrorCodeInternal        = "internal"
)

// closeTimeout bounds how long Close waits for the bus to drain the events
// already queued for the hub.
const closeTimeout = 5 * time.Second

// Config configures a Hub. The zero value advertises 127.0.0.1.
type Config struct {
	// ExternalIP is the address advertised in the SDP (c= and o=): where
	// the far end sends RTP. The zero Addr means 127.0.0.1.
	ExternalIP netip.Addr
}

// Hub is the media layer: it serves session_to_media and rtp_to_media on
// the bus and keeps the media state of every session.
type Hub struct {
	cfg Config
	bus bus.Bus
	log *slog.Logger
	// closeTimeout bounds Close's drain; tests shorten it.
	closeTimeout time.Duration

	mu       sync.Mutex
	state    int // stateNew, stateOpen, stateClosed
	sub      bus.Subscription
	sessions map[string]*session

	closeOnce sync.Once
	closeErr  error
}

const (
	stateNew = iota
	stateOpen
	stateClosed
)

// New returns a Hub for cfg on b, logging to log (nil discards). It starts
// nothing. It returns an error when b is nil or cfg.ExternalIP is
// unspecified (0.0.0.0 or ::), which no far end can send to.
func New(cfg Config, b bus.Bus, log *slog.Logger) (*Hub, error) {
	if b == nil {
		return nil, errors.New("media: nil bus")
	}
	if !cfg.ExternalIP.IsValid() {
		cfg.ExternalIP = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if cfg.ExternalIP.IsUnspecified() {
		return nil, fmt.Errorf("media: ExternalIP %v cannot be advertised in SDP", cfg.ExternalIP)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{cfg: cfg, bus: b, log: log.With("layer", "media"), closeTimeout: closeTimeout,
		sessions: map[string]*session{}}, nil
}

// Open subscribes the hub to session_to_media and rtp_to_media. It returns
// an error when called twice or after Close, and when the bus refuses the
// subscription.
func (h *Hub) Open(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateNew {
		return errors.New("media: Open called twice or after Close")
	}
	sub, err := h.bus.Subscribe(bus.Subscriber{
		Name:     "media",
		Channels: []string{events.ChannelSessionToMedia, events.ChannelRTPToMedia},
		Handle:   h.handle,
	})
	if err != nil {
		return fmt.Errorf("media: subscribe: %w", err)
	}
	h.sub = sub
	h.state = stateOpen
	h.log.Info("media open", "external_ip", h.cfg.ExternalIP)
	return nil
}

// Close unsubscribes from the bus, letting the events already queued for
// the hub be handled (up to a few seconds), and forgets every session; the
// RTP layer closes its own streams. Close is idempotent; it returns the
// bus's error when the queue could not be drained.
func (h *Hub) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		sub, wasOpen := h.sub, h.state == stateOpen
		h.state = stateClosed
		h.mu.Unlock()
		if !wasOpen {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), h.closeTimeout)
		defer cancel()
		if err := sub.Unsubscribe(ctx); err != nil {
			h.closeErr = fmt.Errorf("media: close: %w", err)
		}
		h.mu.Lock()
		n := len(h.sessions)
		h.sessions = map[string]*session{}
		h.mu.Unlock()
		if n > 0 {
			h.log.Info("media closed with sessions", "sessions", n)
		}
	})
	return h.closeErr
}

// StreamInfo is a snapshot of the media state of one session.
type StreamInfo struct {
	SessionID string
	// State is "starting" (waiting for the RTP port), "started" or
	// "stopping" (waiting for the RTP stream to close).
	State string
	// Offerer reports that media made the offer (no remote SDP at start).
	Offerer   bool
	LocalPort int
	// Codec and PayloadType are what is negotiated so far (the first
	// offered codec until the answer arrives).
	Codec       string
	PayloadType uint8
	// DTMFPayloadType is telephone-event's payload type, -1 when not
	// negotiated.
	DTMFPayloadType int
	// Direction is the direction of our SDP: whether we send and receive.
	Direction string
	// Held is set by HoldMedia and cleared by ResumeMedia.
	Held          bool
	RemoteAddress string
	RemotePort    int
	LocalSDP      string
	// PacketsReceived counts the RtpPacketReceived events of the session.
	PacketsReceived uint64
	// Stats are the latest RtpStatisticsUpdate of the session.
	Stats events.RtpStats
}

// Sending reports whether the session's audio goes out: our direction
// sends and the session is not held.
func (i StreamInfo) Sending() bool { return sends(i.Direction) && !i.Held }

// Stream returns a snapshot of the media state of sessionID, and whether
// media knows the session.
func (h *Hub) Stream(sessionID string) (StreamInfo, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sessions[sessionID]
	if s == nil {
		return StreamInfo{}, false
	}
	return s.info(), true
}

// handle serves both channels. Events of one session arrive one at a time
// (bus ordering by key), so a session is never handled twice at once;
// h.mu guards the session map and fields against Stream.
func (h *Hub) handle(ctx context.Context, _ events.Envelope, ev events.Event) error {
	switch ev := ev.(type) {
	case *events.StartMediaStream:
		h.startStream(ctx, ev)
	case *events.UpdateMediaStream:
		h.updateStream(ctx, ev)
	case *events.StopMediaStream:
		h.stopStream(ctx, ev)
	case *events.HoldMedia:
		h.hold(ctx, ev.SessionRef, true)
	case *events.ResumeMedia:
		h.hold(ctx, ev.SessionRef, false)
	case *events.PlayAudio, *events.StopAudio:
		h.notBuilt(ctx, ev, "audio playback")
	case *events.StartRecording, *events.StopRecording:
		h.notBuilt(ctx, ev, "recording")
	case *events.MediaSendDtmf:
		h.notBuilt(ctx, ev, "RFC 4733 DTMF sending")
	case *events.BridgeMedia, *events.UnbridgeMedia:
		h.notBuilt(ctx, ev, "media bridging")

	case *events.RtpStreamStarted:
		h.rtpStarted(ctx, ev)
	case *events.RtpStreamStopped:
		h.rtpStopped(ctx, ev)
	case *events.RtpError:
		h.rtpError(ctx, ev)
	case *events.RtpPacketReceived:
		h.rtpPacket(ev)
	case *events.RtpStatisticsUpdate:
		h.rtpStatistics(ev)
	default:
		return fmt.Errorf("media: unexpected event %s/%s", ev.Channel(), ev.Type())
	}
	return nil
}

// notBuilt answers an event of the audio issue.
func (h *Hub) notBuilt(ctx context.Context, ev events.Event, what string) {
	h.fail(ctx, events.SessionOf(ev), ErrorCodeNotSupported, "%s: %s is not built yet", ev.Type(), what)
}

// fail publishes a MediaError.
func (h *Hub) fail(ctx context.Context, session, code, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.log.Debug("media error", "session_id", session, "error_code", code, "error", msg)
	h.publish(ctx, &events.MediaError{SessionRef: events.SessionRef{SessionID: session},
		Error: msg, ErrorCode: code})
}

// failWith publishes err as a MediaError: its code when it is a
// *mediaError, internal otherwise.
func (h *Hub) failWith(ctx context.Context, session string, err error) {
	var me *mediaError
	if errors.As(err, &me) {
		h.fail(ctx, session, me.code, "%s", me.msg)
		return
	}
	h.fail(ctx, session, ErrorCodeInternal, "%v", err)
}

// publish publishes ev, logging a failure: a handler has no one to return
// it to but the bus, which would only count it.
func (h *Hub) publish(ctx context.Context, ev events.Event) {
	if err := h.bus.Publish(ctx, ev); err != nil {
		h.log.Error("media publish failed", "type", ev.Type(), "session_id", events.SessionOf(ev), "error", err)
	}
}
