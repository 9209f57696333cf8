package rtp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
)

// Default port range, as CALLBUS_RTP_PORTS defaults (DESIGN.md §8).
const (
	DefaultPortLo = 10000
	DefaultPortHi = 20000
)

// Defaults of the timing fields of Config.
const (
	// DefaultRTCPInterval is RFC 3550's recommended minimum report interval.
	DefaultRTCPInterval = 5 * time.Second
	// DefaultStatsInterval spaces the RtpStatisticsUpdate events of a stream.
	DefaultStatsInterval = 5 * time.Second
	// DefaultRelatchAfter is how long the latched source must be silent
	// before another source may take its place (NAT rebinding).
	DefaultRelatchAfter = 2 * time.Second
)

// maxTick bounds the period of the hub's one report timer: a report or a
// statistics update is at most this late.
const maxTick = 250 * time.Millisecond

// timerPublishTimeout bounds how long the report timer waits for the bus to
// take one RtpStatisticsUpdate: the timer serves every stream, so a backed
// up subscriber must not stall the RTCP of all of them.
const timerPublishTimeout = time.Second

// Config configures a Hub. The zero value binds on every interface over
// the default port range with the default intervals.
type Config struct {
	// Host is the address the sockets bind to; the zero Addr means every
	// interface.
	Host netip.Addr
	// Ports is the inclusive UDP port range [lo, hi]. Pairs are (p, p+1)
	// with p even; an odd lo starts the pairs at lo+1. The zero value means
	// DefaultPortLo-DefaultPortHi.
	Ports [2]int
	// RTCPInterval is the mean interval between the RTCP reports of a
	// stream; each interval is randomised to [0.5, 1.5]× it (RFC 3550
	// §6.3.1). Zero or negative means DefaultRTCPInterval.
	RTCPInterval time.Duration
	// StatsInterval is the interval between the RtpStatisticsUpdate events
	// of a stream. Zero or negative means DefaultStatsInterval.
	StatsInterval time.Duration
	// RelatchAfter is how long the latched source of a stream must have
	// been silent before packets from another source re-latch the stream
	// to it. Zero or negative means DefaultRelatchAfter.
	RelatchAfter time.Duration
}

func (c Config) withDefaults() Config {
	if c.Ports == [2]int{} {
		c.Ports = [2]int{DefaultPortLo, DefaultPortHi}
	}
	if c.RTCPInterval <= 0 {
		c.RTCPInterval = DefaultRTCPInterval
	}
	if c.StatsInterval <= 0 {
		c.StatsInterval = DefaultStatsInterval
	}
	if c.RelatchAfter <= 0 {
		c.RelatchAfter = DefaultRelatchAfter
	}
	return c
}

// Hub is the RTP layer: it serves media_to_rtp on the bus and owns the
// port pool, every stream's sockets and reader goroutines, and the one
// timer that sends RTCP reports and statistics for all streams.
type Hub struct {
	cfg  Config
	bus  bus.Bus
	log  *slog.Logger
	pool *portPool
	// cname is the RTCP CNAME of every stream of this hub.
	cname string
	// epoch anchors mono.
	epoch time.Time
	// rtpClock stamps the arrival of RTP packets (jitter, latch silence).
	// Tests replace it before Open to drive time by hand.
	rtpClock func() time.Duration
	// tick is the report timer's period.
	tick time.Duration

	// g runs the report timer; its context is the parent of every
	// stream's readers. Close stops it.
	g *callcore.Group

	mu      sync.RWMutex
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
	cfg = cfg.withDefaults()
	pool, err := newPortPool(cfg.Host, cfg.Ports[0], cfg.Ports[1])
	if err != nil {
		return nil, fmt.Errorf("rtp: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{cfg: cfg, bus: b, log: log.With("layer", "rtp"), pool: pool, streams: map[string]*stream{},
		cname: fmt.Sprintf("callbus-%016x", rand.Uint64()), epoch: time.Now()}
	h.rtpClock = h.mono
	h.tick = min(maxTick, cfg.RTCPInterval/2, cfg.StatsInterval/2)
	h.tick = max(h.tick, time.Millisecond)
	return h, nil
}

// Open checks that the host can be bound, subscribes the hub to
// media_to_rtp and starts the report timer. ctx bounds nothing beyond Open
// itself: the hub lives until Close. Open returns an error when called
// twice or after Close, when the host is not an address of this machine,
// and when the bus refuses the subscription.
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

	h.g = callcore.NewGroup(context.WithoutCancel(ctx), "rtp")
	sub, err := h.bus.Subscribe(bus.Subscriber{
		Name:     "rtp",
		Channels: []string{events.ChannelMediaToRTP},
		Handle:   h.handle,
	})
	if err != nil {
		h.g.Stop()
		return fmt.Errorf("rtp: subscribe: %w", err)
	}
	h.sub = sub
	h.state = stateOpen
	h.g.Go("report timer", h.runTimer)
	host := "*"
	if h.cfg.Host.IsValid() {
		host = h.cfg.Host.String()
	}
	h.log.Info("rtp open", "host", host, "ports", fmt.Sprintf("%d-%d", h.cfg.Ports[0], h.cfg.Ports[1]),
		"pairs", h.pool.size(), "rtcp_interval", h.cfg.RTCPInterval, "stats_interval", h.cfg.StatsInterval)
	return nil
}

// Close unsubscribes from the bus, letting the events already queued for
// the hub be handled until ctx ends, stops the report timer, then sends an
// RTCP BYE on every stream (best effort), closes their sockets, releases
// their ports and waits for their readers. It publishes nothing for the
// streams it closes. When ctx ends first, the streams are closed all the
// same and the error says what was cut short: the bus's *bus.DrainError
// for the events not handled, a *callcore.RunningError for the goroutines
// still running. Close is idempotent: a later call waits for the first and
// returns its result.
func (h *Hub) Close(ctx context.Context) error {
	h.closeOnce.Do(func() { h.closeErr = h.close(ctx) })
	return h.closeErr
}

func (h *Hub) close(ctx context.Context) error {
	h.mu.Lock()
	sub, wasOpen := h.sub, h.state == stateOpen
	h.state = stateClosed
	h.mu.Unlock()
	if !wasOpen {
		return nil
	}
	var errs []error
	if err := sub.Unsubscribe(ctx); err != nil {
		errs = append(errs, fmt.Errorf("rtp: close: %w", err))
	}
	h.g.Stop()
	if err := h.g.Wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("rtp: close: %w", err))
	}
	h.mu.Lock()
	streams := h.streams
	h.streams = map[string]*stream{}
	h.shut = true
	h.mu.Unlock()
	// Every socket closes first, so that the waits below find the readers
	// already returned however many streams there are.
	for _, st := range streams {
		h.stopStream(st)
	}
	var cut []error
	for _, st := range streams {
		if _, err := h.closeStream(ctx, st, "shutdown"); err != nil {
			cut = append(cut, err)
		}
	}
	if len(cut) > 0 {
		errs = append(errs, fmt.Errorf("rtp: close: the readers of %d of %d streams still running, first %w",
			len(cut), len(streams), cut[0]))
	}
	return errors.Join(errs...)
}

// Stream returns a snapshot of the stream of sessionID, and whether there
// is one.
func (h *Hub) Stream(sessionID string) (StreamInfo, bool) {
	st := h.lookup(sessionID)
	if st == nil {
		return StreamInfo{}, false
	}
	return st.info(), true
}

// PortsInUse returns how many port pairs are bound to streams.
func (h *Hub) PortsInUse() int { return h.pool.busy() }

// mono is the hub's monotonic clock.
func (h *Hub) mono() time.Duration { return time.Since(h.epoch) }

func (h *Hub) lookup(sessionID string) *stream {
	h.mu.RLock()
	st := h.streams[sessionID]
	h.mu.RUnlock()
	return st
}

// handle serves media_to_rtp. Events of one session arrive one at a time
// (bus ordering by key), so a session's stream never sees two handlers.
func (h *Hub) handle(ctx context.Context, _ events.Envelope, ev events.Event) error {
	switch ev := ev.(type) {
	case *events.SendRtpPacket:
		h.send(ctx, ev)
	case *events.StartRtpStream:
		h.start(ctx, ev)
	case *events.UpdateRtpStream:
		h.update(ctx, ev)
	case *events.StopRtpStream:
		h.stop(ctx, ev)
	default:
		return fmt.Errorf("rtp: unexpected event %s/%s", ev.Channel(), ev.Type())
	}
	return nil
}

// start opens the stream of a session, or reconfigures the one it has.
func (h *Hub) start(ctx context.Context, ev *events.StartRtpStream) {
	id := ev.SessionID
	if err := checkPort("remote_port", ev.RemotePort); err != nil {
		h.fail(ctx, id, events.RtpErrBadRequest, "StartRtpStream: %v", err)
		return
	}
	if ev.LocalPort < 0 || ev.LocalPort > 65535 {
		h.fail(ctx, id, events.RtpErrBadRequest, "StartRtpStream: local_port %d out of range", ev.LocalPort)
		return
	}
	if ev.PayloadType > 127 {
		h.fail(ctx, id, events.RtpErrBadRequest, "StartRtpStream: payload_type %d out of range 0-127", ev.PayloadType)
		return
	}
	if st := h.lookup(id); st != nil {
		if ev.LocalPort != 0 && ev.LocalPort != st.pair.port {
			h.fail(ctx, id, events.RtpErrBadRequest, "StartRtpStream: the session's stream is on port %d, not %d",
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
		h.fail(ctx, id, events.RtpErrNoPort, "StartRtpStream: %v", err)
		return
	}
	st := newStream(id, pr, h.cfg.RelatchAfter)
	st.configure(ev)
	now := h.mono()
	// RFC 3550 §6.2: the first report comes after half an interval.
	st.nextRTCP = now + h.rtcpInterval()/2
	st.nextStats = now + h.cfg.StatsInterval
	h.mu.Lock()
	if h.shut {
		h.mu.Unlock()
		pr.close()
		h.pool.release(pr.port)
		h.fail(ctx, id, events.RtpErrNoPort, "StartRtpStream: the RTP layer is shutting down")
		return
	}
	// Readers start under mu so that Close, which takes the streams under
	// mu, always finds a stream's readers started and waits for them.
	st.startReaders(h.g.Context(), h)
	h.streams[id] = st
	h.mu.Unlock()
	h.log.Debug("rtp stream started", "session_id", id, "port", pr.port, "ssrc", st.ssrc,
		"remote", net.JoinHostPort(ev.RemoteAddress, fmt.Sprint(ev.RemotePort)), "codec", ev.Codec)
	h.publish(ctx, &events.RtpStreamStarted{SessionRef: ev.SessionRef, LocalPort: pr.port})
}

// update records the new remote address of a stream and forgets its
// latched sources: the far end moved, and its first packet shows where.
func (h *Hub) update(ctx context.Context, ev *events.UpdateRtpStream) {
	if err := checkPort("remote_port", ev.RemotePort); err != nil {
		h.fail(ctx, ev.SessionID, events.RtpErrBadRequest, "UpdateRtpStream: %v", err)
		return
	}
	st := h.lookup(ev.SessionID)
	if st == nil {
		h.fail(ctx, ev.SessionID, events.RtpErrNoStream, "UpdateRtpStream: the session has no RTP stream")
		return
	}
	st.setRemote(ev.RemoteAddress, ev.RemotePort)
	h.log.Debug("rtp stream remote updated", "session_id", ev.SessionID,
		"remote", net.JoinHostPort(ev.RemoteAddress, fmt.Sprint(ev.RemotePort)))
}

// stop closes the stream of a session, publishes its final statistics and
// then RtpStreamStopped.
func (h *Hub) stop(ctx context.Context, ev *events.StopRtpStream) {
	h.mu.Lock()
	st := h.streams[ev.SessionID]
	delete(h.streams, ev.SessionID)
	h.mu.Unlock()
	reason := events.StopReasonNoStream
	if st != nil {
		info, err := h.closeStream(ctx, st, events.StopReasonStopped)
		if err != nil {
			h.log.Warn("rtp stream readers outlived the handler", "session_id", st.session, "error", err)
		}
		// Media turns the final update into the call's last quality
		// report, so it must come before RtpStreamStopped.
		h.publish(ctx, &events.RtpStatisticsUpdate{SessionRef: ev.SessionRef, Stats: info.stats()})
		reason = events.StopReasonStopped
	}
	h.publish(ctx, &events.RtpStreamStopped{SessionRef: ev.SessionRef, Reason: reason})
}

// stopStream says goodbye on st's RTCP socket, once, and shuts st.
func (h *Hub) stopStream(st *stream) {
	st.reportMu.Lock()
	if !st.stopped {
		st.stopped = true
		h.sendReport(st, time.Now(), true)
	}
	st.reportMu.Unlock()
	st.shut()
}

// closeStream stops st, waits for its readers, releases its ports, logs
// its counters and returns its final snapshot. The error names the
// readers still running when ctx ended.
func (h *Hub) closeStream(ctx context.Context, st *stream, reason events.StreamStopReason) (StreamInfo, error) {
	h.stopStream(st)
	err := st.close(ctx)
	h.pool.release(st.pair.port)
	info := st.info()
	h.log.Debug("rtp stream stopped", "session_id", st.session, "port", info.LocalPort, "reason", reason,
		"packets_sent", info.PacketsSent, "packets_received", info.PacketsReceived,
		"packets_lost", info.PacketsLost, "jitter_ms", info.JitterMS, "rtt_ms", info.RttMS,
		"malformed", info.Malformed, "foreign_source", info.ForeignSource, "foreign_ssrc", info.ForeignSSRC,
		"send_dropped", info.SendDropped, "rtcp_sent", info.RTCPSent, "rtcp_received", info.RTCPReceived,
		"malformed_rtcp", info.MalformedRTCP)
	return info, err
}

// fail publishes an RtpError of code, whose text starts with the code too.
func (h *Hub) fail(ctx context.Context, session string, code events.RtpErrorCode, format string, args ...any) {
	h.publish(ctx, &events.RtpError{SessionRef: events.SessionRef{SessionID: session},
		Error: string(code) + ": " + fmt.Sprintf(format, args...), ErrorCode: code})
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
