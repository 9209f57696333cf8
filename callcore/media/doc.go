// Package media is the media layer of callbus (DESIGN.md §1,
// docs/signalling.md "media and rtp"): SDP offer/answer and the media
// state of each call session. It talks to the rest of callbus only through
// the bus: it serves session_to_media and rtp_to_media (one subscriber, so
// one session's events are handled one at a time) and publishes
// media_to_session and media_to_rtp. It never imports the rtp layer.
//
// This is the signalling-level version: it negotiates and keeps the state
// the audio issue will need (codec, payload types, direction, hold, the far
// end's address), but moves no audio. Playback, recording, DTMF sending,
// bridging and quality reports answer MediaError{error_code:
// "not_supported"}.
//
// # Flows
//
// StartMediaStream{remote_sdp?, media_config}: with a remote offer, media
// parses it first (pion/sdp, after normalising the line order real phones
// get wrong) and answers MediaError{incompatible_sdp} at once, with no port
// taken, if there is no usable audio stream or no common codec. It then
// publishes StartRtpStream{local_port: 0, remote_address, remote_port,
// payload_type, codec} and keeps the session pending until rtp answers:
// RtpStreamStarted{local_port} → the SDP (answer or offer) on that port →
// MediaStreamStarted{local_port, codec, local_sdp}; RtpError → MediaError
// {no_port} (or {rtp_error} for an RtpError not about the pool).
//
//   - An answer takes the first offered codec among PCMU and PCMA that
//     media_config.codecs allows (empty: both), telephone-event/8000 with
//     the offer's payload type when offered, and the direction mirrored
//     (offer sendonly → recvonly, recvonly → sendonly, inactive → inactive;
//     media_config.direction narrows it further). It has one m= line per
//     offered one: the audio stream accepted, the others rejected (port 0).
//   - An offer lists the allowed codecs in media_config's order (PCMU 0,
//     PCMA 8), telephone-event 101 and media_config.direction (sendrecv).
//     MediaStreamStarted.codec is then its first codec; the answer settles
//     the codec for good (UpdateMediaStream).
//   - c= and o= carry Config.ExternalIP.
//
// UpdateMediaStream{local_sdp, remote_sdp} (an answer to our offer, or a
// re-INVITE): the remote SDP's audio address and port → UpdateRtpStream.
// The direction of local_sdp is what we send; the codec is the first of the
// remote SDP's codecs that local_sdp lists too. When that codec differs
// from the one the RTP stream was started with, media also publishes
// StartRtpStream{local_port: the stream's port, …} again, which rtp treats
// as a reconfiguration of the stream (see package rtp). An empty local_sdp
// means the last one media built.
//
// HoldMedia / ResumeMedia record that sending is held; they are not
// answered (the session learns the outcome from the re-INVITE).
//
// StopMediaStream → StopRtpStream → RtpStreamStopped → MediaStreamStopped
// {reason: rtp's reason, "stopped"}. A stop while the start is pending is
// fine: rtp handles the session's events in order, so the stream starts and
// stops, and only MediaStreamStopped is published. A second stop before
// MediaStreamStopped is absorbed: the one MediaStreamStopped answers both.
//
// # Errors
//
// MediaError{error, error_code} with these codes (the ErrorCode* constants):
// incompatible_sdp (unparsable SDP, no usable audio, no common codec),
// no_port (rtp could not bind a port pair), no_session (an event for a
// session media does not know, including a second StopMediaStream after
// MediaStreamStopped, and a stop after a failed start), invalid_state (a
// second StartMediaStream, an update before MediaStreamStarted),
// invalid_config (a bad media_config direction or ptime_ms),
// not_supported (events of the audio issue, and local_sdp in
// StartMediaStream), rtp_error (rtp reported a failure of a running
// stream). A failed start leaves no state behind.
package media
