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

// RtpStreamStopped reports that the stream of a session is closed.
type RtpStreamStopped struct {
	onRTPToMedia
	SessionRef
	Reason string `json:"reason"`
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

// RtpError reports an RTP failure of a session (a socket error, a bad packet).
type RtpError struct {
	onRTPToMedia
	SessionRef
	Error string `json:"error"`
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
