package store

import (
	"errors"
	"time"

	"github.com/callbus/callbus/callcore/bus"
)

// pump reads the tap and hands the records to the writer in seq order. When
// the tap reports that it lagged, the pump reopens it with a replay from the
// last seq it handed on, so the missed events come from the bus's history
// instead of being lost; only a gap the history cannot fill (GapHistory)
// reaches the writer, which records the loss. It closes recs when the tap
// is closed (by Close or by the bus) and drained.
func (s *Store) pump(tap bus.Tap, last uint64, recs chan<- bus.Record) {
	defer close(recs)
	defer func() { _ = s.currentTap().Close() }()
	for {
		r, err := tap.Next(s.ctx)
		if err != nil {
			if !errors.Is(err, bus.ErrClosed) {
				s.log.Error("store: tap read failed; no more events will be stored", "err", err, "last_seq", last)
			}
			return
		}
		if g := r.Gap; g != nil {
			if g.Reason == bus.GapLagging && g.FromSeq != 0 {
				nt, ok := s.reopen(last, g)
				if !ok {
					// The bus is gone: what it held after last is lost.
					to := max(g.ToSeq, s.bus.LastSeq())
					recs <- bus.Record{Gap: &bus.Gap{FromSeq: last + 1, ToSeq: to, Dropped: to - last, Reason: bus.GapLagging}}
					return
				}
				tap = nt
				continue
			}
			if g.ToSeq > last {
				last = g.ToSeq
			}
			recs <- r
			continue
		}
		seq := r.Envelope.Seq
		if seq == 0 || seq <= last {
			continue // data plane (not asked for) or already handed on
		}
		if seq > last+1 {
			// The tap promises a gap record before any hole; say so if not.
			recs <- bus.Record{Gap: &bus.Gap{FromSeq: last + 1, ToSeq: seq - 1, Dropped: seq - 1 - last, Reason: "unreported"}}
		}
		last = seq
		recs <- r
	}
}

// reopen replaces the lagging tap with one that replays from last. It
// reports false when the store is closing or the bus is gone, after which
// nothing more can be read.
func (s *Store) reopen(last uint64, g *bus.Gap) (bus.Tap, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.tap.Close()
	if s.closed {
		return nil, false
	}
	nt, err := s.bus.Tap(s.tapConfig(last))
	if err != nil {
		if !errors.Is(err, bus.ErrClosed) {
			s.log.Error("store: reopen lagging tap failed; no more events will be stored",
				"err", err, "last_seq", last, "missed_from", g.FromSeq, "missed_to", g.ToSeq)
		}
		return nil, false
	}
	s.tap = nt
	s.log.Warn("store: tap lagged; replaying from the bus history", "after_seq", last,
		"missed_from", g.FromSeq, "missed_to", g.ToSeq, "at", time.Now().UTC())
	return nt, true
}

func (s *Store) currentTap() bus.Tap {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tap
}
