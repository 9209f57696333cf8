package rtp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	pionrtp "github.com/pion/rtp"

	"github.com/callbus/callbus/callcore/events"
)

// maxDatagram bounds what a reader takes in one read: an Ethernet MTU's
// worth of RTP, with room to spare. A longer datagram is truncated and
// counted as malformed.
const maxDatagram = 2048

// StreamInfo is a snapshot of one stream, for observers (tests, and later
// the statistics of the audio issue).
type StreamInfo struct {
	SessionID     string
	LocalPort     int // RTP; RTCP is LocalPort+1
	RemoteAddress string
	RemotePort    int
	PayloadType   uint8
	Codec         string
	Started       time.Time
	// PacketsReceived and OctetsReceived count the well-formed RTP packets
	// read on the RTP socket and their payload octets (RFC 3550 §6.4.1).
	PacketsReceived uint64
	OctetsReceived  uint64
	// RTCPReceived counts the datagrams read on the RTCP socket.
	RTCPReceived uint64
	// Malformed counts datagrams on the RTP socket that are not RTP.
	Malformed uint64
	// SendRefused counts the SendRtpPacket events refused because sending
	// is not built yet.
	SendRefused uint64
}

// stream is the RTP stream of one session: its sockets, where it sends to,
// and its counters. A stream's fields other than the counters are guarded
// by mu; the stream is reached through Hub.streams.
type stream struct {
	session string
	pair    pair
	started time.Time

	mu            sync.Mutex
	remoteAddress string
	remotePort    int
	payloadType   uint8
	codec         string

	packets, octets, rtcp, malformed, sendRefused atomic.Uint64

	readers   sync.WaitGroup
	closeOnce sync.Once
}

// info returns a snapshot of st.
func (st *stream) info() StreamInfo {
	st.mu.Lock()
	defer st.mu.Unlock()
	return StreamInfo{
		SessionID:       st.session,
		LocalPort:       st.pair.port,
		RemoteAddress:   st.remoteAddress,
		RemotePort:      st.remotePort,
		PayloadType:     st.payloadType,
		Codec:           st.codec,
		Started:         st.started,
		PacketsReceived: st.packets.Load(),
		OctetsReceived:  st.octets.Load(),
		RTCPReceived:    st.rtcp.Load(),
		Malformed:       st.malformed.Load(),
		SendRefused:     st.sendRefused.Load(),
	}
}

// configure records what a StartRtpStream asks for.
func (st *stream) configure(ev *events.StartRtpStream) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.remoteAddress, st.remotePort = ev.RemoteAddress, ev.RemotePort
	st.payloadType, st.codec = ev.PayloadType, ev.Codec
}

// setRemote records where the stream sends to.
func (st *stream) setRemote(addr string, port int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.remoteAddress, st.remotePort = addr, port
}

// startReaders starts one reader per socket; close stops them.
func (st *stream) startReaders(ctx context.Context, h *Hub) {
	st.readers.Add(2)
	go h.readRTP(ctx, st)
	go h.readRTCP(ctx, st)
}

// close closes both sockets and waits for the readers to return. It is
// idempotent. The caller releases the ports afterwards.
func (st *stream) close() {
	st.closeOnce.Do(func() {
		st.pair.close()
		st.readers.Wait()
	})
}

// readRTP reads the RTP socket until it is closed, counting packets and
// discarding them. A read error other than the socket's closing is
// reported as RtpError and ends the reader.
func (h *Hub) readRTP(ctx context.Context, st *stream) {
	defer st.readers.Done()
	buf := make([]byte, maxDatagram)
	var hdr pionrtp.Header
	for {
		n, err := st.pair.rtp.Read(buf)
		if err != nil {
			h.readFailed(ctx, st, "RTP", err)
			return
		}
		hl, err := hdr.Unmarshal(buf[:n])
		if err != nil || n == len(buf) {
			st.malformed.Add(1)
			continue
		}
		st.packets.Add(1)
		st.octets.Add(uint64(n - hl))
	}
}

// readRTCP reads the RTCP socket until it is closed, counting datagrams.
func (h *Hub) readRTCP(ctx context.Context, st *stream) {
	defer st.readers.Done()
	buf := make([]byte, maxDatagram)
	for {
		if _, err := st.pair.rtcp.Read(buf); err != nil {
			h.readFailed(ctx, st, "RTCP", err)
			return
		}
		st.rtcp.Add(1)
	}
}

// readFailed reports a read error, unless the socket was closed on purpose.
func (h *Hub) readFailed(ctx context.Context, st *stream, what string, err error) {
	if errors.Is(err, net.ErrClosed) {
		return
	}
	h.log.Warn("rtp read failed; the reader stops", "session_id", st.session,
		"socket", what, "port", st.pair.port, "error", err)
	h.publish(ctx, &events.RtpError{SessionRef: events.SessionRef{SessionID: st.session},
		Error: fmt.Sprintf("%s: read %s socket on port %d: %v", codeSocket, what, st.pair.port, err)})
}
