package rtp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
)

// The codes that start the text of an RtpError (see the package doc).
const (
	codeNoPort       = "no_port"
	codeNoStream     = "no_stream"
	codeBadRequest   = "bad_request"
	codeSocket       = "socket"
	codeNotSupported = "not_supported"
)

// The reasons of RtpStreamStopped.
const (
	// ReasonStopped: the stream was stopped by StopRtpStream.
	ReasonStopped = "stopped"
	// ReasonNoStream: StopRtpStream named a session without a stream.
	ReasonNoStream = "no_stream"
)

// Default port range, as CALLBUS_RTP_PORTS defaults (DESIGN.md §8).
const (
	DefaultPortLo = 10000
	DefaultPortHi = 20000
)

// closeTimeout bounds how long Close waits for the bus to drain the events
// already queued for the hub.
const closeTimeout = 5 * time.Second

// Config configures a Hub. The zero value binds on every interface over
// the default port range.
type Config struct {
	// Host is the address the sockets bind to; the zero Addr means every
	// interface.
	Host netip.Addr
	// Ports is the inclusive UDP port range [lo, hi]. Pairs are (p, p+1)
	// with p even; an odd lo starts the pairs at lo+1. The zero value means
	// DefaultPortLo-DefaultPortHi.
	Ports [2]int
}

// Hub is the RTP layer: it serves media_to_rtp on the bus and owns the
// port pool and every stream's sockets and reader goroutines.
type Hub struct {
	cfg  Config
	bus  bus.Bus
	log  *slog.Logger
	pool *portPool
	// closeTimeout bounds Close's drain; tests shorten it.
	closeTimeout time.Duration

	ctx    context.Context // the readers' lifetime; Close cancels it
	cancel context.CancelFunc

	mu      sync.Mutex
	state   int // stateNew, stateOpen, stateClosed
	sub     bus.Subscription
	streams map[string]*stream
	// shut is set once Close has drained the bus: a handler still running
	// after that (the drain timed out) must not open a stream.
	shut bool

	closeOnce sync.Once
	closeErr  error
}

const (
	stateNew = iota
	stateOpen
	stateClosed
)

// New returns a Hub for cfg on b, logging to log (nil discards). It starts
// nothing and binds nothing. It returns an error when the port range holds
// no pair or b is nil.
func New(cfg Config, b bus.Bus, log *slog.Logger) (*Hub, error) {
	if b == nil {
		return nil, errors.New("rtp: nil bus")
	}
	if cfg.Ports == [2]int{} {
		cfg.Ports = [2]int{DefaultPortLo, DefaultPortHi}
	}
	pool, err := newPortPool(cfg.Host, cfg.Ports[0], cfg.Ports[1])
	if err != nil {
		return nil, fmt.Errorf("rtp: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{cfg: cfg, bus: b, log: log.With("layer", "rtp"), pool: pool,
		closeTimeout: closeTimeout, streams: map[string]*stream{}}, nil
}

// Open checks that the host can be bound and subscribes the hub to
// media_to_rtp. ctx bounds nothing beyond Open itself: the hub lives until
// Close. Open returns an error when called twice or after Close, when the
// host is not an address of this machine, and when the bus refuses the
// subscription.
func (h *Hub) Open(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateNew {
		return errors.New("rtp: Open called twice or after Close")
	}
	// Fail at start-up, not at the first call, on a host we cannot bind.
	probe, err := (&net.ListenConfig{}).ListenPacket(ctx, "udp", h.pool.addr(0).String())
	if err != nil {
		return fmt.Errorf("rtp: bind on host %v: %w", h.cfg.Host, err)
	}
	probe.Close()

	h.ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
	sub, err := h.bus.Subscribe(bus.Subscriber{
		Name:     "rtp",
		Channels: []string{events.ChannelMediaToRTP},
		Handle:   h.handle,
	})
	if err != nil {
		h.cancel()
		return fmt.Errorf("rtp: subscribe: %w", err)
	}
	h.sub = sub
	h.state = stateOpen
	host := "*"
	if h.cfg.Host.IsValid() {
		host = h.cfg.Host.String()
	}
	h.log.Info("rtp open", "host", host, "ports", fmt.Sprintf("%d-%d", h.cfg.Ports[0], h.cfg.Ports[1]),
		"pairs", h.pool.size())
	return nil
}

// Close unsubscribes from the bus, letting the events already queued for
// the hub be handled (up to a few seconds), then closes every stream's
// sockets, releases their ports and waits for their readers. It publishes
// nothing for the streams it closes. Close is idempotent; it returns the
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
		ctx, cancel := context.WithTimeout(context.WithoutCancel(h.ctx), h.closeTimeout)
		defer cancel()
		if err := sub.Unsubscribe(ctx); err != nil {
			h.closeErr = fmt.Errorf("rtp: close: %w", err)
		}
		h.cancel()
		h.mu.Lock()
		streams := h.streams
		h.streams = map[string]*stream{}
		h.shut = true
		h.mu.Unlock()
		for _, st := range streams {
			h.closeStream(st, "shutdown")
		}
	})
	return h.closeErr
}

// Stream returns a snapshot of the stream of sessionID, and whether there
// is one.
func (h *Hub) Stream(sessionID string) (StreamInfo, bool) {
	h.mu.Lock()
	st := h.streams[sessionID]
	h.mu.Unlock()
	if st == nil {
		return StreamInfo{}, false
	}
	return st.info(), true
}

// PortsInUse returns how many port pairs are bound to streams.
func (h *Hub) PortsInUse() int { return h.pool.busy() }

// handle serves media_to_rtp. Events of one session arrive one at a time
// (bus ordering by key), so a session's stream never sees two handlers.
func (h *Hub) handle(ctx context.Context, _ events.Envelope, ev events.Event) error {
	switch ev := ev.(type) {
	case *events.StartRtpStream:
		h.start(ctx, ev)
	case *events.UpdateRtpStream:
		h.update(ctx, ev)
	case *events.StopRtpStream:
		h.stop(ctx, ev)
	case *events.SendRtpPacket:
		h.refuseSend(ctx, ev)
	default:
		return fmt.Errorf("rtp: unexpected event %s/%s", ev.Channel(), ev.Type())
	}
	return nil
}

// start opens the stream of a session, or reconfigures the one it has.
func (h *Hub) start(ctx context.Context, ev *events.StartRtpStream) {
	id := ev.SessionID
	if err := checkPort("remote_port", ev.RemotePort); err != nil {
		h.fail(ctx, id, codeBadRequest, "StartRtpStream: %v", err)
		return
	}
	if ev.LocalPort < 0 || ev.LocalPort > 65535 {
		h.fail(ctx, id, codeBadRequest, "StartRtpStream: local_port %d out of range", ev.LocalPort)
		return
	}
	h.mu.Lock()
	st := h.streams[id]
	h.mu.Unlock()
	if st != nil {
		if ev.LocalPort != 0 && ev.LocalPort != st.pair.port {
			h.fail(ctx, id, codeBadRequest, "StartRtpStream: the session's stream is on port %d, not %d",
				st.pair.port, ev.LocalPort)
			return
		}
		st.configure(ev)
		h.log.Debug("rtp stream reconfigured", "session_id", id, "port", st.pair.port,
			"codec", ev.Codec, "payload_type", ev.PayloadType)
		h.publish(ctx, &events.RtpStreamStarted{SessionRef: ev.SessionRef, LocalPort: st.pair.port})
		return
	}

	var pr pair
	var err error
	if ev.LocalPort == 0 {
		pr, err = h.pool.allocate()
	} else {
		pr, err = h.pool.reserve(ev.LocalPort)
	}
	if err != nil {
		h.log.Warn("rtp stream refused", "session_id", id, "error", err)
		h.fail(ctx, id, codeNoPort, "StartRtpStream: %v", err)
		return
	}
	st = &stream{session: id, pair: pr, started: time.Now()}
	st.configure(ev)
	h.mu.Lock()
	if h.shut {
		h.mu.Unlock()
		pr.close()
		h.pool.release(pr.port)
		h.fail(ctx, id, codeNoPort, "StartRtpStream: the RTP layer is shutting down")
		return
	}
	// Readers start under mu so that Close, which takes the streams under
	// mu, always finds a stream's readers started and waits for them.
	st.startReaders(h.ctx, h)
	h.streams[id] = st
	h.mu.Unlock()
	h.log.Debug("rtp stream started", "session_id", id, "port", pr.port,
		"remote", net.JoinHostPort(ev.RemoteAddress, fmt.Sprint(ev.RemotePort)), "codec", ev.Codec)
	h.publish(ctx, &events.RtpStreamStarted{SessionRef: ev.SessionRef, LocalPort: pr.port})
}

// update records the new remote address of a stream.
func (h *Hub) update(ctx context.Context, ev *events.UpdateRtpStream) {
	if err := checkPort("remote_port", ev.RemotePort); err != nil {
		h.fail(ctx, ev.SessionID, codeBadRequest, "UpdateRtpStream: %v", err)
		return
	}
	h.mu.Lock()
	st := h.streams[ev.SessionID]
	h.mu.Unlock()
	if st == nil {
		h.fail(ctx, ev.SessionID, codeNoStream, "UpdateRtpStream: the session has no RTP stream")
		return
	}
	st.setRemote(ev.RemoteAddress, ev.RemotePort)
	h.log.Debug("rtp stream remote updated", "session_id", ev.SessionID,
		"remote", net.JoinHostPort(ev.RemoteAddress, fmt.Sprint(ev.RemotePort)))
}

// stop closes the stream of a session and releases its ports.
func (h *Hub) stop(ctx context.Context, ev *events.StopRtpStream) {
	h.mu.Lock()
	st := h.streams[ev.SessionID]
	delete(h.streams, ev.SessionID)
	h.mu.Unlock()
	reason := ReasonNoStream
	if st != nil {
		h.closeStream(st, ReasonStopped)
		reason = ReasonStopped
	}
	h.publish(ctx, &events.RtpStreamStopped{SessionRef: ev.SessionRef, Reason: reason})
}

// closeStream closes st, releases its ports and logs its counters.
func (h *Hub) closeStream(st *stream, reason string) {
	st.close()
	h.pool.release(st.pair.port)
	info := st.info()
	h.log.Debug("rtp stream stopped", "session_id", st.session, "port", info.LocalPort,
		"reason", reason, "packets_received", info.PacketsReceived, "octets_received", info.OctetsReceived,
		"rtcp_received", info.RTCPReceived, "malformed", info.Malformed, "send_refused", info.SendRefused)
}

// refuseSend counts a SendRtpPacket that cannot be sent yet and reports
// the first of each stream.
func (h *Hub) refuseSend(ctx context.Context, ev *events.SendRtpPacket) {
	h.mu.Lock()
	st := h.streams[ev.SessionID]
	h.mu.Unlock()
	if st == nil {
		h.fail(ctx, ev.SessionID, codeNoStream, "SendRtpPacket: the session has no RTP stream")
		return
	}
	if st.sendRefused.Add(1) == 1 {
		h.fail(ctx, ev.SessionID, codeNotSupported, "SendRtpPacket: sending RTP is not built yet")
	}
}

// fail publishes an RtpError whose text starts with code.
func (h *Hub) fail(ctx context.Context, session, code, format string, args ...any) {
	h.publish(ctx, &events.RtpError{SessionRef: events.SessionRef{SessionID: session},
		Error: code + ": " + fmt.Sprintf(format, args...)})
}

// publish publishes ev, logging a failure: a handler has no one to return
// it to but the bus, which would only count it.
func (h *Hub) publish(ctx context.Context, ev events.Event) {
	if err := h.bus.Publish(ctx, ev); err != nil {
		h.log.Error("rtp publish failed", "type", ev.Type(), "session_id", events.SessionOf(ev), "error", err)
	}
}

func checkPort(field string, port int) error {
	if port < 0 || port > 65535 {
		return fmt.Errorf("%s %d out of range", field, port)
	}
	return nil
}
