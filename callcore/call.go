package callcore

import "time"

// Call is the call resource of DESIGN.md §5, as the REST API returns it and
// the store keeps it. Times are UTC; AnsweredAt and EndedAt are zero until
// then. The session layer builds it (its snapshots); httpapi and the store
// only read it.
type Call struct {
	ID          string    `json:"id"`
	Direction   Direction `json:"direction"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	State       CallState `json:"state"`
	CreatedAt   time.Time `json:"created_at"`
	AnsweredAt  time.Time `json:"answered_at,omitzero"`
	EndedAt     time.Time `json:"ended_at,omitzero"`
	EndReason   EndReason `json:"end_reason,omitempty"`
	SipStatus   int       `json:"sip_status,omitempty"`
	SipCallID   string    `json:"sip_call_id,omitempty"`
	Held        bool      `json:"held"`
	Media       CallMedia `json:"media"`
	RecordingID string    `json:"recording_id,omitempty"`
	BridgedWith string    `json:"bridged_with,omitempty"`
	ClientState string    `json:"client_state,omitempty"`
}

// CallMedia is the media part of a Call.
type CallMedia struct {
	// Codec is the negotiated codec, e.g. "PCMU".
	Codec string `json:"codec,omitempty"`
	// LocalRTP and RemoteRTP are the "ip:port" of the RTP endpoints.
	LocalRTP  string `json:"local_rtp,omitempty"`
	RemoteRTP string `json:"remote_rtp,omitempty"`
	// Quality is the latest quality estimate; nil before the first one.
	Quality *CallQuality `json:"quality,omitempty"`
}

// CallQuality is a call-quality estimate with the stream's packet counts.
type CallQuality struct {
	MOS             float64 `json:"mos"`
	PacketLossPct   float64 `json:"packet_loss_pct"`
	JitterMS        float64 `json:"jitter_ms"`
	RttMS           float64 `json:"rtt_ms,omitempty"`
	PacketsSent     uint64  `json:"packets_sent"`
	PacketsReceived uint64  `json:"packets_received"`
}
