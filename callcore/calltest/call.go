package calltest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"

	"github.com/callbus/callbus/callcore"
)

// Call is one call of a Phone, placed with Phone.Call or Phone.Dial or
// received through Phone.Incoming. It holds the SIP dialog, the phone's side
// of the media negotiation, and everything the phone saw and sent on the
// call. It is safe for concurrent use.
type Call struct {
	p         *Phone
	dir       callcore.Direction
	callID    string
	localTag  string
	transport string // "UDP" or "TCP"
	cfg       callConfig
	rtp       net.PacketConn

	// ctx ends when the call ends or the phone closes; work the call
	// starts itself runs under it.
	ctx    context.Context
	cancel context.CancelFunc

	done        chan struct{} // closed when the call is terminated
	outcome     chan struct{} // outbound: closed when the INVITE got its final response
	provisional chan struct{} // outbound: closed at the first 1xx
	final       chan struct{} // inbound: closed once a final response was sent

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every change
	state      callcore.CallState
	reason     callcore.EndReason
	status     int   // final status of the initial INVITE
	outcomeErr error // outbound: nil when answered
	settled    bool
	finalSent  bool // inbound: a final response is sent or being sent
	cancelling bool // outbound: CANCEL requested

	localAddr, remoteAddr sip.Uri // From/To URIs as this side writes them
	localName, remoteName string  // display names
	remoteTag             string
	target                sip.Uri  // remote target (Contact)
	routes                []string // route set, as Route header values
	cseq                  uint32   // last CSeq this side used
	inviteCSeq            uint32   // CSeq of the initial INVITE
	invite                *sip.Request
	serverTx              sip.ServerTransaction // inbound: the initial INVITE's

	media                 localMedia
	localSDP, remoteSDP   string
	localHold, remoteHold bool
	reinviting            bool
	replaces              string
	referred              *Call

	rx      rtpReceiver    // guarded by mu
	neg     *negotiated    // guarded by mu; see paramsLocked
	tx      rtpSender      // its own locks
	mediaWG sync.WaitGroup // the receive goroutine and the tone; end waits for them

	acks     map[uint32]*sip.Request  // ACKs sent, by CSeq, to repeat on 2xx retransmissions
	pending  map[uint32]chan struct{} // 2xx sent and waiting for their ACK, by CSeq
	received []Message
	sent     []Message
	dtmf     []cseqItem[string]
	refers   []Refer
	notifies []cseqItem[Notify]
}

type cseqItem[T any] struct {
	cseq uint32
	v    T
}

func newCall(p *Phone, dir callcore.Direction, callID, localTag, transport string, rtp net.PacketConn) *Call {
	ctx, cancel := context.WithCancel(p.ep.ctx)
	return &Call{
		p: p, dir: dir, callID: callID, localTag: localTag, transport: transport, rtp: rtp,
		ctx: ctx, cancel: cancel,
		done: make(chan struct{}), outcome: make(chan struct{}),
		provisional: make(chan struct{}), final: make(chan struct{}),
		changed: make(chan struct{}),
		state:   callcore.StateInitiating,
		tx:      newRTPSender(),
		acks:    map[uint32]*sip.Request{},
		pending: map[uint32]chan struct{}{},
	}
}

// ID returns the call's SIP Call-ID.
func (c *Call) ID() string { return c.callID }

// Direction returns callcore.Outbound for a call this phone placed and
// callcore.Inbound for one it received.
func (c *Call) Direction() callcore.Direction { return c.dir }

// Transport returns "UDP" or "TCP".
func (c *Call) Transport() string { return c.transport }

// LocalTag returns this side's dialog tag.
func (c *Call) LocalTag() string { return c.localTag }

// RemoteTag returns the far end's dialog tag, or "" before it is known.
func (c *Call) RemoteTag() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remoteTag
}

func (c *Call) remoteTagIs(tag string) bool { return c.RemoteTag() == tag }

// Invite returns the initial INVITE, as sent or as received.
func (c *Call) Invite() Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.received {
		if m.IsRequest() && m.Method == "INVITE" && m.CSeq() == c.inviteCSeq {
			return m
		}
	}
	for _, m := range c.sent {
		if m.IsRequest() && m.Method == "INVITE" && m.CSeq() == c.inviteCSeq {
			return m
		}
	}
	return Message{}
}

// State returns the call's state: initiating until a 180/183 is sent or
// received, ringing, active once answered (inbound: once the ACK arrived),
// on_hold while either side holds, terminating while our BYE is pending,
// terminated.
func (c *Call) State() callcore.CallState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Done returns a channel closed when the call is terminated.
func (c *Call) Done() <-chan struct{} { return c.done }

// EndedBy returns why the call ended, from this phone's point of view:
// local_hangup when it sent the BYE, remote_hangup when it received one;
// for a placed call that failed, busy (486, 600), rejected (603, 403),
// no_answer (480, 408), cancelled (487), timeout (no final response),
// failed (any other); for a received call, rejected when it rejected it,
// cancelled after a CANCEL, failed when no ACK came (a BYE was sent);
// transferred when an INVITE with Replaces took its place; failed when the
// phone closed. It is "" while the call is live.
func (c *Call) EndedBy() callcore.EndReason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// Status returns the final status of the initial INVITE (200 when
// answered, 486…), or 0 before there is one.
func (c *Call) Status() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// LocalSDP returns the last session description this side sent.
func (c *Call) LocalSDP() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.localSDP
}

// RemoteSDP returns the last session description the far end sent.
func (c *Call) RemoteSDP() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remoteSDP
}

// RTPAddr returns the local address of the call's RTP socket, the one its
// SDP advertises and its RTP leaves from.
func (c *Call) RTPAddr() string { return c.rtp.LocalAddr().String() }

// Replaces returns the Replaces header of an incoming INVITE, or "".
func (c *Call) Replaces() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replaces
}

// Received returns every SIP message the phone received on this call, in
// arrival order, retransmissions included.
func (c *Call) Received() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.received)
}

// Sent returns every SIP message the phone itself built and sent on this
// call (not the 200/487 sipgo sends for a CANCEL), retransmissions included.
func (c *Call) Sent() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sent)
}

// CountReceived returns how many received messages match m.
func (c *Call) CountReceived(m Match) int { return countOf(c.Received(), m) }

// CountSent returns how many sent messages match m.
func (c *Call) CountSent(m Match) int { return countOf(c.Sent(), m) }

func countOf(ms []Message, m Match) int {
	n := 0
	for _, x := range ms {
		if m(x) {
			n++
		}
	}
	return n
}

// WaitReceived returns the first received message that matches m, waiting
// for it if needed. It returns ErrCallEnded when the call ended without
// one, and ctx's error when ctx ends first.
func (c *Call) WaitReceived(ctx context.Context, m Match) (Message, error) {
	var found Message
	err := c.wait(ctx, "message", func() (bool, error) {
		for _, x := range c.received {
			if m(x) {
				found = x
				return true, nil
			}
		}
		return false, c.endedErrLocked()
	})
	return found, err
}

// WaitState waits until the call is in state s. It returns ErrCallEnded
// when the call ends first (unless s is terminated).
func (c *Call) WaitState(ctx context.Context, s callcore.CallState) error {
	return c.wait(ctx, "state "+string(s), func() (bool, error) {
		if c.state == s {
			return true, nil
		}
		return false, c.endedErrLocked()
	})
}

// WaitEnded waits until the call is terminated and returns EndedBy.
func (c *Call) WaitEnded(ctx context.Context) (callcore.EndReason, error) {
	select {
	case <-c.done:
		return c.EndedBy(), nil
	case <-ctx.Done():
		return "", fmt.Errorf("calltest: call %s: wait for end (state %s): %w", c.callID, c.State(), ctx.Err())
	}
}

// WaitAnswer waits for the final response to an outbound call's INVITE:
// nil once answered (and ACKed), a *StatusError for a non-2xx final
// response, ErrNoAnswer when the INVITE timed out. It returns
// ErrInvalidState for an inbound call.
func (c *Call) WaitAnswer(ctx context.Context) error {
	if c.dir != callcore.Outbound {
		return ErrInvalidState
	}
	select {
	case <-c.outcome:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.outcomeErr
	case <-ctx.Done():
		return fmt.Errorf("calltest: call %s: wait for answer (state %s): %w", c.callID, c.State(), ctx.Err())
	}
}

// DTMF returns the digits received in SIP INFO so far, in CSeq order.
func (c *Call) DTMF() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dtmfLocked()
}

func (c *Call) dtmfLocked() string {
	var b strings.Builder
	for _, d := range c.dtmf {
		b.WriteString(d.v)
	}
	return b.String()
}

// WaitDTMF waits until at least n digits were received in SIP INFO and
// returns the first n.
func (c *Call) WaitDTMF(ctx context.Context, n int) (string, error) {
	var got string
	err := c.wait(ctx, fmt.Sprintf("%d DTMF digits", n), func() (bool, error) {
		if d := c.dtmfLocked(); len(d) >= n {
			got = d[:n]
			return true, nil
		}
		return false, c.endedErrLocked()
	})
	return got, err
}

// wait evaluates cond under the call's lock each time the call changes,
// until it reports done or an error, or ctx ends.
func (c *Call) wait(ctx context.Context, what string, cond func() (bool, error)) error {
	for {
		c.mu.Lock()
		ok, err := cond()
		ch, state := c.changed, c.state
		c.mu.Unlock()
		if ok || err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("calltest: call %s: wait for %s (state %s): %w", c.callID, what, state, ctx.Err())
		}
	}
}

func (c *Call) endedErrLocked() error {
	if c.state == callcore.StateTerminated {
		return fmt.Errorf("calltest: call %s (%s): %w", c.callID, c.reason, ErrCallEnded)
	}
	return nil
}

func isEnded(err error) bool { return errors.Is(err, ErrCallEnded) }

func (c *Call) ended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == callcore.StateTerminated
}

func (c *Call) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// record keeps a message the phone received or sent on this call.
func (c *Call) record(received bool, m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if received {
		c.received = append(c.received, m)
	} else {
		c.sent = append(c.sent, m)
	}
	c.notifyLocked()
}

func (c *Call) setState(s callcore.CallState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != callcore.StateTerminated {
		c.state = s
		c.notifyLocked()
	}
}

// activeStateLocked is active or on_hold, depending on who holds.
func (c *Call) activeStateLocked() callcore.CallState {
	if c.localHold || c.remoteHold {
		return callcore.StateOnHold
	}
	return callcore.StateActive
}

// end terminates the call with reason, once; it reports whether it did.
func (c *Call) end(reason callcore.EndReason) bool {
	c.mu.Lock()
	if c.state == callcore.StateTerminated {
		c.mu.Unlock()
		return false
	}
	c.state, c.reason = callcore.StateTerminated, reason
	close(c.done)
	c.notifyLocked()
	c.mu.Unlock()
	c.cancel()
	c.rtp.Close()    // stops the receive goroutine
	c.mediaWG.Wait() // the tone stops with ctx
	c.settle(fmt.Errorf("calltest: call %s (%s): %w", c.callID, reason, ErrCallEnded))
	return true
}

// settle records the outcome of an outbound INVITE, once.
func (c *Call) settle(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.settled {
		return
	}
	c.settled, c.outcomeErr = true, err
	close(c.outcome)
	c.notifyLocked()
}
