package session

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/callcore/sdp"
)

// Call is a read-only snapshot of a call: the call resource of DESIGN.md §5
// as far as the session layer knows it (JSON names as in the resource),
// plus a few fields for in-process readers (httpapi, ivr) that are not
// part of it. Times are UTC; AnsweredAt and EndedAt are zero until then.
// Held is true when either side holds the call (HeldBy says which).
type Call struct {
	ID          string              `json:"id"`
	Direction   callcore.Direction  `json:"direction"`
	From        string              `json:"from"`
	To          string              `json:"to"`
	State       callcore.CallState  `json:"state"`
	CreatedAt   time.Time           `json:"created_at"`
	AnsweredAt  time.Time           `json:"answered_at,omitzero"`
	EndedAt     time.Time           `json:"ended_at,omitzero"`
	EndReason   callcore.EndReason  `json:"end_reason,omitempty"`
	SipStatus   int                 `json:"sip_status,omitempty"`
	SipCallID   string              `json:"sip_call_id,omitempty"`
	Held        bool                `json:"held"`
	Media       Media               `json:"media"`
	RecordingID string              `json:"recording_id,omitempty"` // the latest recording
	BridgedWith string              `json:"bridged_with,omitempty"`
	ClientState string              `json:"client_state,omitempty"`
	WebhookURL  string              `json:"-"` // for the IVR; not part of the resource
	HeldBy      []string            `json:"-"` // events.ByLocal and/or events.ByRemote
	TransferOf  string              `json:"-"` // the call whose REFER placed this one
	Headers     events.Headers      `json:"-"` // the INVITE's headers (inbound) or the extra ones (outbound)
	Transfer    *TransferInProgress `json:"-"`

	seq uint64 // creation order, for List
}

// Media is the media part of a Call.
type Media struct {
	// Codec is the negotiated codec, e.g. "PCMU".
	Codec string `json:"codec,omitempty"`
	// LocalRTP and RemoteRTP are the "ip:port" of the RTP endpoints, read
	// from the local and remote SDP.
	LocalRTP  string `json:"local_rtp,omitempty"`
	RemoteRTP string `json:"remote_rtp,omitempty"`
	// Quality is the latest MediaQualityUpdate; nil before the first one.
	Quality *Quality `json:"quality,omitempty"`
}

// Quality is a call-quality estimate, from the latest MediaQualityUpdate.
type Quality struct {
	MOS             float64   `json:"mos"`
	PacketLossPct   float64   `json:"packet_loss_pct"`
	JitterMS        float64   `json:"jitter_ms"`
	RttMS           float64   `json:"rtt_ms,omitempty"`
	PacketsSent     uint64    `json:"packets_sent"`
	PacketsReceived uint64    `json:"packets_received"`
	UpdatedAt       time.Time `json:"-"`
}

// TransferInProgress describes the REFER a call is waiting on.
type TransferInProgress struct {
	Target       string // the Refer-To URI
	TransferType string // events.TransferBlind or events.TransferAttended
}

// Get returns a snapshot of the call id, live or recently terminated, and
// whether it is known.
func (s *Sessions) Get(id string) (Call, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.calls[id]
	if c == nil {
		return Call{}, false
	}
	return c.view(), true
}

// List returns snapshots of every live call and of the recently terminated
// ones (Config.RecentCalls), in the order they were created.
func (s *Sessions) List() []Call {
	s.mu.RLock()
	out := make([]Call, 0, len(s.calls))
	for _, c := range s.calls {
		out = append(out, c.view())
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Call) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// Live returns how many calls are not terminated.
func (s *Sessions) Live() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.live
}

// call is the state of one call. Its fields are guarded by mu, which the
// handler of the call's events and the call's timers hold while they run;
// bridged is guarded by Sessions.mu instead, because bridging touches two
// calls. snap is what Get and List read, refreshed before each publish.
type call struct {
	mu   sync.Mutex
	snap atomic.Pointer[Call]

	bridged string // guarded by Sessions.mu

	id          string
	seq         uint64 // creation order, set by admit
	dir         callcore.Direction
	from, to    string
	state       callcore.CallState
	createdAt   time.Time
	answeredAt  time.Time
	endedAt     time.Time
	endReason   callcore.EndReason
	endMessage  string
	sipStatus   int
	sipCallID   string
	clientState string
	webhookURL  string
	headers     events.Headers
	offer       string        // inbound: the INVITE's SDP offer
	ringTimeout time.Duration // outbound: from ring_timeout_s or the config

	ringingSeen bool // CallRinging published
	answering   bool // inbound: StartMediaStream for the answer sent
	accepted    bool // inbound: AcceptCall sent
	inviteSent  bool // outbound: InitiateCall sent

	mediaRequested bool // StartMediaStream sent and not failed
	mediaUp        bool // MediaStreamStarted received
	mediaDone      bool // MediaStreamStopped received
	stopSent       bool // StopMediaStream sent
	codec          string
	localSDP       string
	remoteSDP      string
	localRTP       endpointCache
	remoteRTP      endpointCache
	quality        *Quality

	dialogDone bool // CallTerminated received, or the INVITE rejected, or no dialog ever

	localHold  bool
	remoteHold bool
	pending    pendingOp     // our re-INVITE in flight
	prevDir    sdp.Direction // the direction to restore when it fails

	transfer   *TransferInProgress // our REFER in flight
	transferOf string              // the call whose REFER placed this one
	progressed bool                // the final TransferProgress is sent

	plays   []play
	rec     *recording
	lastRec string // id of the latest recording, reported in the snapshot

	ringTimer     *timer
	recTimer      *timer
	teardownTimer *timer
}

// pendingOp is a re-INVITE of ours waiting for its answer.
type pendingOp int

const (
	opNone pendingOp = iota
	opHold
	opResume
)

// live reports whether the call is neither terminating nor terminated.
func (c *call) live() bool {
	return c.state != callcore.StateTerminating && c.state != callcore.StateTerminated
}

// settled returns the state of an established call when nothing is in flight.
func (c *call) settled() callcore.CallState {
	if c.localHold || c.remoteHold {
		return callcore.StateOnHold
	}
	return callcore.StateActive
}

// refresh rebuilds the snapshot that Get and List read.
func (c *call) refresh() {
	v := &Call{
		ID: c.id, seq: c.seq, Direction: c.dir, From: c.from, To: c.to, State: c.state,
		CreatedAt: c.createdAt, AnsweredAt: c.answeredAt, EndedAt: c.endedAt,
		EndReason: c.endReason, SipStatus: c.sipStatus, SipCallID: c.sipCallID,
		Held: c.localHold || c.remoteHold, ClientState: c.clientState,
		WebhookURL: c.webhookURL, TransferOf: c.transferOf, Headers: c.headers,
		Media: Media{Codec: c.codec, LocalRTP: c.localRTP.of(c.localSDP), RemoteRTP: c.remoteRTP.of(c.remoteSDP)},
	}
	if c.quality != nil {
		q := *c.quality
		v.Media.Quality = &q
	}
	if c.localHold {
		v.HeldBy = append(v.HeldBy, events.ByLocal)
	}
	if c.remoteHold {
		v.HeldBy = append(v.HeldBy, events.ByRemote)
	}
	v.RecordingID = c.lastRec
	if c.transfer != nil {
		t := *c.transfer
		v.Transfer = &t
	}
	c.snap.Store(v)
}

// endpointCache keeps the RTP endpoint read from an SDP, so that a
// snapshot does not parse an SDP that has not changed.
type endpointCache struct{ sdp, endpoint string }

func (e *endpointCache) of(sdp string) string {
	if sdp != e.sdp {
		e.sdp, e.endpoint = sdp, rtpEndpoint(sdp)
	}
	return e.endpoint
}

// view returns a copy of the snapshot, sharing nothing a caller could
// change, with the bridge filled in; Sessions.mu is held.
func (c *call) view() Call {
	v := *c.snap.Load()
	v.BridgedWith = c.bridged
	if v.Media.Quality != nil {
		q := *v.Media.Quality
		v.Media.Quality = &q
	}
	if v.Transfer != nil {
		t := *v.Transfer
		v.Transfer = &t
	}
	v.HeldBy = slices.Clone(v.HeldBy)
	v.Headers = slices.Clone(v.Headers)
	return v
}

// lookup returns the call id, live or recently terminated, or nil.
func (s *Sessions) lookup(id string) *call {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.calls[id]
}

// admit registers a new call unless its id is taken (reported as taken) or
// MaxCalls calls are live (reported as full).
func (s *Sessions) admit(c *call) (taken, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls[c.id] != nil {
		return true, false
	}
	if s.cfg.MaxCalls > 0 && s.live >= s.cfg.MaxCalls {
		return false, true
	}
	s.created++
	c.seq = s.created
	c.refresh()
	s.calls[c.id] = c
	s.live++
	return false, false
}

// retire moves a terminated call to the ring of recent calls, forgetting
// the oldest one there.
func (s *Sessions) retire(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live--
	if old := s.ring[s.next]; old != "" {
		delete(s.calls, old)
	}
	s.ring[s.next] = c.id
	s.next = (s.next + 1) % len(s.ring)
}

// step is one transition of a call: the handler (or timer) changes the
// call's state and emits events; flush then refreshes the snapshots and
// publishes the events in order, still under the call's lock so that the
// call's outputs are never interleaved.
type step struct {
	s     *Sessions
	c     *call
	cause events.ID // the event being handled, for the timers it arms
	out   []events.Event
}

func (s *Sessions) begin(c *call, cause events.ID) *step {
	return &step{s: s, c: c, cause: cause}
}

func (st *step) emit(ev events.Event) { st.out = append(st.out, ev) }

// flush publishes what the step emitted. It returns the first publish
// error, wrapped with the session and event type.
func (st *step) flush(ctx context.Context) error {
	st.c.refresh()
	for _, ev := range st.out {
		if err := st.s.bus.Publish(ctx, ev); err != nil {
			return &publishError{session: st.c.id, typ: ev.Channel() + "/" + ev.Type(), err: err}
		}
	}
	st.out = st.out[:0]
	return nil
}

type publishError struct {
	session, typ string
	err          error
}

func (e *publishError) Error() string {
	return "session " + e.session + ": publish " + e.typ + ": " + e.err.Error()
}
func (e *publishError) Unwrap() error { return e.err }

func ref(id string) events.SessionRef { return events.SessionRef{SessionID: id} }

// Resource returns the call resource of DESIGN.md §5: the snapshot without
// the fields for in-process readers.
func (v Call) Resource() callcore.Call {
	r := callcore.Call{
		ID: v.ID, Direction: v.Direction, From: v.From, To: v.To, State: v.State,
		CreatedAt: v.CreatedAt, AnsweredAt: v.AnsweredAt, EndedAt: v.EndedAt,
		EndReason: v.EndReason, SipStatus: v.SipStatus, SipCallID: v.SipCallID,
		Held: v.Held, RecordingID: v.RecordingID, BridgedWith: v.BridgedWith, ClientState: v.ClientState,
		Media: callcore.CallMedia{Codec: v.Media.Codec, LocalRTP: v.Media.LocalRTP, RemoteRTP: v.Media.RemoteRTP},
	}
	if q := v.Media.Quality; q != nil {
		r.Media.Quality = &callcore.CallQuality{MOS: q.MOS, PacketLossPct: q.PacketLossPct,
			JitterMS: q.JitterMS, RttMS: q.RttMS, PacketsSent: q.PacketsSent, PacketsReceived: q.PacketsReceived}
	}
	return r
}
