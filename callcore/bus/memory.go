package bus

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// Memory is the in-process bus. Create it with New; it is safe for
// concurrent use.
type Memory struct {
	cfg  Config
	node string
	log  logger

	idHi uint64
	_    cacheLinePad
	idLo atomic.Uint64 // written by every publish: alone on its line
	_    cacheLinePad

	// routes maps an event's dynamic Go type to its route. It is replaced,
	// never mutated, so Publish reads it without a lock.
	routes   atomic.Pointer[map[reflect.Type]*route]
	routesMu sync.Mutex
	rcache   [512]atomic.Pointer[route]
	seed     maphash.Seed // for the shard of a key, shared by subscribers

	mu       sync.Mutex // guards channels, subs and taps
	channels map[string]*channelState
	subs     []*subscriber
	taps     map[string]*tapStats

	seq    sequencer
	coarse coarseClock

	tickOnce sync.Once
	tickOn   atomic.Bool
	tickStop chan struct{}
	tickDone chan struct{}

	state    atomic.Int32 // stateOpen, stateDraining, stateClosed
	baseCtx  context.Context
	cancel   context.CancelFunc
	closeMu  sync.Mutex
	closeErr error
	closed   bool
}

const (
	stateOpen int32 = iota
	stateDraining
	stateClosed
)

var _ Bus = (*Memory)(nil)

// channelState holds the subscribers of one channel. Its lists are
// replaced on change so that Publish reads them without a lock.
type channelState struct {
	name   string
	subs   atomic.Pointer[[]*subscriber]
	server atomic.Pointer[subscriber]
}

// route is everything Publish needs to know about one event type.
type route struct {
	tab       uintptr // the type word of an events.Event holding this type
	ch        *channelState
	typ       string
	dataPlane bool
	stats     *typeStats
}

// New returns a bus configured by cfg. It starts no goroutine: each
// subscriber's workers start with Subscribe. It returns an error only when
// the system's random source fails.
func New(cfg Config) (*Memory, error) {
	cfg = cfg.withDefaults()
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("bus: seed event ids: %w", err)
	}
	m := &Memory{
		cfg:      cfg,
		node:     cfg.Node,
		log:      logger{cfg.Logger},
		idHi:     binary.BigEndian.Uint64(seed[:]) | 1, // never zero, so no ID is zero
		seed:     maphash.MakeSeed(),
		channels: make(map[string]*channelState),
		tickStop: make(chan struct{}),
		tickDone: make(chan struct{}),
	}
	m.baseCtx, m.cancel = context.WithCancel(context.Background())
	m.seq.init(cfg.History, cfg.StartSeq, &m.coarse, cfg.Node)
	empty := map[reflect.Type]*route{}
	m.routes.Store(&empty)
	return m, nil
}

// Node returns the node id stamped on every envelope.
func (m *Memory) Node() string { return m.node }

// LastSeq returns the seq of the newest control-plane event.
func (m *Memory) LastSeq() uint64 { return m.seq.last() }

func (m *Memory) channel(name string) *channelState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.channelLocked(name)
}

func (m *Memory) channelLocked(name string) *channelState {
	c := m.channels[name]
	if c == nil {
		c = &channelState{name: name}
		c.subs.Store(&[]*subscriber{})
		m.channels[name] = c
	}
	return c
}

// route returns the route of ev's Go type, building it on first sight.
//
// The fast path looks the type up in a direct-mapped cache keyed by the
// interface's type word, read with unsafe: a map keyed by reflect.Type
// costs 40 ns, a third of a channel hop. A miss or a collision takes the
// map, which is authoritative.
func (m *Memory) route(ev events.Event) *route {
	tab := *(*uintptr)(unsafe.Pointer(&ev)) // iface.tab: unique per concrete type
	slot := &m.rcache[(tab>>4)%uintptr(len(m.rcache))]
	if r := slot.Load(); r != nil && r.tab == tab {
		return r
	}
	r := m.routeSlow(ev)
	if r.tab == tab {
		slot.Store(r)
	}
	return r
}

func (m *Memory) routeSlow(ev events.Event) *route {
	t := reflect.TypeOf(ev)
	if r := (*m.routes.Load())[t]; r != nil {
		return r
	}
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	old := *m.routes.Load()
	if r := old[t]; r != nil {
		return r
	}
	r := &route{
		tab:       *(*uintptr)(unsafe.Pointer(&ev)),
		ch:        m.channel(ev.Channel()),
		typ:       ev.Type(),
		dataPlane: events.IsDataPlane(ev),
	}
	r.stats = newTypeStats(r.ch.name, r.typ)
	next := make(map[reflect.Type]*route, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[t] = r
	m.routes.Store(&next)
	return r
}

func (m *Memory) nextID() events.ID {
	return events.ID{Hi: m.idHi, Lo: m.idLo.Add(1)}
}

// stamp checks ev and fills it in: id, time, cause and, on the control
// plane, seq; the taps get their copy here. It returns the hash of ev's
// key, which picks each subscriber's shard. The item is filled in place:
// it is copied once, into the shard's channel.
func (m *Memory) stamp(ctx context.Context, ev events.Event, it *item) (uint64, error) {
	if ev == nil {
		return 0, ErrNilEvent
	}
	r := m.route(ev)
	key := ev.Key()
	if key == "" {
		return 0, fmt.Errorf("%w: %s/%s", ErrEmptyKey, r.ch.name, r.typ)
	}
	if m.state.Load() == stateClosed {
		return 0, ErrClosed
	}
	it.ev, it.r, it.id, it.cause = ev, r, m.nextID(), CauseFrom(ctx)
	if r.dataPlane {
		it.at = m.coarse.nanos()
		if m.seq.dataTaps.Load() > 0 {
			m.seq.observe(it)
		}
	} else {
		m.seq.observe(it) // sets seq and time under its lock
	}
	return maphash.String(m.seed, key), nil
}

// Publish delivers ev to every subscriber of its channel; see Bus.
func (m *Memory) Publish(ctx context.Context, ev events.Event) error {
	var it item
	hash, err := m.stamp(ctx, ev, &it)
	if err != nil {
		return err
	}
	return m.deliver(ctx, &it, hash, nil)
}

// deliver queues it to every subscriber of its channel except skip, then
// counts it as published: Close's drain relies on the count coming last.
func (m *Memory) deliver(ctx context.Context, it *item, hash uint64, skip *subscriber) error {
	var err error
	for _, s := range *it.r.ch.subs.Load() {
		if s == skip {
			continue
		}
		if err = s.enqueue(ctx, it, hash); err != nil {
			break
		}
	}
	it.r.stats.published.Add(1)
	return err
}

// completed sums the publishes that have finished queuing.
func (m *Memory) completed() uint64 {
	var n uint64
	for _, r := range *m.routes.Load() {
		n += r.stats.published.Load()
	}
	return n
}

// Request publishes cmd and waits for its server's reply; see Bus.
func (m *Memory) Request(ctx context.Context, cmd events.Event) (*events.CommandResult, error) {
	if cmd == nil {
		return nil, ErrNilEvent
	}
	r := m.route(cmd)
	srv := r.ch.server.Load()
	if srv == nil {
		return nil, &callcore.Error{Code: callcore.CodeUnavailable,
			Message: fmt.Sprintf("nothing serves %s/%s", r.ch.name, r.typ), Err: ErrNoServer}
	}
	var it item
	hash, err := m.stamp(ctx, cmd, &it)
	if err != nil {
		return nil, unavailable(err)
	}
	rep := make(chan reply, 1)
	req := it
	req.ctl = &control{reply: rep}
	if err := srv.enqueue(ctx, &req, hash); err != nil {
		it.r.stats.published.Add(1)
		return nil, unavailable(err)
	}
	if err := m.deliver(ctx, &it, hash, srv); err != nil {
		return nil, unavailable(err)
	}
	select {
	case out := <-rep:
		return out.res, out.err
	case <-ctx.Done():
		return nil, &callcore.Error{Code: callcore.CodeUnavailable,
			Message: fmt.Sprintf("no reply to %s %s", r.typ, it.id), Err: ctx.Err()}
	}
}

func unavailable(err error) error {
	return &callcore.Error{Code: callcore.CodeUnavailable, Message: "bus", Err: err}
}

// reply is a server's answer on its way back to Request.
type reply struct {
	res *events.CommandResult
	err error
}

// Subscribe starts delivering the events of s.Channels to s; see Bus.
// It returns ErrBadSubscriber for a subscriber without a name, channels or
// handler, ErrDuplicateServer when a channel already has a server, and
// ErrClosed after Close.
func (m *Memory) Subscribe(sc Subscriber) (Subscription, error) {
	if sc.Name == "" || len(sc.Channels) == 0 || (sc.Handle == nil && sc.Serve == nil) {
		return nil, fmt.Errorf("%w: %q needs a name, channels and a Handle or Serve func", ErrBadSubscriber, sc.Name)
	}
	if sc.QueueSize <= 0 {
		sc.QueueSize = m.cfg.QueueSize
	}
	if sc.MaxWorkers <= 0 {
		sc.MaxWorkers = m.cfg.MaxWorkers
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state.Load() != stateOpen {
		return nil, ErrClosed
	}
	for _, o := range m.subs {
		if o.name == sc.Name {
			return nil, fmt.Errorf("%w: name %q is taken", ErrBadSubscriber, sc.Name)
		}
	}
	seen := map[string]bool{}
	for _, name := range sc.Channels {
		if seen[name] {
			return nil, fmt.Errorf("%w: %q lists channel %q twice", ErrBadSubscriber, sc.Name, name)
		}
		seen[name] = true
		if sc.Serve != nil && m.channelLocked(name).server.Load() != nil {
			return nil, fmt.Errorf("%w: %s (subscriber %q)", ErrDuplicateServer, name, sc.Name)
		}
	}
	m.tickOnce.Do(func() {
		m.tickOn.Store(true)
		go m.ticker()
	})
	s := newSubscriber(m, sc)
	s.start()
	for _, name := range sc.Channels {
		c := m.channelLocked(name)
		old := *c.subs.Load()
		next := append(append(make([]*subscriber, 0, len(old)+1), old...), s)
		c.subs.Store(&next)
		if sc.Serve != nil {
			c.server.Store(s)
		}
	}
	m.subs = append(m.subs, s)
	return s, nil
}

// unsubscribe removes s from every channel so that no new event reaches it.
func (m *Memory) unsubscribe(s *subscriber) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range s.channels {
		c := m.channels[name]
		old := *c.subs.Load()
		next := make([]*subscriber, 0, len(old))
		for _, o := range old {
			if o != s {
				next = append(next, o)
			}
		}
		c.subs.Store(&next)
		c.server.CompareAndSwap(s, nil)
	}
	for i, o := range m.subs {
		if o == s {
			m.subs = append(m.subs[:i], m.subs[i+1:]...)
			break
		}
	}
}

func (m *Memory) tickStarted() bool { return m.tickOn.Load() }
