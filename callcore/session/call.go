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

// TransferInProgress describes the REFER a call is waiting on.
type TransferInProgress struct {
	Target       string // the Refer-To URI
	TransferType string // events.TransferBlind or events.TransferAttended
}

// Get returns the call resource of id, live or recently terminated, as the
// session last built it, and whether it is known. It is the resource of the
// call's latest CallUpdated, or newer by the step being published.
func (s *Hub) Get(id string) (callcore.Call, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.calls[id]
	if c == nil {
		return callcore.Call{}, false
	}
	return c.view(), true
}

// List returns the resources of every live call and of the recently
// terminated ones (Config.RecentCalls), in the order they were created.
func (s *Hub) List() []callcore.Call {
	s.mu.RLock()
	type entry struct {
		seq  uint64
		call callcore.Call
	}
	out := make([]entry, 0, len(s.calls))
	for _, c := range s.calls {
		out = append(out, entry{c.seq, c.view()})
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	calls := make([]callcore.Call, len(out))
	for i, e := range out {
		calls[i] = e.call
	}
	return calls
}

// Live returns how many calls are not terminated.
func (s *Hub) Live() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.live
}

// call is the state of one call. Its fields are guarded by mu, which the
// handler of the call's events and the call's timers hold while they run;
// bridged changes under Hub.mu instead, because bridging touches two
// calls, and is read without it (announce runs on every step, and must not
// queue behind the admission of new calls). snap is the call resource without the bridge, rebuilt before each
// publish (Get and List read it, and a peer's step reads it to publish
// this call's CallUpdated); published, guarded by pubMu, is the resource
// of the latest CallUpdated.
type call struct {
	mu   sync.Mutex
	snap atomic.Pointer[callcore.Call]

	bridged atomic.Pointer[string] // set under Hub.mu; see bridge

	pubMu     sync.Mutex // held while a CallUpdated of the call is built and published
	published callcore.Call
	announced bool // a CallUpdated was published

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
	quality        *callcore.CallQuality

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

// refresh rebuilds the resource that Get, List and CallUpdated read.
func (c *call) refresh() {
	v := &callcore.Call{
		ID: c.id, Direction: c.dir, From: c.from, To: c.to, State: c.state,
		CreatedAt: c.createdAt, AnsweredAt: c.answeredAt, EndedAt: c.endedAt,
		EndReason: c.endReason, SipStatus: c.sipStatus, SipCallID: c.sipCallID,
		Held: c.localHold || c.remoteHold, ClientState: c.clientState, RecordingID: c.lastRec,
		Media: callcore.CallMedia{Codec: c.codec, LocalRTP: c.localRTP.of(c.localSDP), RemoteRTP: c.remoteRTP.of(c.remoteSDP)},
	}
	if c.quality != nil {
		q := *c.quality
		v.Media.Quality = &q
	}
	c.snap.Store(v)
}

// bridge returns the call this one is bridged with, or "".
func (c *call) bridge() string {
	if p := c.bridged.Load(); p != nil {
		return *p
	}
	return ""
}

// setBridge records the call this one is bridged with ("" for none); Hub.mu
// is held.
func (c *call) setBridge(id string) { c.bridged.Store(&id) }

// endpointCache keeps the RTP endpoint read from an SDP, so that a
// snapshot does not parse an SDP that has not changed.
type endpointCache struct{ sdp, endpoint string }

func (e *endpointCache) of(sdp string) string {
	if sdp != e.sdp {
		e.sdp, e.endpoint = sdp, rtpEndpoint(sdp)
	}
	return e.endpoint
}

// view returns a copy of the resource, sharing nothing a caller could
// change, with the bridge filled in.
func (c *call) view() callcore.Call {
	v := *c.snap.Load()
	v.BridgedWith = c.bridge()
	if v.Media.Quality != nil {
		q := *v.Media.Quality
		v.Media.Quality = &q
	}
	return v
}

// lookup returns the call id, live or recently terminated, or nil.
func (s *Hub) lookup(id string) *call {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.calls[id]
}

// admit registers a new call unless its id is taken (reported as taken) or
// MaxCalls calls are live (reported as full).
func (s *Hub) admit(c *call) (taken, full bool) {
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
func (s *Hub) retire(c *call) {
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
// call's state and emits events; flush then refreshes the resource and
// publishes the events in order, then a CallUpdated for the call (and for
// the peer whose bridge the step changed) when its resource changed, still
// under the call's lock so that the call's outputs are never interleaved.
type step struct {
	s     *Hub
	c     *call
	cause events.ID // the event being handled, for the timers it arms
	out   []events.Event
	peers []*call // other calls whose resource the step changed (a bridge)
}

func (s *Hub) begin(c *call, cause events.ID) *step {
	return &step{s: s, c: c, cause: cause}
}

func (st *step) emit(ev events.Event) { st.out = append(st.out, ev) }

// touch notes that the step changed p's resource too (its bridge), so that
// flush publishes p's CallUpdated.
func (st *step) touch(p *call) {
	if p != st.c && !slices.Contains(st.peers, p) {
		st.peers = append(st.peers, p)
	}
}

// flush publishes what the step emitted, then the CallUpdated of every
// call whose resource changed. It returns the first publish error, wrapped
// with the session and event type.
func (st *step) flush(ctx context.Context) error {
	st.c.refresh()
	for _, ev := range st.out {
		if err := st.s.bus.Publish(ctx, ev); err != nil {
			return &publishError{session: st.c.id, typ: ev.Channel() + "/" + ev.Type(), err: err}
		}
	}
	st.out = st.out[:0]
	if err := st.s.announce(ctx, st.c); err != nil {
		return err
	}
	for _, p := range st.peers {
		if err := st.s.announce(ctx, p); err != nil {
			return err
		}
	}
	st.peers = st.peers[:0]
	return nil
}

// announce publishes c's CallUpdated when its resource differs from the
// one last published. It may run for c from a peer's step as well as from
// c's own: pubMu orders the two, and the resource is read inside it (the
// snapshot only moves forward, the bridge is read after the step that changed it), so
// the latest CallUpdated of a call is always its current resource.
func (s *Hub) announce(ctx context.Context, c *call) error {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	r := c.view()
	if c.announced && sameCall(&r, &c.published) {
		return nil
	}
	ev := &events.CallUpdated{SessionRef: ref(c.id), Call: r}
	if err := s.bus.Publish(ctx, ev); err != nil {
		return &publishError{session: c.id, typ: ev.Channel() + "/" + ev.Type(), err: err}
	}
	c.published, c.announced = r, true
	return nil
}

// sameCall reports whether two resources are equal, quality by value.
func sameCall(a, b *callcore.Call) bool {
	qa, qb := a.Media.Quality, b.Media.Quality
	if (qa == nil) != (qb == nil) || qa != nil && *qa != *qb {
		return false
	}
	x, y := *a, *b
	x.Media.Quality, y.Media.Quality = nil, nil
	return x == y
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
