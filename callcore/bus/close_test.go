package bus

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/callbus/callbus/callcore/events"
)

func gather(t *testing.T, m *Memory) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// Close delivers what is in flight, including what handlers publish while
// it drains.
func TestCloseDrainsInFlight(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var handled, followUps atomic.Int32
	_, err = m.Subscribe(Subscriber{Name: "session", Channels: []string{events.ChannelDialogToSession},
		Handle: func(ctx context.Context, _ events.Envelope, ev events.Event) error {
			time.Sleep(50 * time.Microsecond)
			handled.Add(1)
			return m.Publish(ctx, &events.StopMediaStream{SessionRef: events.SessionRef{SessionID: ev.Key()}})
		}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Subscribe(Subscriber{Name: "media", Channels: []string{events.ChannelSessionToMedia},
		Handle: func(context.Context, events.Envelope, events.Event) error { followUps.Add(1); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		if err := m.Publish(context.Background(), stateEv("s"+string(rune('a'+i%20)), "x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Close(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if handled.Load() != 500 || followUps.Load() != 500 {
		t.Fatalf("Close returned with %d/500 handled and %d/500 follow-ups", handled.Load(), followUps.Load())
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// When the deadline comes first, Close reports exactly what it dropped and
// stops every goroutine (TestMain checks for leaks).
func TestCloseReportsUndelivered(t *testing.T) {
	m, err := New(Config{Shards: 1, BlockedAfter: time.Hour, StopGrace: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int32
	started := make(chan struct{}, 1)
	_, err = m.Subscribe(Subscriber{Name: "stuck", Channels: []string{events.ChannelDialogToSession},
		Handle: func(ctx context.Context, _ events.Envelope, _ events.Event) error {
			select {
			case started <- struct{}{}:
			default:
			}
			<-ctx.Done() // returns when Close gives up and cancels
			handled.Add(1)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := m.Publish(context.Background(), stateEv("s", "x")); err != nil {
			t.Fatal(err)
		}
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = m.Close(ctx)
	var de *DrainError
	if !errors.As(err, &de) {
		t.Fatalf("Close: %v, want a DrainError", err)
	}
	if de.Undelivered+int(handled.Load()) != 10 {
		t.Fatalf("undelivered %d + handled %d != 10 published", de.Undelivered, handled.Load())
	}
	if de.Undelivered != 9 || !strings.Contains(err.Error(), "stuck: dialog_to_session/CallStateChanged ev_") {
		t.Fatalf("report: %v", err)
	}
}

// A handler that ignores its ctx is named, not waited for forever.
func TestCloseNamesStuckHandlers(t *testing.T) {
	m, err := New(Config{StopGrace: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release) // let the goroutine go before the leak check
	started := make(chan struct{})
	_, err = m.Subscribe(Subscriber{Name: "deaf", Channels: []string{events.ChannelDialogToSession},
		Handle: func(context.Context, events.Envelope, events.Event) error {
			close(started)
			<-release
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Publish(context.Background(), stateEv("s", "x"))
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err = m.Close(ctx)
	var de *DrainError
	if !errors.As(err, &de) || len(de.Stuck) == 0 || !strings.Contains(de.Stuck[0], "deaf") {
		t.Fatalf("Close: %v, want the stuck subscriber named", err)
	}
}

func TestMetrics(t *testing.T) {
	m := newBus(t, Config{})
	_, err := m.Subscribe(Subscriber{Name: "s", Channels: []string{events.ChannelDialogToSession},
		Handle: func(context.Context, events.Envelope, events.Event) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	tap, _ := m.Tap(TapConfig{Name: "lazy", Buffer: 2})
	defer tap.Close()
	for i := 0; i < 5; i++ {
		_ = m.Publish(context.Background(), stateEv("s", "x"))
	}
	want := map[string]float64{
		"callbus_bus_published_total":         5,
		"callbus_bus_tap_gaps_total":          1,
		"callbus_bus_tap_missed_events_total": 3,
		"callbus_bus_seq":                     5,
	}
	checkFor(t, 5*time.Second, func() error {
		got := map[string]float64{}
		for _, mf := range gather(t, m) {
			if !strings.HasPrefix(mf.GetName(), "callbus_") {
				return errors.New("metric without the callbus_ prefix: " + mf.GetName())
			}
			for _, mt := range mf.Metric {
				switch {
				case mt.Counter != nil:
					got[mf.GetName()] += mt.Counter.GetValue()
				case mt.Gauge != nil:
					got[mf.GetName()] += mt.Gauge.GetValue()
				case mt.Histogram != nil:
					got[mf.GetName()+"_count"] += float64(mt.Histogram.GetSampleCount())
				}
			}
		}
		want["callbus_bus_handler_duration_seconds_count"] = 5
		want["callbus_bus_delivered_total"] = 5
		for k, v := range want {
			if got[k] != v {
				return errors.New(k + " differs: " + strings.TrimSpace(fmtFloat(got[k])) + " want " + fmtFloat(v))
			}
		}
		return nil
	})
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// Unsubscribe after the bus has closed returns at once: there is nothing
// left to drain.
func TestUnsubscribeAfterClose(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := m.Subscribe(Subscriber{Name: "late", Channels: []string{events.ChannelDialogToSession},
		Handle: func(context.Context, events.Envelope, events.Event) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 30*time.Second)
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatalf("Unsubscribe after Close: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Unsubscribe after Close waited out its ctx for a drain that cannot happen")
	}
}
