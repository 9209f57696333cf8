package events

// ChannelRTPToMedia carries received RTP packets, stream state and RTP
// statistics from the RTP layer to the media layer.
const ChannelRTPToMedia = "rtp_to_media"

type onRTPToMedia struct{}

// Channel returns ChannelRTPToMedia.
func (onRTPToMedia) Channel() string { return ChannelRTPToMedia }

func rtpToMediaEvents() []Event {
	return []Event{&RtpStreamStarted{}, &RtpStreamStopped{}, &RtpPacketReceived{},
		&RtpStatisticsUpdate{}, &RtpError{}}
}

// RtpStreamStarted reports that the stream of a session is open on LocalPort.
type RtpStreamStarted struct {
	onRTPToMedia
	SessionRef
	LocalPort int `json:"local_port"`
}

// Type returns "RtpStreamStarted".
func (*RtpStreamStarted) Type() string { return "RtpStreamStarted" }

// StreamStopReason says why the stream of a session stopped. rtp sets it
// in RtpStreamStopped and media passes it on unchanged in
// MediaStreamStopped, so the two events share this vocabulary.
type StreamStopReason string

// The reasons of RtpStreamStopped and MediaStreamStopped.
const (
	// StopReasonStopped: StopRtpStream (sent by media for StopMediaStream)
	// closed the stream. rtp emits it.
	StopReasonStopped StreamStopReason = "stopped"
	// StopReasonNoStream: StopRtpStream named a session that has no stream;
	// rtp answers every stop, so stopping is idempotent. rtp emits it.
	StopReasonNoStream StreamStopReason = "no_stream"
	// StopReasonRTPTimeout: the stream stopped because no RTP arrived for
	// too long; the session layer ends the call with end reason timeout.
	// No layer emits it yet (callbus has no RTP inactivity timer): it is
	// the value such a timer must use, so that the session never has to
	// guess a timeout from the text of a reason.
	StopReasonRTPTimeout StreamStopReason = "rtp_timeout"
)

// StreamStopReasons lists every StreamStopReason.
func StreamStopReasons() []StreamStopReason {
	return []StreamStopReason{StopReasonStopped, StopReasonNoStream, StopReasonRTPTimeout}
}

// RtpStreamStopped reports that the stream of a session is closed.
type RtpStreamStopped struct {
	onRTPToMedia
	SessionRef
	Reason StreamStopReason `json:"reason"`
}

// Type returns "RtpStreamStopped".
func (*RtpStreamStopped) Type() string { return "RtpStreamStopped" }

// RtpPacketReceived reports one RTP packet received on the stream of a
// session. It is a data-plane event: it carries no feed seq and is streamed
// only when asked for by name.
type RtpPacketReceived struct {
	onRTPToMedia
	SessionRef
	Payload        []byte `json:"payload"`
	Timestamp      uint32 `json:"timestamp"`
	SequenceNumber uint16 `json:"sequence_number"`
	PayloadType    uint8  `json:"payload_type"`
	Marker         bool   `json:"marker,omitempty"`
}

// Type returns "RtpPacketReceived".
func (*RtpPacketReceived) Type() string { return "RtpPacketReceived" }

func (*RtpPacketReceived) dataPlane() {}

// RtpStats are the RTP and RTCP counters of one stream since it started.
type RtpStats struct {
	PacketsSent     uint64 `json:"packets_sent"`
	PacketsReceived uint64 `json:"packets_received"`
	OctetsSent      uint64 `json:"octets_sent"`
	OctetsReceived  uint64 `json:"octets_received"`
	// PacketsLost is the cumulative loss of RFC 3550 §6.4.1, which is
	// negative when duplicates outnumber losses.
	PacketsLost int64 `json:"packets_lost"`
	// JitterMS is the interarrival jitter in milliseconds.
	JitterMS float64 `json:"jitter_ms"`
	// RttMS is the round-trip time from RTCP; 0 when unknown.
	RttMS float64 `json:"rtt_ms,omitempty"`
}

// RtpStatisticsUpdate reports the periodic statistics of the stream of a session.
type RtpStatisticsUpdate struct {
	onRTPToMedia
	SessionRef
	Stats RtpStats `json:"stats"`
}

// Type returns "RtpStatisticsUpdate".
func (*RtpStatisticsUpdate) Type() string { return "RtpStatisticsUpdate" }

// RtpErrorCode classifies an RtpError. rtp emits every one of them; only
// RtpErrNoPort and RtpErrNoStream mean that nothing was done, the others
// report a stream that keeps running.
type RtpErrorCode string

// The codes of RtpError.
const (
	// RtpErrNoPort: StartRtpStream found no port pair: the pool is
	// exhausted, or the pair asked for is busy or outside the range. Media
	// fails the start with MediaError{no_port}.
	RtpErrNoPort RtpErrorCode = "no_port"
	// RtpErrNoStream: UpdateRtpStream or SendRtpPacket named a session
	// that has no stream.
	RtpErrNoStream RtpErrorCode = "no_stream"
	// RtpErrBadRequest: a field of a media_to_rtp event is out of range
	// (for SendRtpPacket, reported once per stream).
	RtpErrBadRequest RtpErrorCode = "bad_request"
	// RtpErrNoDestination: a packet had no usable destination (no latched
	// source and no valid signalled address); reported once per stream.
	RtpErrNoDestination RtpErrorCode = "no_destination"
	// RtpErrSocket: a read failed and the stream's reader stopped, or a
	// write failed; reported once per stream.
	RtpErrSocket RtpErrorCode = "socket"
)

// RtpErrorCodes lists every RtpErrorCode.
func RtpErrorCodes() []RtpErrorCode {
	return []RtpErrorCode{RtpErrNoPort, RtpErrNoStream, RtpErrBadRequest, RtpErrNoDestination, RtpErrSocket}
}

// RtpError reports an RTP failure of a session (a socket error, a bad
// packet): ErrorCode classifies it, and Error, written for a person,
// starts with the same code and a colon (as it did before error_code).
type RtpError struct {
	onRTPToMedia
	SessionRef
	Error     string       `json:"error"`
	ErrorCode RtpErrorCode `json:"error_code,omitempty"`
}

// Type returns "RtpError".
func (*RtpError) Type() string { return "RtpError" }

var (
	_ Event     = (*RtpStreamStarted)(nil)
	_ Event     = (*RtpStreamStopped)(nil)
	_ DataPlane = (*RtpPacketReceived)(nil)
	_ Event     = (*RtpStatisticsUpdate)(nil)
	_ Event     = (*RtpError)(nil)
)
