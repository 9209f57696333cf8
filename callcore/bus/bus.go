// Package bus is the global event coordinator of callbus (DESIGN.md §2):
// the only way the layers of the stack talk to each other.
//
// Publish delivers an event to every subscriber of its channel. Each
// subscriber handles the events of one key (a session, a Call-ID) in publish
// order and the events of different keys in parallel, on workers of its own;
// a handler that blocks holds up its own key only. Queues are bounded: a full
// subscriber makes Publish wait until its ctx ends. Taps observe every event
// without ever slowing a publisher, and are told the exact seq range they
// missed when they fall behind.
package bus

import (
	"context"
	"errors"
	"log/slog"
	"math/bits"
	"time"

	"github.com/callbus/callbus/callcore/events"
)

// Bus is the coordinator's interface. Memory implements it in one process;
// the NATS implementation spans nodes.
type Bus interface {
	// Node returns the id of the node this bus publishes as.
	Node() string
	// Publish stamps ev with an envelope and delivers it to every subscriber
	// of its channel. It waits while a subscriber's queue is full and returns
	// an error wrapping ErrBackpressure and ctx's error if ctx ends first.
	// It returns ErrEmptyKey for an event without a key, ErrNilEvent for
	// nil, and ErrClosed once the bus has closed.
	Publish(ctx context.Context, ev events.Event) error
	// Request publishes cmd like Publish and waits for the reply of the one
	// subscriber that serves cmd's channel. Errors are *callcore.Error:
	// unavailable when no server is subscribed or ctx ends first, and
	// whatever code the server answered with.
	Request(ctx context.Context, cmd events.Event) (*events.CommandResult, error)
	// Subscribe starts delivering the events of s.Channels to s.
	Subscribe(s Subscriber) (Subscription, error)
	// Tap starts observing the bus; see TapConfig.
	Tap(cfg TapConfig) (Tap, error)
	// LastSeq returns the seq of the newest control-plane event.
	LastSeq() uint64
	// Close drains in-flight events until ctx ends, then stops every
	// goroutine the bus owns. It returns a *DrainError when events were left
	// undelivered or handlers did not return.
	Close(ctx context.Context) error
}

// Handler handles one event delivered to a subscriber. ctx carries the
// event's id as the cause of anything published with it, and is cancelled
// when the bus stops. Like an http.Request's context, ctx is valid only
// until the handler returns (the bus reuses it, so a hop allocates nothing):
// a goroutine that publishes later takes WithCause(itsOwnCtx, env.ID).
// An error is counted and logged; it never stops the bus.
type Handler func(ctx context.Context, env events.Envelope, ev events.Event) error

// Server answers one command sent with Request. Return a *callcore.Error to
// answer with a code (not_found, invalid_state…); any other error is counted
// as a handler failure and reaches the requester as internal.
type Server func(ctx context.Context, env events.Envelope, cmd events.Event) (*events.CommandResult, error)

// Subscriber describes one consumer of the bus.
type Subscriber struct {
	// Name identifies the subscriber in logs and metrics ("session", "store").
	Name string
	// Channels lists the channels delivered to this subscriber. Events of
	// one key are ordered across all of them, so a layer that subscribes to
	// several channels sees one call's events one at a time.
	Channels []string
	// Handle receives the published events.
	Handle Handler
	// Serve, when set, makes this subscriber the server of Requests on its
	// Channels; at most one subscriber serves a channel. A command that was
	// published rather than requested goes to Handle, or to Serve with the
	// reply dropped when Handle is nil.
	Serve Server
	// QueueSize bounds the events queued for this subscriber; 0 takes
	// Config.QueueSize.
	QueueSize int
	// MaxWorkers bounds how many blocked keys are handled apart at once;
	// 0 takes Config.MaxWorkers.
	MaxWorkers int
}

// Subscription is a live subscription.
type Subscription interface {
	// Unsubscribe stops new deliveries, drains what is queued until ctx
	// ends and stops the subscriber's workers. It is idempotent.
	Unsubscribe(ctx context.Context) error
}

// TapConfig describes an observer of the bus.
type TapConfig struct {
	// Name identifies the tap in metrics ("ws", "store").
	Name string
	// Buffer bounds the records held for a slow reader; past it the tap is
	// told of a gap instead. 0 takes Config.TapBuffer.
	Buffer int
	// DataPlane asks for the RTP packet events too. They carry no seq.
	DataPlane bool
	// Replay asks for the retained control-plane events with seq > Since
	// before the live ones, with no gap and no duplicate between the two.
	Replay bool
	Since  uint64
}

// Tap observes every event published on the bus, in seq order.
type Tap interface {
	// Next returns the next record, waiting until one arrives or ctx ends.
	// It returns ErrClosed after Close or once the bus has closed and every
	// record before that has been read.
	Next(ctx context.Context) (Record, error)
	// Close stops the tap. It is idempotent.
	Close() error
}

// Record is what a tap reads: an event with its envelope, or a gap.
type Record struct {
	Envelope events.Envelope
	Event    events.Event
	// Gap is set, and Event nil, when events were missed.
	Gap *Gap

	frames *frameCache // where Frame shares the encoded event
}

// Gap reasons.
const (
	GapLagging = "lagging" // the reader did not keep up with the bus
	GapHistory = "history" // a replay asked for events no longer retained
)

// Gap names the events a tap missed: the control-plane seqs FromSeq through
// ToSeq inclusive (both 0 when only RTP packet events were missed), and
// Dropped, the count of all missed events including RTP packet events.
type Gap struct {
	FromSeq uint64 `json:"from_seq"`
	ToSeq   uint64 `json:"to_seq"`
	Dropped uint64 `json:"dropped"`
	Reason  string `json:"reason"`
}

// Config configures a Memory bus. The zero value works.
type Config struct {
	// Node is this node's id, stamped on every envelope. Default "local".
	Node string
	// QueueSize bounds each subscriber's queued events. Default 8192.
	QueueSize int
	// MaxWorkers bounds how many blocked keys each subscriber handles
	// apart at once (see BlockedAfter). Default 4096.
	MaxWorkers int
	// Shards is how many runner goroutines each subscriber has; keys are
	// spread over them by hash. Rounded up to a power of two. Default 16.
	Shards int
	// BlockedAfter is how long a handler may run before its key is set
	// apart so that the shard's other keys go on. Default 10ms.
	BlockedAfter time.Duration
	// TapBuffer bounds each tap's unread records. Default 4096.
	TapBuffer int
	// History is how many control-plane events are retained for replay.
	// Default 16384.
	History int
	// StartSeq is the seq of the last event of a previous run; new events
	// are numbered from StartSeq+1 so that seqs are never reused.
	StartSeq uint64
	// StopGrace is how long Close waits, after its ctx ended, for running
	// handlers to return. Default 2s.
	StopGrace time.Duration
	// Logger receives handler errors and panics. Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Node == "" {
		c.Node = "local"
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 8192
	}
	if c.MaxWorkers <= 0 {
		c.MaxWorkers = 4096
	}
	if c.Shards <= 0 {
		c.Shards = 16
	}
	c.Shards = 1 << bits.Len(uint(c.Shards-1))
	if c.BlockedAfter <= 0 {
		c.BlockedAfter = 10 * time.Millisecond
	}
	if c.TapBuffer <= 0 {
		c.TapBuffer = 4096
	}
	if c.History <= 0 {
		c.History = 16384
	}
	if c.StopGrace <= 0 {
		c.StopGrace = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// The bus's sentinel errors.
var (
	ErrClosed          = errors.New("bus: closed")
	ErrNilEvent        = errors.New("bus: nil event")
	ErrEmptyKey        = errors.New("bus: event has an empty key")
	ErrBackpressure    = errors.New("bus: subscriber queue full")
	ErrNoServer        = errors.New("bus: no server subscribed")
	ErrDuplicateServer = errors.New("bus: channel already has a server")
	ErrBadSubscriber   = errors.New("bus: bad subscriber")
	ErrSinceAhead      = errors.New("bus: since is ahead of the newest seq")
)
