package ws

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
)

// readLimit bounds a client's message. Clients have nothing to say on the
// feed (their frames are read and dropped, so that control frames are
// answered); a bigger one closes the connection with StatusMessageTooBig.
const readLimit = 4096

// checkHandshake returns bad_request when r is not a WebSocket handshake
// that websocket.Accept takes, and internal when w cannot be hijacked. It
// repeats Accept's own checks so that the caller, not the library, answers
// a plain GET, in problem+json.
func checkHandshake(w http.ResponseWriter, r *http.Request) error {
	bad := func(format string, args ...any) error {
		return callcore.Errorf(callcore.CodeBadRequest, "GET /v1/events is a WebSocket endpoint: "+format, args...)
	}
	switch {
	case r.Method != http.MethodGet:
		return bad("method %s, want GET", r.Method)
	case !r.ProtoAtLeast(1, 1):
		return bad("%s, want HTTP/1.1", r.Proto)
	case !hasToken(r.Header, "Connection", "upgrade"):
		return bad("Connection header does not contain Upgrade")
	case !hasToken(r.Header, "Upgrade", "websocket"):
		return bad("Upgrade header does not contain websocket")
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return bad("Sec-WebSocket-Version %q, want 13", r.Header.Get("Sec-WebSocket-Version"))
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return bad("want one Sec-WebSocket-Key header, got %d", len(keys))
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return bad("Sec-WebSocket-Key is not 16 bytes in base64")
	}
	for rw := w; ; {
		switch t := rw.(type) {
		case http.Hijacker:
			return nil
		case interface{ Unwrap() http.ResponseWriter }:
			rw = t.Unwrap()
		default:
			return callcore.Errorf(callcore.CodeInternal, "ws: the response writer (%T) cannot be hijacked for the WebSocket upgrade", w)
		}
	}
}

// hasToken reports whether a comma-separated header has token, ignoring case.
func hasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// acceptConn upgrades the request. Any origin is accepted
// (InsecureSkipVerify): the origin check guards cookie-authenticated
// sockets against cross-site requests, and the feed uses no cookie — the
// caller has already authenticated the request by bearer header or by a
// short-lived token in the query, which another site cannot hold.
// Compression stays off: frames are small JSON and the feed is CPU-bound
// long before it is bandwidth-bound.
func acceptConn(w http.ResponseWriter, r *http.Request, bufs *sync.Pool) (*websocket.Conn, *corkConn, error) {
	cw := &corkWriter{ResponseWriter: w, bufs: bufs}
	conn, err := websocket.Accept(cw, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return nil, nil, err
	}
	if cw.conn == nil { // cannot happen: Accept hijacks through cw
		conn.CloseNow()
		return nil, nil, errors.New("ws: accept did not hijack through the cork writer")
	}
	conn.SetReadLimit(readLimit)
	return conn, cw.conn, nil
}

// client is one feed connection: the Handle goroutine supervises a writer
// (tap → frames), a reader (control frames) and a pinger, and ends them all
// when any one of them, or the feed, says so.
type client struct {
	f      *Feed
	conn   *websocket.Conn
	cork   *corkConn // conn's network connection
	tap    bus.Tap
	q      query
	remote string

	// writeTimer fires when a frame has been in conn.Write for
	// WriteTimeout; the writer arms it around each write.
	writeTimer *time.Timer

	sent, gaps atomic.Uint64
	lastSeq    atomic.Uint64 // seq of the newest record handled (sent or filtered out)
}

// end says why a connection ended, and how to close it.
type end struct {
	code   websocket.StatusCode
	reason string // sent to the client; at most 123 bytes
	err    error  // logged
}

// serve streams to one upgraded connection until it ends, then closes it,
// waits for its goroutines and closes the tap.
func (f *Feed) serve(feedCtx context.Context, conn *websocket.Conn, cork *corkConn, tap bus.Tap, q query, remote string) {
	f.accepted.Add(1)
	f.clients.Add(1)
	defer f.clients.Add(-1)
	c := &client{f: f, conn: conn, cork: cork, tap: tap, q: q, remote: remote, writeTimer: time.NewTimer(time.Hour)}
	c.writeTimer.Stop()
	log := f.log.With("remote", remote, "filter", q.String())
	log.Debug("ws: feed client connected")

	f.track(c)
	defer f.untrack(c)

	g := callcore.NewGroup(context.Background(), "ws client "+remote)
	ended := make(chan end, 3) // one per goroutine
	g.Go("writer", func(ctx context.Context) { ended <- c.write(ctx) })
	g.Go("reader", func(context.Context) { ended <- c.read() })
	g.Go("pinger", func(ctx context.Context) { c.ping(ctx, ended) })

	var e end
	select {
	case e = <-ended:
	case <-c.writeTimer.C:
		f.slowDisconnects.Add(1)
		e = end{code: websocket.StatusTryAgainLater,
			reason: fmt.Sprintf("too slow: a frame waited %v; resume with since", f.cfg.WriteTimeout),
			err:    errors.New("frame not taken within WriteTimeout")}
	case <-feedCtx.Done():
		e = end{code: websocket.StatusGoingAway, reason: "server shutting down"}
	}
	g.Stop()
	// Close sends the close frame and waits for the client's, a few
	// seconds at most; it also unblocks a write stuck on a full socket.
	closeErr := conn.Close(e.code, e.reason)
	_ = g.Wait(context.Background()) // the socket is closed: they return
	c.writeTimer.Stop()
	tap.Close()

	attrs := []any{"code", e.code, "reason", e.reason, "frames", c.sent.Load(), "gaps", c.gaps.Load(), "last_seq", c.lastSeq.Load()}
	switch {
	case e.err != nil:
		log.Info("ws: feed client disconnected", append(attrs, "err", e.err)...)
	case closeErr != nil && e.code == websocket.StatusGoingAway:
		log.Debug("ws: feed client closed", append(attrs, "close_err", closeErr)...)
	default:
		log.Debug("ws: feed client closed", attrs...)
	}
}

// write streams the tap's records until ctx ends or a write fails. It
// corks the connection while records are ready and flushes before it
// waits for more (see corkConn).
func (c *client) write(ctx context.Context) end {
	f := c.f
	node := f.bus.Node()
	poll, stop := context.WithCancel(ctx)
	stop() // Next(poll) returns a ready record or poll's error at once
	defer c.flush()
	for {
		rec, err := c.tap.Next(poll)
		if errors.Is(err, context.Canceled) && ctx.Err() == nil { // nothing ready
			if err := c.flush(); err != nil {
				return end{code: websocket.StatusInternalError, reason: "write failed", err: fmt.Errorf("write frames: %w", err)}
			}
			rec, err = c.tap.Next(ctx)
		}
		if err == nil && ctx.Err() != nil {
			err = ctx.Err() // Next returns buffered records even after ctx ends
		}
		if err != nil {
			if errors.Is(err, bus.ErrClosed) {
				return end{code: websocket.StatusGoingAway, reason: "event bus closed"}
			}
			return end{code: websocket.StatusGoingAway, reason: "server shutting down"} // ctx ended: the reason is elsewhere
		}
		var frame []byte
		isGap := rec.Gap != nil
		switch {
		case isGap:
			frame = GapFrame(node, time.Now(), *rec.Gap)
		case !c.q.match(rec.Event):
			c.markSeq(rec)
			continue
		default:
			b, encoded, err := rec.Frame()
			if encoded {
				f.encoded.Add(1)
			}
			if err != nil {
				// Send a gap rather than leave a silent hole in seq.
				f.log.Error("ws: encode event", "id", rec.Envelope.ID, "seq", rec.Envelope.Seq, "err", err)
				isGap = true
				frame = GapFrame(node, time.Now(), bus.Gap{FromSeq: rec.Envelope.Seq, ToSeq: rec.Envelope.Seq, Dropped: 1, Reason: GapEncoding})
			} else {
				frame = b
			}
		}
		// A Background context: cancelling the write's context makes the
		// library drop the TCP connection without a close frame, so stuck
		// writes are timed by writeTimer and ended by serve's Close instead.
		c.cork.cork()
		c.writeTimer.Reset(f.cfg.WriteTimeout)
		err = c.conn.Write(context.Background(), websocket.MessageText, frame)
		c.writeTimer.Stop()
		if err != nil {
			return end{code: websocket.StatusInternalError, reason: "write failed", err: fmt.Errorf("write frame: %w", err)}
		}
		if isGap {
			c.gaps.Add(1)
			f.gapsSent.Add(1)
		} else {
			c.sent.Add(1)
			f.framesSent.Add(1)
		}
		c.markSeq(rec)
	}
}

// flush writes out the frames held by the cork, timed like a write.
func (c *client) flush() error {
	c.writeTimer.Reset(c.f.cfg.WriteTimeout)
	err := c.cork.uncork()
	c.writeTimer.Stop()
	return err
}

func (c *client) markSeq(rec bus.Record) {
	switch {
	case rec.Gap != nil && rec.Gap.ToSeq != 0:
		c.lastSeq.Store(rec.Gap.ToSeq)
	case rec.Envelope.Seq != 0:
		c.lastSeq.Store(rec.Envelope.Seq)
	}
}

// read reads and drops the client's messages so that the library answers
// pings, takes pongs and sees the close frame; it returns when the
// connection is closed.
func (c *client) read() end {
	for {
		if _, _, err := c.conn.Read(context.Background()); err != nil {
			if s := websocket.CloseStatus(err); s != -1 {
				return end{code: s} // the client closed; the library answered
			}
			return end{code: websocket.StatusNormalClosure, err: fmt.Errorf("read: %w", err)}
		}
	}
}

// ping pings the client every PingInterval, reporting on ended a client
// that does not answer within PingInterval.
func (c *client) ping(ctx context.Context, ended chan<- end) {
	interval := c.f.cfg.PingInterval
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := c.conn.Ping(pctx)
		cancel()
		if err == nil {
			continue
		}
		// Only a missing pong counts: a closed connection or an ended
		// ctx is reported by the reader or the supervisor.
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			c.f.pingTimeouts.Add(1)
			ended <- end{code: websocket.StatusPolicyViolation,
				reason: fmt.Sprintf("no pong within %v", interval), err: fmt.Errorf("ping: %w", err)}
		}
		return
	}
}
