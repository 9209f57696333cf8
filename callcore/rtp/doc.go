// Package rtp is the RTP layer of callbus (DESIGN.md §1, docs/signalling.md
// "media and rtp"): it owns the UDP port pool and one pair of sockets, RTP
// and RTCP, per call session. It talks to the rest of callbus only through
// the bus: it serves the media_to_rtp channel and publishes rtp_to_media.
// Media builds the audio (payload, sequence number, timestamp, marker);
// rtp puts it on the wire, takes it off, and measures the path.
//
// # Events
//
//   - StartRtpStream{local_port, remote_address, remote_port, payload_type,
//     codec} binds an even RTP port and the RTCP port above it, picks a
//     random SSRC, starts the stream's readers and answers
//     RtpStreamStarted{local_port}.
//   - UpdateRtpStream{remote_address, remote_port} records where the stream
//     sends to and forgets the latched sources (below).
//   - SendRtpPacket{payload, timestamp, sequence_number, [payload_type],
//     [marker]} is sent as one RTP packet: version 2, the event's sequence
//     number, timestamp and marker, its payload type when not 0 (RFC 4733
//     events) else the stream's, and the stream's SSRC. Sending allocates
//     nothing (the header is marshalled into a buffer of the stream's).
//   - Every accepted packet received is published as RtpPacketReceived
//     {payload, timestamp, sequence_number, payload_type, marker}.
//   - RtpStatisticsUpdate{stats} every Config.StatsInterval per stream, and
//     a final one when the stream stops, published before RtpStreamStopped.
//   - StopRtpStream sends an RTCP BYE (best effort), closes the sockets,
//     releases the ports and answers the final RtpStatisticsUpdate and
//     RtpStreamStopped{reason: stopped}; for a session without a stream
//     it answers RtpStreamStopped{reason: no_stream}, so stopping is
//     idempotent and always answered (events.StreamStopReason).
//
// # Where packets go: symmetric RTP
//
// A phone behind a NAT sends from an address that is not the one its SDP
// names. The first valid RTP packet a stream receives latches its source
// address, and from then on the stream sends there; before any packet, it
// sends to the signalled remote_address:remote_port. Packets from any other
// source are dropped (StreamInfo.ForeignSource) unless the latched source
// has been silent for more than Config.RelatchAfter, in which case the new
// source takes the latch (a NAT rebinding). UpdateRtpStream clears the
// latch. A packet with no usable destination (no latch, and port 0 or an
// empty, unparsable or unspecified address; host names are not resolved)
// is dropped and counted (StreamInfo.SendDropped), and reported once per
// stream as RtpError{no_destination}.
//
// # What is accepted
//
// A datagram shorter than 12 octets, of another version than 2, with an
// RTCP payload type (72-76), with CSRCs, extension or padding beyond its
// end, without payload, or longer than the read buffer is malformed: it is
// counted (StreamInfo.Malformed) and dropped, and never latches. The first
// packet fixes the remote SSRC. A packet with another SSRC is dropped
// (StreamInfo.ForeignSSRC) until that SSRC sends two consecutive packets in
// sequence (RFC 3550 A.1 probation); then it becomes the remote source and
// its statistics start afresh (a far end that restarted its stream, e.g.
// after a transfer). A packet of the remote source whose sequence number
// jumps by more than 3000 is dropped (StreamInfo.BadSeq) unless the next
// one follows it, which resyncs.
//
// # Statistics and RTCP
//
// Reception follows RFC 3550 Appendix A: extended highest sequence number
// with cycles (A.1), expected, cumulative lost (negative with duplicates;
// summed over the stream's remote sources) and fraction lost per RTCP
// interval (A.3), interarrival jitter (A.8) at an 8000 Hz clock, computed
// over packets of the stream's own payload type only (telephone events
// repeat timestamps) and reported in milliseconds.
//
// Each stream sends a compound RTCP packet every Config.RTCPInterval,
// randomised to [0.5, 1.5]× (the first after half an interval): a
// SenderReport when it sent RTP since its last report (NTP time, RTP
// timestamp extrapolated from the last packet sent, packet and octet
// counts), else a ReceiverReport; one reception report about the remote
// source once there is one (LSR and DLSR from the far end's last SR); and
// an SDES CNAME. RTCP goes to the latched RTCP source, else to the
// signalled address at remote_port+1. From received RTCP a stream keeps
// the LSR of the far end's SRs and takes the round-trip time from their
// reception reports about its own SSRC (ignored when LSR is 0 or the
// result negative); a BYE is logged; anything unparsable is counted
// (StreamInfo.MalformedRTCP) and dropped. One timer goroutine serves the
// reports and statistics of every stream of the hub.
//
// # The port-allocation protocol between media and rtp
//
// rtp is the only owner of the port pool; media never picks a port.
//
//   - StartRtpStream with local_port 0 asks for any free pair. The pool
//     hands pairs out round-robin (a released port is the last to be
//     reused, so late packets of an ended call do not reach a new one) and
//     binds both sockets as it allocates: a port that another process holds
//     is skipped, not handed out.
//   - StartRtpStream with local_port ≠ 0 asks for exactly that pair: the
//     port must be even, its pair inside Config.Ports and free.
//   - StartRtpStream for a session that already has a stream, with
//     local_port 0 or the stream's own port, reconfigures the stream
//     (remote address, payload type, codec; a new remote address clears
//     the latch) and answers RtpStreamStarted with the same port again.
//     Media uses this when a renegotiation changes the codec; a retried
//     StartRtpStream is harmless.
//   - RtpStreamStarted.local_port is the one truth about the port; media
//     advertises it in its SDP.
//
// Failures are RtpError{error, error_code}, error_code an
// events.RtpErrorCode, and the error text starts with the same code and a
// colon ("no_port: …") for readers of the text: no_port (pool exhausted, or
// the asked-for pair is busy or outside the range), no_stream (no stream
// for the session), bad_request (a field out of range; for SendRtpPacket,
// once per stream), no_destination (once per stream, see above), socket (a
// read failed and the stream's reader stopped, or a write failed: once per
// stream). Only no_port and no_stream end anything; the others report a
// stream that keeps running.
package rtp
