package events

// ChannelMediaToRTP carries the media layer's stream commands and outgoing
// RTP packets to the RTP layer.
const ChannelMediaToRTP = "media_to_rtp"

type onMediaToRTP struct{}

// Channel returns ChannelMediaToRTP.
func (onMediaToRTP) Channel() string { return ChannelMediaToRTP }

func mediaToRTPEvents() []Event {
	return []Event{&StartRtpStream{}, &StopRtpStream{}, &SendRtpPacket{}, &UpdateRtpStream{}}
}

// StartRtpStream asks RTP to open the stream of a session on LocalPort,
// sending to RemoteAddress:RemotePort with PayloadType for Codec.
type StartRtpStream struct {
	onMediaToRTP
	SessionRef
	LocalPort     int    `json:"local_port"`
	RemoteAddress string `json:"remote_address"`
	RemotePort    int    `json:"remote_port"`
	PayloadType   uint8  `json:"payload_type"`
	Codec         string `json:"codec"`
}

// Type returns "StartRtpStream".
func (*StartRtpStream) Type() string { return "StartRtpStream" }

// StopRtpStream asks RTP to close the stream of a session and release its port.
type StopRtpStream struct {
	onMediaToRTP
	SessionRef
}

// Type returns "StopRtpStream".
func (*StopRtpStream) Type() string { return "StopRtpStream" }

// SendRtpPacket asks RTP to send one packet on the stream of a session.
// A PayloadType other than 0 overrides the stream's own (e.g. 101 for
// RFC 4733 telephone events). It is a data-plane event: it carries no feed
// seq and is streamed only when asked for by name.
type SendRtpPacket struct {
	onMediaToRTP
	SessionRef
	Payload        []byte `json:"payload"`
	Timestamp      uint32 `json:"timestamp"`
	SequenceNumber uint16 `json:"sequence_number"`
	PayloadType    uint8  `json:"payload_type,omitempty"`
	Marker         bool   `json:"marker,omitempty"`
}

// Type returns "SendRtpPacket".
func (*SendRtpPacket) Type() string { return "SendRtpPacket" }

func (*SendRtpPacket) dataPlane() {}

// UpdateRtpStream asks RTP to send the stream of a session to a new remote
// address (after a re-INVITE).
type UpdateRtpStream struct {
	onMediaToRTP
	SessionRef
	RemoteAddress string `json:"remote_address"`
	RemotePort    int    `json:"remote_port"`
}

// Type returns "UpdateRtpStream".
func (*UpdateRtpStream) Type() string { return "UpdateRtpStream" }

var (
	_ Event     = (*StartRtpStream)(nil)
	_ Event     = (*StopRtpStream)(nil)
	_ DataPlane = (*SendRtpPacket)(nil)
	_ Event     = (*UpdateRtpStream)(nil)
)
