package media

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/callcore/sdp"
)

// tickInterval is the sender clock's period: one 20 ms G.711 frame.
const tickInterval = 20 * time.Millisecond

// Config configures a Hub. The zero value advertises 127.0.0.1 and plays
// no files.
type Config struct {
	// ExternalIP is the address advertised in the SDP (c= and o=): where
	// the far end sends RTP. The zero Addr means 127.0.0.1.
	ExternalIP netip.Addr
	// MediaDir is the directory PlayAudio's files are read from (relative
	// names, or absolute ones inside it); nothing outside it can be
	// played. "" refuses every file playback (URLs still play).
	MediaDir string
}

// Hub is the media layer: it serves session_to_media and rtp_to_media on
// the bus, keeps the media state of every session and runs the sender
// clock that paces every session's outgoing audio.
type Hub struct {
	cfg Config
	bus bus.Bus
	log *slog.Logger
	// tick is the clock's period (tickInterval).
	tick time.Duration

	// g runs the clock and the recording writers. ctx, its context, lives
	// from New to Close: they publish with it. clockCtx is ctx with an
	// explicit empty cause, which Publish reads without a Value walk.
	g        *callcore.Group
	ctx      context.Context
	clockCtx context.Context

	// sessions maps session id → *session. It is read on every received
	// packet, so it is a sync.Map rather than a map under mu.
	sessions sync.Map
	// active is the clock's list of started sessions, replaced (never
	// modified) under mu.
	active atomic.Pointer[[]*session]

	rootMu sync.Mutex
	root   *os.Root // MediaDir, nil without one or until it exists (mediaRoot)
	clips  *clipCache
	http   *http.Client
	// createWAV opens a recording; tests replace it to make writes fail.
	createWAV func(path string, channels int) (wavSink, error)

	pacing pacing
	// silence is a frame of silence in PCMU and PCMA (silenceIndex).
	silence [2][audio.FrameSamples]byte

	mu        sync.Mutex
	state     int // stateNew, stateOpen, stateClosed
	sub       bus.Subscription
	clockStop chan struct{}

	closeOnce sync.Once
	closeErr  error
}

const (
	stateNew = iota
	stateOpen
	stateClosed
)

// New returns a Hub for cfg on b, logging to log (nil discards). It starts
// nothing. It returns an error when b is nil, cfg.ExternalIP is
// unspecified (0.0.0.0 or ::), which no far end can send to, or
// cfg.MediaDir cannot be made absolute.
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
	if cfg.MediaDir != "" {
		dir, err := filepath.Abs(cfg.MediaDir)
		if err != nil {
			return nil, fmt.Errorf("media: MediaDir %s: %w", cfg.MediaDir, err)
		}
		cfg.MediaDir = dir
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := callcore.NewGroup(context.Background(), "media")
	h := &Hub{cfg: cfg, bus: b, log: log.With("layer", "media"), tick: tickInterval,
		g: g, ctx: g.Context(), clockCtx: bus.WithCause(g.Context(), events.ID{}),
		clips: newClipCache(clipCacheEntries, clipCacheSamples),
		// Its own transport, so that Close drops only its own connections.
		http: &http.Client{Timeout: fetchTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()},
		createWAV: func(path string, channels int) (wavSink, error) {
			return audio.CreateWAV(path, channels)
		},
	}
	h.active.Store(&[]*session{})
	for _, c := range []audio.Codec{audio.PCMU, audio.PCMA} {
		for j := range h.silence[silenceIndex(c)] {
			h.silence[silenceIndex(c)][j] = c.Silence()
		}
	}
	return h, nil
}

// Open opens MediaDir, subscribes the hub to session_to_media and
// rtp_to_media and starts the sender clock. It returns an error when
// called twice or after Close, when MediaDir cannot be opened, and when the
// bus refuses the subscription.
func (h *Hub) Open(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateNew {
		return errors.New("media: Open called twice or after Close")
	}
	if h.cfg.MediaDir != "" {
		root, err := os.OpenRoot(h.cfg.MediaDir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// A fresh checkout has no ./media yet: start anyway, refuse
			// file playback until the directory exists (mediaRoot opens
			// it then).
			h.log.Warn("media dir does not exist; file playback is refused until it does", "media_dir", h.cfg.MediaDir)
		case err != nil:
			return fmt.Errorf("media: open media dir: %w", err)
		default:
			h.root = root
		}
	}
	sub, err := h.bus.Subscribe(bus.Subscriber{
		Name:     "media",
		Channels: []string{events.ChannelSessionToMedia, events.ChannelRTPToMedia},
		Handle:   h.handle,
	})
	if err != nil {
		if h.root != nil {
			_ = h.root.Close()
			h.root = nil
		}
		return fmt.Errorf("media: subscribe: %w", err)
	}
	h.sub = sub
	h.state = stateOpen
	stop := make(chan struct{})
	h.clockStop = stop
	h.g.Go("sender clock", func(context.Context) { h.runClock(stop) })
	h.log.Info("media open", "external_ip", h.cfg.ExternalIP, "media_dir", h.cfg.MediaDir)
	return nil
}

// mediaRoot returns the os.Root of MediaDir, opening it now when it did
// not exist at Open; it returns an error saying why files cannot be played.
func (h *Hub) mediaRoot() (*os.Root, error) {
	if h.cfg.MediaDir == "" {
		return nil, errors.New("no media dir configured")
	}
	h.rootMu.Lock()
	defer h.rootMu.Unlock()
	if h.root == nil {
		root, err := os.OpenRoot(h.cfg.MediaDir)
		if err != nil {
			return nil, fmt.Errorf("media dir %s cannot be opened: %w", h.cfg.MediaDir, err)
		}
		h.root = root
	}
	return h.root, nil
}

// Close stops the sender clock, unsubscribes from the bus (letting the
// events already queued for the hub be handled until ctx ends), finishes
// every recording (its file is complete and synced; no event is published
// for it) and forgets every session; the RTP layer closes its own streams.
// When ctx ends first, Close stops waiting: the error says what was cut
// short (the bus's *bus.DrainError for the events not handled, a
// *callcore.RunningError naming the recording writers still finishing
// their files). Close is idempotent: a later call waits for the first and
// returns its result.
func (h *Hub) Close(ctx context.Context) error {
	h.closeOnce.Do(func() { h.closeErr = h.close(ctx) })
	return h.closeErr
}

func (h *Hub) close(ctx context.Context) error {
	h.mu.Lock()
	sub, wasOpen := h.sub, h.state == stateOpen
	h.state = stateClosed
	stop := h.clockStop
	h.mu.Unlock()
	if !wasOpen {
		h.g.Stop()
		return nil
	}
	close(stop)
	var errs []error
	if err := sub.Unsubscribe(ctx); err != nil {
		errs = append(errs, fmt.Errorf("media: close: %w", err))
	}
	n := 0
	h.sessions.Range(func(_, v any) bool {
		s := v.(*session)
		s.live.Store(false)
		if r := s.detachRecording(); r != nil {
			close(r.ch)
			select {
			case <-r.done:
				h.log.Info("recording closed at shutdown", "session_id", s.id, "file_path", r.path, "error", r.err)
			case <-ctx.Done():
				// Its writer goes on finishing the file; Wait names it.
				h.log.Warn("recording still closing at the shutdown deadline", "session_id", s.id, "file_path", r.path)
			}
		}
		n++
		return true
	})
	h.sessions.Clear()
	h.active.Store(&[]*session{})
	h.g.Stop()
	if err := h.g.Wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("media: close: %w", err))
	}
	h.http.CloseIdleConnections()
	h.rootMu.Lock()
	if h.root != nil {
		_ = h.root.Close()
		h.root = nil
	}
	h.rootMu.Unlock()
	if n > 0 {
		h.log.Info("media closed with sessions", "sessions", n)
	}
	return errors.Join(errs...)
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
	// Builtin is MediaConfig.Builtin: "", "echo" or "tone".
	Builtin string

	// PacketsSent counts the SendRtpPacket events published (audio and
	// DTMF).
	PacketsSent uint64
	// PacketsReceived counts the RtpPacketReceived events of the session,
	// whatever their payload type.
	PacketsReceived uint64
	// WrongPayloadType counts received packets dropped because their
	// payload type is neither the codec's nor telephone-event's.
	WrongPayloadType uint64
	// QueueDropped counts received 20 ms frames dropped because the
	// receive queue was full (the far end sends faster than the clock
	// consumes).
	QueueDropped uint64
	// DTMFSent and DTMFReceived count RFC 4733 digits sent (started) and
	// reported received.
	DTMFSent, DTMFReceived uint64
	// Playing and Recording report a playback or a recording in progress.
	Playing, Recording bool
	// RecordingDropped counts 20 ms frames the recording writer could not
	// take in time (the disk stalled); they are written as silence.
	RecordingDropped uint64
	// BridgedWith is the session this one is bridged with, or "".
	BridgedWith string

	// Stats are the latest RtpStatisticsUpdate of the session.
	Stats events.RtpStats
}

// Sending reports whether the session's audio goes out: our direction
// sends and the session is not held. (The clock also waits for the far
// end's address.)
func (i StreamInfo) Sending() bool { return sdp.Direction(i.Direction).Sends() && !i.Held }

// Stream returns a snapshot of the media state of sessionID, and whether
// media knows the session.
func (h *Hub) Stream(sessionID string) (StreamInfo, bool) {
	s := h.lookup(sessionID)
	if s == nil {
		return StreamInfo{}, false
	}
	return s.info(), true
}

// lookup returns the session of id, or nil.
func (h *Hub) lookup(id string) *session {
	if v, ok := h.sessions.Load(id); ok {
		return v.(*session)
	}
	return nil
}

// handle serves both channels. Events of one session arrive one at a time
// (bus ordering by key), so a session is never handled twice at once;
// each session's mutex guards its state against the clock, Stream and the
// handlers of a bridged peer.
func (h *Hub) handle(ctx context.Context, env events.Envelope, ev events.Event) error {
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
	case *events.PlayAudio:
		h.playAudio(ctx, env.ID, ev)
	case *events.StopAudio:
		h.stopAudio(ctx, ev)
	case *events.StartRecording:
		h.startRecording(ctx, ev)
	case *events.StopRecording:
		h.stopRecording(ctx, ev)
	case *events.MediaSendDtmf:
		h.sendDTMF(ctx, ev)
	case *events.BridgeMedia:
		h.bridge(ctx, ev)
	case *events.UnbridgeMedia:
		h.unbridge(ctx, ev)

	case *events.RtpStreamStarted:
		h.rtpStarted(ctx, ev)
	case *events.RtpStreamStopped:
		h.rtpStopped(ctx, ev)
	case *events.RtpError:
		h.rtpError(ctx, ev)
	case *events.RtpPacketReceived:
		h.rtpPacket(ctx, ev)
	case *events.RtpStatisticsUpdate:
		h.rtpStatistics(ctx, ev)
	default:
		return fmt.Errorf("media: unexpected event %s/%s", ev.Channel(), ev.Type())
	}
	return nil
}

// mediaErrorEvent builds a MediaError.
func (h *Hub) mediaErrorEvent(session string, code events.MediaErrorCode, format string, args ...any) *events.MediaError {
	msg := fmt.Sprintf(format, args...)
	h.log.Debug("media error", "session_id", session, "error_code", code, "error", msg)
	return &events.MediaError{SessionRef: events.SessionRef{SessionID: session}, Error: msg, ErrorCode: code}
}

// fail publishes a MediaError. For a session media knows, use failFor so
// that it is ordered with what the clock publishes.
func (h *Hub) fail(ctx context.Context, session string, code events.MediaErrorCode, format string, args ...any) {
	h.publish(ctx, h.mediaErrorEvent(session, code, format, args...))
}

// failFor publishes a MediaError of a known session.
func (h *Hub) failFor(ctx context.Context, s *session, code events.MediaErrorCode, format string, args ...any) {
	h.publishFor(ctx, s, h.mediaErrorEvent(s.id, code, format, args...))
}

// failWith publishes err as a MediaError: its code when it is a
// *mediaError, internal otherwise.
func (h *Hub) failWith(ctx context.Context, session string, err error) {
	var me *mediaError
	if errors.As(err, &me) {
		h.fail(ctx, session, me.code, "%s", me.msg)
		return
	}
	h.fail(ctx, session, events.MediaErrInternal, "%v", err)
}

// failWithFor is failWith for a known session.
func (h *Hub) failWithFor(ctx context.Context, s *session, err error) {
	var me *mediaError
	if errors.As(err, &me) {
		h.failFor(ctx, s, me.code, "%s", me.msg)
		return
	}
	h.failFor(ctx, s, events.MediaErrInternal, "%v", err)
}

// publish publishes ev, logging a failure: a handler has no one to return
// it to but the bus, which would only count it.
func (h *Hub) publish(ctx context.Context, ev events.Event) {
	if err := h.bus.Publish(ctx, ev); err != nil {
		h.log.Error("media publish failed", "type", ev.Type(), "session_id", events.SessionOf(ev), "error", err)
	}
}

// publishFor publishes evs of s in order while holding s.pubMu, which
// every publisher of the session's events holds (handlers, the clock, the
// recording writer): the session layer sees them in the order the state
// changed, e.g. a playback's finish before the next one's failure.
func (h *Hub) publishFor(ctx context.Context, s *session, evs ...events.Event) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	for _, ev := range evs {
		h.publish(ctx, ev)
	}
}
