package media

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/events"
)

func TestQuality(t *testing.T) {
	cases := []struct {
		name  string
		stats events.RtpStats
		loss  float64
	}{
		{"loss=10%", events.RtpStats{PacketsSent: 100, PacketsReceived: 90, PacketsLost: 10, JitterMS: 5, RttMS: 40}, 10},
		{"loss=none", events.RtpStats{PacketsSent: 50, PacketsReceived: 50, JitterMS: 1}, 0},
		{"loss=negative-duplicates", events.RtpStats{PacketsReceived: 50, PacketsLost: -3}, 0},
		{"expected=nothing", events.RtpStats{PacketsSent: 10}, 0},
		{"loss=all", events.RtpStats{PacketsLost: 7}, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := quality(c.stats)
			want := events.QualityMetrics{MOS: audio.MOS(c.loss, c.stats.JitterMS, c.stats.RttMS), PacketLossPct: c.loss,
				JitterMS: c.stats.JitterMS, RttMS: c.stats.RttMS, PacketsSent: c.stats.PacketsSent,
				PacketsReceived: c.stats.PacketsReceived}
			if q != want {
				t.Fatalf("quality %+v, want %+v", q, want)
			}
		})
	}
}

// Each RtpStatisticsUpdate is a MediaQualityUpdate; rtp's final update,
// just before RtpStreamStopped, makes the final quality come before
// MediaStreamStopped.
func TestQualityUpdates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	const id = "q"
	e.start(t, id, offerPCMU, events.MediaConfig{})
	e.publish(t, &events.RtpStatisticsUpdate{SessionRef: ref(id), Stats: events.RtpStats{PacketsSent: 100,
		PacketsReceived: 95, PacketsLost: 5, JitterMS: 3, RttMS: 30}})
	q := waitFor[*events.MediaQualityUpdate](t, e.rec, id).QualityMetrics
	if q.PacketLossPct != 5 || q.MOS != audio.MOS(5, 3, 30) || q.PacketsSent != 100 || q.PacketsReceived != 95 {
		t.Fatalf("quality %+v", q)
	}
	e.publish(t, &events.StopMediaStream{SessionRef: ref(id)})
	waitFor[*events.StopRtpStream](t, e.rec, id)
	e.publish(t, &events.RtpStatisticsUpdate{SessionRef: ref(id), Stats: events.RtpStats{PacketsSent: 150,
		PacketsReceived: 150, JitterMS: 2}})
	e.publish(t, &events.RtpStreamStopped{SessionRef: ref(id), Reason: "stopped"})
	waitFor[*events.MediaStreamStopped](t, e.rec, id)
	var tail []string
	for _, ev := range e.rec.Events() {
		if events.SessionOf(ev) != id {
			continue
		}
		switch ev := ev.(type) {
		case *events.MediaQualityUpdate:
			tail = append(tail, fmt.Sprintf("quality/%d", ev.QualityMetrics.PacketsSent))
		case *events.MediaStreamStopped:
			tail = append(tail, "stopped")
		}
	}
	if want := []string{"quality/100", "quality/150", "stopped"}; !slices.Equal(tail, want) {
		t.Fatalf("media_to_session %v, want %v", tail, want)
	}
}

func TestPacingStats(t *testing.T) {
	var p pacing
	for i := range 100 {
		p.observe(timeMicros(i * 10)) // 0, 10, …, 990 µs
	}
	p.observe(timeMicros(-5))
	p.observe(timeMicros(25000))
	p.skipped.Add(3)
	st := p.stats()
	if st.Ticks != 102 || st.Skipped != 3 || st.Max != timeMicros(25000) {
		t.Fatalf("stats %+v", st)
	}
	if st.P50 != timeMicros(500) || st.P99 != timeMicros(1000) {
		t.Fatalf("p50 %v p99 %v, want 500µs and 1ms", st.P50, st.P99)
	}
	for _, d := range []int{0, 5, 1999, 2000, 19999, 20000, 199999, 200000, 5000000} {
		b := bucketOf(timeMicros(d))
		if timeMicros(d) >= bucketTop(b) || b > 0 && timeMicros(d) < bucketTop(b-1) {
			t.Fatalf("%d µs in bucket %d (%v-%v)", d, b, bucketTop(b-1), bucketTop(b))
		}
	}
}

func timeMicros(n int) time.Duration { return time.Duration(n) * time.Microsecond }
