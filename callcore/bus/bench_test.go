package bus

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore/events"
)

// The hop benchmarks pass the same event from the benchmark goroutine to a
// handler on another goroutine: BenchmarkChanHop through a bare buffered
// channel, BenchmarkBusHop through Publish and a subscriber. scripts/bench.sh
// runs both with -count and prints the ratio.

const hopQueue = 1024

func hopEvents() map[string]events.Event {
	return map[string]events.Event{
		"plane=data": &events.RtpPacketReceived{SessionRef: events.SessionRef{SessionID: "s1"},
			Payload: make([]byte, 160), Timestamp: 160, SequenceNumber: 1, PayloadType: 0},
		"plane=control": &events.CallStateChanged{SessionRef: events.SessionRef{SessionID: "s1"},
			NewState: "ringing"},
	}
}

func BenchmarkChanHop(b *testing.B) {
	for name, ev := range hopEvents() {
		b.Run(name, func(b *testing.B) {
			ch := make(chan events.Event, hopQueue)
			done := make(chan struct{})
			var n atomic.Int64
			handle := func(ev events.Event) {
				if ev.Key() != "" {
					n.Add(1)
				}
			}
			go func() {
				for ev := range ch {
					handle(ev)
				}
				close(done)
			}()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ch <- ev
			}
			close(ch)
			<-done
			b.StopTimer()
			if n.Load() != int64(b.N) {
				b.Fatalf("handled %d of %d", n.Load(), b.N)
			}
		})
	}
}

func BenchmarkBusHop(b *testing.B) {
	for name, ev := range hopEvents() {
		b.Run(name, func(b *testing.B) {
			m, err := New(Config{QueueSize: hopQueue, History: 1024})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(context.Background())
			var n atomic.Int64
			done := make(chan struct{})
			target := int64(b.N)
			_, err = m.Subscribe(Subscriber{Name: "hop", Channels: []string{ev.Channel()},
				Handle: func(_ context.Context, _ events.Envelope, ev events.Event) error {
					if ev.Key() != "" && n.Add(1) == target {
						close(done)
					}
					return nil
				}})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := m.Publish(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
			<-done
		})
	}
}

// BenchmarkBusFanout publishes from one goroutine per core to five
// subscribers over 64 keys and reports deliveries per second.
func BenchmarkBusFanout(b *testing.B) {
	const subs, keys = 5, 64
	m, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(context.Background())
	var delivered atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < subs; i++ {
		_, err := m.Subscribe(Subscriber{Name: "fan" + strconv.Itoa(i),
			Channels: []string{events.ChannelRTPToMedia},
			Handle: func(context.Context, events.Envelope, events.Event) error {
				delivered.Add(1)
				wg.Done()
				return nil
			}})
		if err != nil {
			b.Fatal(err)
		}
	}
	evs := make([]events.Event, keys)
	for i := range evs {
		evs[i] = &events.RtpPacketReceived{SessionRef: events.SessionRef{SessionID: fmt.Sprintf("s%d", i)},
			Payload: make([]byte, 160)}
	}
	ctx := context.Background()
	wg.Add(b.N * subs)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		k := int(next.Add(1))
		for pb.Next() {
			k++
			if err := m.Publish(ctx, evs[k%keys]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(delivered.Load())/elapsed.Seconds(), "deliveries/s")
}

// BenchmarkPublish measures Publish alone, to a subscriber whose queue
// never fills, so that allocs/op is what Publish itself allocates: nothing.
func BenchmarkPublish(b *testing.B) {
	for name, ev := range hopEvents() {
		b.Run(name, func(b *testing.B) {
			m, err := New(Config{History: 1024})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(context.Background())
			if _, err := m.Subscribe(Subscriber{Name: "sink", Channels: []string{ev.Channel()},
				Handle: func(context.Context, events.Envelope, events.Event) error { return nil }}); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := m.Publish(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
