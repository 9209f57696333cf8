// Package media is the media layer of callbus (DESIGN.md §1,
// docs/signalling.md "media and rtp"): SDP offer/answer, and the audio of
// every call session — G.711 frames paced by one sender clock, playback of
// WAV files and URLs, stereo recording, RFC 4733 DTMF both ways, bridging
// of two calls with PCMU↔PCMA transcoding, the built-in echo and tone
// applications, and quality reports. It talks to the rest of callbus only
// through the bus: it serves session_to_media and rtp_to_media (one
// subscriber, so one session's events are handled one at a time) and
// publishes media_to_session and media_to_rtp. It never imports the rtp
// layer; the pure audio code is package audio, the pure SDP code package
// sdp (media keeps only its offer/answer policy).
//
// # Streams
//
// StartMediaStream{remote_sdp?, media_config}: with a remote offer, media
// parses it first (sdp.Parse: pion/sdp's grammar, after normalising the
// line order real phones get wrong) and answers MediaError{incompatible_sdp}
// at once, with no port taken, if there is no usable audio stream or no
// common codec. It then publishes StartRtpStream{local_port: 0,
// remote_address, remote_port, payload_type, codec} and keeps the session
// pending until rtp answers: RtpStreamStarted{local_port} → the SDP
// (answer or offer) on that port → MediaStreamStarted{local_port, codec,
// local_sdp}; RtpError{no_port} → MediaError{no_port}, any other RtpError →
// MediaError{rtp_error} (by the RtpError's error_code, never its text).
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
//   - media_config.builtin "echo" sends back what the far end sends;
//     "tone" sends a continuous 350 Hz + 440 Hz tone (the North American
//     dial tone). Received DTMF is reported as for any call.
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
// StopMediaStream → StopRtpStream → RtpStreamStopped → (the playback in
// progress finishes: AudioPlaybackFinished; a digit still open in the DTMF
// receiver: DtmfDetected; the recording closes: RecordingStopped) →
// MediaStreamStopped{reason: rtp's reason, e.g. stopped}. A stop while the
// start is pending is fine: rtp handles the session's events in order, so
// the stream starts and stops, and only MediaStreamStopped is published. A
// second stop before MediaStreamStopped is absorbed.
//
// # The sender clock
//
// One goroutine, started by Open, ticks every 20 ms on absolute deadlines
// (start + n·20 ms) for every started session; when it wakes more than a
// tick late it skips the missed ticks (Pacing counts them) instead of
// bursting. Each tick it takes one 20 ms frame from each session's
// receive queue, then produces each session's frame from the first source
// there is:
//
//  1. RFC 4733 DTMF being sent: the packet replaces audio, with the
//     telephone-event payload type and, for all its packets, the RTP
//     timestamp of the tick the digit started on (audio.DTMFSender: one
//     packet per tick, the first marked, three end packets); 60 ms of
//     audio separate two digits;
//  2. the playback;
//  3. the bridged peer's received frame (silence when it has none);
//  4. echo: the session's own received frame;
//  5. the tone;
//  6. silence (the codec's zero code): sent rather than nothing, so NAT
//     pinholes stay open and the far end's jitter buffer stays fed.
//
// The frame is encoded with the session's codec and published as
// SendRtpPacket{payload, timestamp, sequence_number, payload_type: 0 (the
// stream's) or telephone-event's, marker} when the session sends: our
// direction is sendrecv or sendonly, it is not held (HoldMedia/ResumeMedia)
// and the far end's address is known (not 0.0.0.0). The RTP timestamp
// starts at random and advances by 160 every tick, sending or not, so it
// stays true to wall time across a hold; the sequence number starts at
// random and counts packets sent. The marker is set on the first packet of
// the stream, the first after a pause in sending (a hold, or ticks the clock
// skipped) and the first audio packet after a digit. The playback advances while the session does not send
// (a prompt takes its own length), DTMF waits (a digit cut by a hold is
// dropped). Each packet costs one allocation (event and payload
// together); payloads are never reused, so any subscriber may keep them.
//
// # Receiving
//
// RtpPacketReceived with the codec's payload type is decoded into the
// session's receive queue (160 ms; past it the oldest audio is dropped
// and counted in StreamInfo.QueueDropped): the clock takes a frame per tick
// for echo, for the bridged peer and for the recording. Packets of any
// packet time are accepted. telephone-event packets go to an
// audio.DTMFReceiver: DtmfDetected{digit, duration_ms} once per digit
// (lost start packets, redundant end packets and reordering are handled
// there; a digit whose end packets were all lost is reported once
// telephone events have been quiet for 200 ms, or at the stream's stop);
// when bridged, the digit is also sent on the peer's stream with
// the same duration (DTMF passthrough). Other payload types (and
// telephone-event payloads too short to parse) are dropped and counted in
// StreamInfo.WrongPayloadType. Packets of a session media does not know
// are dropped.
//
// # Playback
//
// PlayAudio{file_path, loop_count}: file_path is an http:// or https://
// URL (one GET, 10 s, at most audio.MaxWAVBytes of WAV; not cached), or a
// file of Config.MediaDir: a relative name, or an absolute path inside it.
// Files are opened through an os.Root on MediaDir, so neither ".." nor a
// symbolic link reaches outside it; without a MediaDir no file plays. Any
// WAV audio.ReadWAV reads (PCM, float, G.711; any rate and channels) is
// converted to 8 kHz mono once and kept in a cache of the 32 most recent
// files (keyed by name, modification time and size), so a thousand calls
// playing one prompt decode it once. It plays loop_count times (0 and 1:
// once), seamlessly. A new PlayAudio replaces the playback in progress;
// StopAudio stops it. Each PlayAudio has exactly one outcome, published in
// the order the playbacks were asked for: AudioPlaybackFinished (played
// out, stopped, replaced, or the stream stopped), or MediaError{
// playback_failed} when it cannot play — the message names the file as
// given (relative to MediaDir, never the server's path) and the reason.
//
// # Recording
//
// StartRecording{file_path, format: "wav"} creates the file's directory
// (0750) and a stereo 8 kHz 16-bit WAV (audio.CreateWAV): left what the
// far end sends, right what media sends, one frame per tick, silence where
// there is none, so both stay aligned to wall time → RecordingStarted.
// StopRecording → the file is completed and synced → RecordingStopped
// {file_path, duration_ms}; a stream stop does the same before
// MediaStreamStopped. The file is written by a goroutine of the recording
// fed through a 1 s queue, so a stalling disk never delays the clock;
// beyond 1 s frames are dropped (StreamInfo.RecordingDropped) and written as
// silence when the writer catches up. Any failure (format, directory,
// create, write, close) is MediaError{recording_failed}, with the file
// closed, and is the recording's only outcome.
//
// # DTMF, bridging, quality
//
// SendDtmf (MediaSendDtmf{tones, duration_ms}) queues RFC 4733 digits:
// duration 0 means 100 ms, others are clamped to 40-5000 ms. Digits
// outside 0-9 * # A-D → MediaError{invalid_request} naming the character;
// no telephone-event negotiated → MediaError{dtmf_not_negotiated}.
//
// BridgeMedia{session_id, peer_session_id} links two started sessions:
// each one's outgoing audio is the other's received audio, decoded and
// re-encoded with its own codec. Either session unknown or not started →
// MediaError{no_session}. UnbridgeMedia or either stream's stop unlinks
// both.
//
// Each RtpStatisticsUpdate → MediaQualityUpdate{mos (audio.MOS E-model),
// packet_loss_pct (lost / (received + lost), 0 when nothing is expected or
// duplicates outnumber losses), jitter_ms, rtt_ms, packets_sent,
// packets_received}. rtp sends a final update just before RtpStreamStopped,
// so the final quality precedes MediaStreamStopped.
//
// # Concurrency
//
// The bus hands one session's events to one handler at a time; the clock,
// Stream and a bridged peer's handlers reach a session too, under the
// session's own mutex (never the hub's on the packet paths, and never two
// sessions' at once). Every event of a session is published under a second
// per-session lock held across the state change that decided it, so the
// session layer sees them in that order (e.g. a playback's finish, from the
// clock, before the next PlayAudio's failure, from a handler; no packet
// after StopRtpStream). A PlayAudio of a URL fetches in its handler: it
// holds up that session's events (up to 10 s), no other session's.
//
// # Errors
//
// MediaError{error, error_code} with these codes (events.MediaErrorCode,
// whose constants document each): incompatible_sdp (unparsable SDP, no usable audio, no common
// codec), no_port (rtp could not bind a port pair), no_session (an event
// for a session media does not know, or a bridge with one not started),
// invalid_state (a second StartMediaStream, an update before
// MediaStreamStarted, DTMF before the stream started), invalid_config (a
// bad media_config direction, ptime_ms or builtin), invalid_request (bad
// DTMF digits, too many queued, a session bridged with itself),
// playback_failed, recording_failed, dtmf_not_negotiated, not_supported
// (local_sdp in StartMediaStream), rtp_error (rtp reported a failure of a
// running stream). A failed start leaves no state behind.
package media
