package rtp

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// maxDatagram bounds what a reader takes in one read and what a stream
// sends: an Ethernet MTU's worth of RTP, with room to spare. A longer
// datagram is truncated by the read and counted as malformed.
const maxDatagram = 2048

// StreamInfo is a snapshot of one stream, for observers (tests, load
// tools, logs).
type StreamInfo struct {
	SessionID     string
	LocalPort     int // RTP; RTCP is LocalPort+1
	RemoteAddress string
	RemotePort    int
	PayloadType   uint8
	Codec         string
	Started       time.Time
	// SSRC is the stream's own synchronisation source, chosen at random
	// when the stream starts.
	SSRC uint32
	// RemoteSSRC is the far end's source whose packets are accepted; zero
	// before the first packet.
	RemoteSSRC uint32
	// Latched is the source address of the far end's RTP (symmetric RTP):
	// the stream sends there instead of RemoteAddress:RemotePort. It is
	// the zero AddrPort until a valid packet arrives.
	Latched netip.AddrPort

	// PacketsSent and OctetsSent count the RTP packets written to the
	// socket and their payload octets (RFC 3550 §6.4.1).
	PacketsSent uint64
	OctetsSent  uint64
	// SendDropped counts the SendRtpPacket events not sent: no usable
	// destination, a payload too large or a payload type out of range, or
	// a write error.
	SendDropped uint64

	// PacketsReceived and OctetsReceived count the RTP packets accepted
	// and relayed as RtpPacketReceived, and their payload octets.
	PacketsReceived uint64
	OctetsReceived  uint64
	// Malformed counts datagrams on the RTP socket that are not valid RTP.
	Malformed uint64
	// ForeignSource counts valid packets dropped because they came from
	// another address than the latched one.
	ForeignSource uint64
	// ForeignSSRC counts valid packets dropped because they carried
	// another SSRC than the stream's remote source, before that SSRC
	// proved itself with consecutive packets.
	ForeignSSRC uint64
	// BadSeq counts packets of the remote source dropped because their
	// sequence number jumped too far (RFC 3550 A.1).
	BadSeq uint64
	// PacketsLost is the cumulative loss (RFC 3550 A.3), negative when
	// duplicates outnumber losses, summed over every remote source the
	// stream had.
	PacketsLost int64
	// FractionLost is the loss fraction of the last RTCP interval, in
	// 1/256 (the reception report's field).
	FractionLost uint8
	// JitterMS is the interarrival jitter of RFC 3550 A.8 in milliseconds.
	JitterMS float64

	// RTCPSent counts the compound RTCP packets sent; RTCPReceived the
	// valid ones read on the RTCP socket and MalformedRTCP the others.
	RTCPSent      uint64
	RTCPReceived  uint64
	MalformedRTCP uint64
	// RttMS is the round-trip time from the far end's last reception
	// report about this stream; 0 while unknown.
	RttMS float64
}

// stats returns the RtpStats part of i.
func (i StreamInfo) stats() events.RtpStats {
	return events.RtpStats{PacketsSent: i.PacketsSent, PacketsReceived: i.PacketsReceived,
		OctetsSent: i.OctetsSent, OctetsReceived: i.OctetsReceived, PacketsLost: i.PacketsLost,
		JitterMS: i.JitterMS, RttMS: i.RttMS}
}

// stream is the RTP stream of one session: its sockets, where it sends
// to, its receive state and its counters.
//
// The send path (sendBuf and the atomics) belongs to the session's bus
// handler, which the bus runs one event at a time. The receive and RTCP
// state is guarded by mu, shared by the two readers, the handler and the
// report timer. reportMu orders the report timer against stop.
type stream struct {
	session string
	pair    pair
	started time.Time
	ssrc    uint32

	// readers runs the stream's two socket readers; their context bounds
	// their publishes, and close stops it.
	readers *callcore.Group

	sendBuf     [maxDatagram]byte
	payloadType atomic.Uint32
	// dest is where RTP goes: the latched source, else the signalled
	// address; nil when neither is usable.
	dest                                 atomic.Pointer[netip.AddrPort]
	packetsSent, octetsSent, sendDropped atomic.Uint64
	// lastTS and lastSentAt (hub mono ns) date the last packet of the
	// stream's own payload type, for the SR's RTP timestamp.
	lastTS     atomic.Uint32
	lastSentAt atomic.Int64
	// reported holds one bit per RtpError code already published for
	// this stream's sends: each is reported once, never per packet.
	reported atomic.Uint32

	mu            sync.Mutex
	remoteAddress string
	remotePort    int
	codec         string
	signalled     netip.AddrPort // remoteAddress:remotePort when usable
	rx            receiver
	malformed     uint64
	rtcpState

	reportMu sync.Mutex
	stopped  bool
	// nextRTCP and nextStats are hub mono times; sentAtReport is
	// packetsSent when the last report went out.
	nextRTCP, nextStats time.Duration
	sentAtReport        uint64
	rtcpSent            atomic.Uint64

	shutOnce sync.Once
}

// rtcpState is what a stream learns from RTCP; guarded by stream.mu.
type rtcpState struct {
	// rtcpLatched is the source of the far end's RTCP.
	rtcpLatched                 netip.AddrPort
	rtcpReceived, malformedRTCP uint64
	// lsr is the middle of the NTP time of the far end's last SR, from
	// lsrSSRC, received at lsrAt.
	lsr      uint32
	lsrSSRC  uint32
	lsrAt    time.Time
	haveLSR  bool
	rttMS    float64
	fraction uint8
}

func newStream(session string, pr pair, relatchAfter time.Duration) *stream {
	return &stream{session: session, pair: pr, started: time.Now(), ssrc: rand.Uint32(),
		rx: receiver{relatchAfter: relatchAfter}}
}

// info returns a snapshot of st.
func (st *stream) info() StreamInfo {
	st.mu.Lock()
	defer st.mu.Unlock()
	i := StreamInfo{
		SessionID:       st.session,
		LocalPort:       st.pair.port,
		RemoteAddress:   st.remoteAddress,
		RemotePort:      st.remotePort,
		PayloadType:     uint8(st.payloadType.Load()),
		Codec:           st.codec,
		Started:         st.started,
		SSRC:            st.ssrc,
		Latched:         st.rx.latched,
		PacketsSent:     st.packetsSent.Load(),
		OctetsSent:      st.octetsSent.Load(),
		SendDropped:     st.sendDropped.Load(),
		PacketsReceived: st.rx.packets,
		OctetsReceived:  st.rx.octets,
		Malformed:       st.malformed,
		ForeignSource:   st.rx.foreignSource,
		ForeignSSRC:     st.rx.foreignSSRC,
		BadSeq:          st.rx.badSeq,
		FractionLost:    st.fraction,
		RTCPSent:        st.rtcpSent.Load(),
		RTCPReceived:    st.rtcpReceived,
		MalformedRTCP:   st.malformedRTCP,
		RttMS:           st.rttMS,
	}
	if st.rx.haveSSRC {
		i.RemoteSSRC = st.rx.ssrc
		i.PacketsLost = st.rx.stats.totalLost()
		i.JitterMS = st.rx.stats.jitter / (clockRate / 1000)
	}
	return i
}

// configure records what a StartRtpStream asks for. A new remote address
// forgets the latched sources; a new payload type changes what jitter is
// computed over.
func (st *stream) configure(ev *events.StartRtpStream) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.payloadType.Store(uint32(ev.PayloadType))
	st.rx.payloadType = ev.PayloadType
	st.codec = ev.Codec
	if ev.RemoteAddress != st.remoteAddress || ev.RemotePort != st.remotePort {
		st.setRemoteLocked(ev.RemoteAddress, ev.RemotePort)
	}
}

// setRemote records where the stream sends to and forgets the latched
// sources.
func (st *stream) setRemote(addr string, port int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.setRemoteLocked(addr, port)
}

func (st *stream) setRemoteLocked(addr string, port int) {
	st.remoteAddress, st.remotePort = addr, port
	st.signalled = parseRemote(addr, port)
	st.rx.unlatch()
	st.rtcpLatched = netip.AddrPort{}
	st.refreshDest()
}

// refreshDest recomputes dest after the latch or the signalled address
// changed. The caller holds mu.
func (st *stream) refreshDest() {
	d := st.rx.latched
	if !d.IsValid() {
		d = st.signalled
	}
	if !d.IsValid() {
		st.dest.Store(nil)
		return
	}
	if cur := st.dest.Load(); cur == nil || *cur != d {
		st.dest.Store(&d)
	}
}

// rtcpDest is where RTCP goes: the latched RTCP source, else the
// signalled address with port+1. The caller holds mu.
func (st *stream) rtcpDest() netip.AddrPort {
	if st.rtcpLatched.IsValid() {
		return st.rtcpLatched
	}
	if !st.signalled.IsValid() || st.signalled.Port() == 65535 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(st.signalled.Addr(), st.signalled.Port()+1)
}

// parseRemote returns addr:port, or the zero AddrPort when it cannot be
// sent to: port 0, an empty, unparsable or unspecified address. Host names
// are not resolved: SDP carries addresses.
func parseRemote(addr string, port int) netip.AddrPort {
	if port <= 0 || port > 65535 {
		return netip.AddrPort{}
	}
	a, err := netip.ParseAddr(addr)
	if err != nil || a.IsUnspecified() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}

// startReaders starts one reader per socket, under ctx; close stops them.
func (st *stream) startReaders(ctx context.Context, h *Hub) {
	st.readers = callcore.NewGroup(ctx, "rtp stream "+st.session)
	st.readers.Go("rtp reader", func(ctx context.Context) { h.readRTP(ctx, st) })
	st.readers.Go("rtcp reader", func(ctx context.Context) { h.readRTCP(ctx, st) })
}

// shut cancels the readers' publishes and closes both sockets, which ends
// the readers. It is idempotent.
func (st *stream) shut() {
	st.shutOnce.Do(func() {
		st.readers.Stop()
		st.pair.close()
	})
}

// close shuts st and waits for its readers to return, until ctx ends (the
// error then names them). The caller releases the ports afterwards.
func (st *stream) close(ctx context.Context) error {
	st.shut()
	return st.readers.Wait(ctx)
}
