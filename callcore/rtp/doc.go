// Package rtp is the RTP layer of callbus (DESIGN.md §1, docs/signalling.md
// "media and rtp"): it owns the UDP port pool and one pair of sockets, RTP
// and RTCP, per call session. It talks to the rest of callbus only through
// the bus: it serves the media_to_rtp channel and publishes rtp_to_media.
//
// This is the signalling-level version. A stream binds its sockets for
// real, reads and counts what arrives (RTP packets, RTCP packets, malformed
// datagrams) and discards it; it sends nothing. Relaying received packets
// (RtpPacketReceived), sending (SendRtpPacket), RTCP and statistics
// (RtpStatisticsUpdate) come with the audio issue.
//
// # Events
//
//   - StartRtpStream{local_port, remote_address, remote_port, payload_type,
//     codec} binds an even RTP port and the RTCP port above it, starts the
//     stream's readers and answers RtpStreamStarted{local_port}.
//   - UpdateRtpStream{remote_address, remote_port} records where the stream
//     sends to.
//   - StopRtpStream closes the sockets, releases the ports and answers
//     RtpStreamStopped{reason: "stopped"}; for a session without a stream
//     it answers RtpStreamStopped{reason: "no_stream"}, so stopping is
//     idempotent and always answered.
//   - SendRtpPacket is refused until sending is built: the first packet of
//     a stream is answered with RtpError "not_supported: …", every one is
//     counted (StreamInfo.SendRefused).
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
//     (remote address, payload type, codec) and answers RtpStreamStarted
//     with the same port again. Media uses this when a renegotiation
//     changes the codec; a retried StartRtpStream is harmless.
//   - RtpStreamStarted.local_port is the one truth about the port; media
//     advertises it in its SDP.
//
// Failures are RtpError{error}; the catalogue gives RtpError no code field,
// so the error text starts with a stable code and a colon: "no_port: …"
// (pool exhausted, or the asked-for pair is busy or outside the range),
// "no_stream: …" (no stream for the session), "bad_request: …" (a field out
// of range), "socket: …" (a read failed; the stream's reader stops),
// "not_supported: …".
package rtp
