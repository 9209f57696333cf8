package bus

import (
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The bus keeps its counters in plain atomics on the structures Publish
// already holds, and turns them into Prometheus metrics only when scraped:
// a *Vec lookup by label values on every event would cost more than the hop.

// latencyBounds are the handler latency histogram's upper bounds: 1µs × 4ⁿ.
var latencyBounds = [...]time.Duration{
	time.Microsecond, 4 * time.Microsecond, 16 * time.Microsecond, 64 * time.Microsecond,
	256 * time.Microsecond, 1024 * time.Microsecond, 4096 * time.Microsecond,
	16384 * time.Microsecond, 65536 * time.Microsecond, 262144 * time.Microsecond,
	1048576 * time.Microsecond, 4194304 * time.Microsecond,
}

// typeStats counts one event type.
type typeStats struct {
	channel, typ string
	// published is written by publishers and the rest by runners, on
	// other cores: the padding keeps them off one cache line.
	_         cacheLinePad
	published atomic.Uint64
	_         cacheLinePad
	delivered atomic.Uint64
	errors    atomic.Uint64
	sumNanos  atomic.Uint64
	buckets   [len(latencyBounds) + 1]atomic.Uint64 // last is +Inf
}

func newTypeStats(channel, typ string) *typeStats {
	return &typeStats{channel: channel, typ: typ}
}

// cacheLinePad separates fields written from different cores; 128 bytes
// covers the adjacent-line prefetch of x86.
type cacheLinePad [128]byte

// subStats counts one subscriber's backpressure.
type subStats struct {
	blocked  atomic.Uint64
	detaches atomic.Uint64
}

// tapStats counts one tap name's gaps; taps of one name share it.
type tapStats struct {
	gaps   atomic.Uint64
	missed atomic.Uint64
}

func (m *Memory) tapStats(name string) *tapStats {
	if name == "" {
		name = "unnamed"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.taps == nil {
		m.taps = map[string]*tapStats{}
	}
	s := m.taps[name]
	if s == nil {
		s = &tapStats{}
		m.taps[name] = s
	}
	return s
}

var (
	descPublished = prometheus.NewDesc("callbus_bus_published_total",
		"Events published on the bus.", []string{"channel", "type"}, nil)
	descDelivered = prometheus.NewDesc("callbus_bus_delivered_total",
		"Events handled by subscribers (one per subscriber).", []string{"channel", "type"}, nil)
	descErrors = prometheus.NewDesc("callbus_bus_handler_errors_total",
		"Handler errors and panics.", []string{"channel", "type"}, nil)
	descLatency = prometheus.NewDesc("callbus_bus_handler_duration_seconds",
		"Time handlers took per event; RTP packet events are sampled, one in 16.", []string{"channel", "type"}, nil)
	descDepth = prometheus.NewDesc("callbus_bus_queue_depth",
		"Events queued for a subscriber.", []string{"subscriber"}, nil)
	descCapacity = prometheus.NewDesc("callbus_bus_queue_capacity",
		"Bound on a subscriber's queued events.", []string{"subscriber"}, nil)
	descBlocked = prometheus.NewDesc("callbus_bus_publish_blocked_total",
		"Publishes that waited on a subscriber's full queue.", []string{"subscriber"}, nil)
	descWorkers = prometheus.NewDesc("callbus_bus_workers",
		"Runner goroutines of a subscriber: one per shard, plus one per blocked key.", []string{"subscriber"}, nil)
	descDetaches = prometheus.NewDesc("callbus_bus_blocked_keys_total",
		"Keys set apart because their handler ran longer than BlockedAfter.", []string{"subscriber"}, nil)
	descTapGaps = prometheus.NewDesc("callbus_bus_tap_gaps_total",
		"Gaps reported to lagging taps.", []string{"tap"}, nil)
	descTapMissed = prometheus.NewDesc("callbus_bus_tap_missed_events_total",
		"Events lagging taps missed.", []string{"tap"}, nil)
	descSeq = prometheus.NewDesc("callbus_bus_seq",
		"Seq of the newest control-plane event.", nil, nil)
)

// Describe implements prometheus.Collector.
func (m *Memory) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPublished, descDelivered, descErrors, descLatency,
		descDepth, descCapacity, descBlocked, descWorkers, descDetaches, descTapGaps, descTapMissed, descSeq} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Memory) Collect(ch chan<- prometheus.Metric) {
	routes := *m.routes.Load()
	stats := make([]*typeStats, 0, len(routes))
	for _, r := range routes {
		stats = append(stats, r.stats)
	}
	sort.Slice(stats, func(i, j int) bool {
		if stats[i].channel != stats[j].channel {
			return stats[i].channel < stats[j].channel
		}
		return stats[i].typ < stats[j].typ
	})
	for _, s := range stats {
		labels := []string{s.channel, s.typ}
		ch <- prometheus.MustNewConstMetric(descPublished, prometheus.CounterValue, float64(s.published.Load()), labels...)
		ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(s.delivered.Load()), labels...)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(s.errors.Load()), labels...)
		buckets := make(map[float64]uint64, len(latencyBounds))
		var cum uint64
		for i, b := range latencyBounds {
			cum += s.buckets[i].Load()
			buckets[b.Seconds()] = cum
		}
		cum += s.buckets[len(latencyBounds)].Load()
		ch <- prometheus.MustNewConstHistogram(descLatency, cum,
			float64(s.sumNanos.Load())/1e9, buckets, labels...)
	}
	m.mu.Lock()
	subs := append([]*subscriber(nil), m.subs...)
	taps := make(map[string]*tapStats, len(m.taps))
	for k, v := range m.taps {
		taps[k] = v
	}
	m.mu.Unlock()
	for _, s := range subs {
		depth, workers := s.depth(), len(s.shards)+int(s.detached.Load())
		ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(depth), s.name)
		ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, float64(s.capacity*len(s.shards)), s.name)
		ch <- prometheus.MustNewConstMetric(descBlocked, prometheus.CounterValue, float64(s.stats.blocked.Load()), s.name)
		ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(workers), s.name)
		ch <- prometheus.MustNewConstMetric(descDetaches, prometheus.CounterValue, float64(s.stats.detaches.Load()), s.name)
	}
	for name, t := range taps {
		ch <- prometheus.MustNewConstMetric(descTapGaps, prometheus.CounterValue, float64(t.gaps.Load()), name)
		ch <- prometheus.MustNewConstMetric(descTapMissed, prometheus.CounterValue, float64(t.missed.Load()), name)
	}
	ch <- prometheus.MustNewConstMetric(descSeq, prometheus.GaugeValue, float64(m.LastSeq()))
}

// logger reports handler failures with the event's id.
type logger struct{ *slog.Logger }

func (l logger) handlerError(sub string, it *item, err error) {
	l.Warn("bus handler failed", "subscriber", sub, "channel", it.r.ch.name,
		"type", it.r.typ, "event_id", it.id.String(), "error", err)
}

// statBatch accumulates a worker's observations of one batch, so that the
// shared counters are touched once per type per batch, not per delivery.
type statBatch struct {
	n    int
	ents [4]statEntry
}

type statEntry struct {
	s       *typeStats
	count   uint64
	errs    uint64
	sum     time.Duration
	buckets [len(latencyBounds) + 1]uint32
}

func (b *statBatch) add(s *typeStats, d time.Duration, err error) {
	var e *statEntry
	for i := 0; i < b.n; i++ {
		if b.ents[i].s == s {
			e = &b.ents[i]
			break
		}
	}
	if e == nil {
		if b.n == len(b.ents) {
			b.flush()
		}
		e = &b.ents[b.n]
		e.s = s
		b.n++
	}
	e.count++
	if err != nil {
		e.errs++
	}
	if d < 0 { // not timed
		return
	}
	e.sum += d
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	e.buckets[i]++
}

func (b *statBatch) flush() {
	for i := 0; i < b.n; i++ {
		e := &b.ents[i]
		e.s.delivered.Add(e.count)
		if e.errs > 0 {
			e.s.errors.Add(e.errs)
		}
		e.s.sumNanos.Add(uint64(e.sum))
		for j, c := range e.buckets {
			if c > 0 {
				e.s.buckets[j].Add(uint64(c))
			}
		}
		*e = statEntry{}
	}
	b.n = 0
}
