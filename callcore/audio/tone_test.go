package audio

import (
	"fmt"
	"math"
	"testing"
)

func tone(n int, amplitude float64, freqs ...float64) []int16 {
	s := make([]int16, n)
	NewTone(amplitude, freqs...).Fill(s)
	return s
}

func TestToneGenerator(t *testing.T) {
	for _, f := range []float64{300, 440, 1000, 2600, 3400} {
		t.Run(fmt.Sprintf("freq=%v", f), func(t *testing.T) {
			s := tone(SampleRate, 0.5, f)
			if got := DominantFrequency(s, SampleRate, 50, 3950); math.Abs(got-f) > 0.05 {
				t.Errorf("dominant %v Hz", got)
			}
			want := 0.5 * 32767 / math.Sqrt2
			if got := RMS(s); math.Abs(got-want) > want*0.01 {
				t.Errorf("RMS %v, want %v", got, want)
			}
			// Sample-exact against the closed form: the phasor does not drift.
			for i, v := range s {
				ref := 0.5 * 32767 * math.Sin(2*math.Pi*f*float64(i)/SampleRate)
				if math.Abs(float64(v)-ref) > 1 {
					t.Fatalf("sample %d: %d, want %.1f", i, v, ref)
				}
			}
		})
	}
}

func TestToneContinuousAcrossFills(t *testing.T) {
	whole := tone(8000, 0.8, 697, 1209)
	g := NewTone(0.8, 697, 1209)
	var parts []int16
	frame := make([]int16, FrameSamples)
	for range 8000 / FrameSamples {
		g.Fill(frame)
		parts = append(parts, frame...)
	}
	for i := range whole {
		if d := int(whole[i]) - int(parts[i]); d < -1 || d > 1 {
			t.Fatalf("sample %d: one fill %d, frames %d", i, whole[i], parts[i])
		}
	}
}

func TestToneEdges(t *testing.T) {
	if s := tone(100, 0.5); RMS(s) != 0 {
		t.Errorf("no frequencies: RMS %v", RMS(s))
	}
	s := tone(8000, 7, 1000) // amplitude clamps to full scale, never wraps
	peak := 0
	for _, v := range s {
		peak = max(peak, int(v), -int(v))
	}
	if peak < 32700 || peak > 32767 {
		t.Errorf("amplitude 7: peak %d", peak)
	}
	if s := tone(800, -1, 1000); RMS(s) != 0 {
		t.Errorf("negative amplitude: RMS %v", RMS(s))
	}
}

func TestGoertzel(t *testing.T) {
	cases := []struct {
		name  string
		s     []int16
		freq  float64
		want  float64
		delta float64
	}{
		{"signal=full-scale-1000/at=1000", tone(8000, 1, 1000), 1000, 1, 0.01},
		{"signal=half-1000/at=1000", tone(8000, 0.5, 1000), 1000, 0.25, 0.005},
		{"signal=half-1000/at=1500", tone(8000, 0.5, 1000), 1500, 0, 1e-4},
		{"signal=dtmf-1/at=697", tone(8000, 1, 697, 1209), 697, 0.25, 0.005},
		{"signal=dtmf-1/at=1209", tone(8000, 1, 697, 1209), 1209, 0.25, 0.005},
		{"signal=dtmf-1/at=770", tone(8000, 1, 697, 1209), 770, 0, 1e-3},
		{"signal=frame-1000/at=1000", tone(FrameSamples, 1, 1000), 1000, 1, 0.03},
		{"signal=silence/at=1000", make([]int16, 800), 1000, 0, 0},
		{"signal=empty/at=1000", nil, 1000, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Goertzel(c.s, SampleRate, c.freq); math.Abs(got-c.want) > c.delta {
				t.Errorf("power %v, want %v ± %v", got, c.want, c.delta)
			}
		})
	}
	if got := Goertzel(tone(100, 1, 1000), 0, 1000); got != 0 {
		t.Errorf("rate 0: %v", got)
	}
}

func TestDominantFrequency(t *testing.T) {
	cases := []struct {
		name   string
		s      []int16
		lo, hi float64
		want   float64
		delta  float64
	}{
		{"freq=1000/n=8000", tone(8000, 0.5, 1000), 100, 3900, 1000, 0.05},
		{"freq=1234.5/n=8000", tone(8000, 0.5, 1234.5), 100, 3900, 1234.5, 0.05},
		{"freq=440/n=1600", tone(1600, 0.5, 440), 100, 3900, 440, 0.1},
		{"freq=3399.9/n=4000", tone(4000, 0.5, 3399.9), 100, 3900, 3399.9, 0.05},
		{"freq=2000/n=160", tone(160, 0.5, 2000), 100, 3900, 2000, 1},
		{"freq=1209-louder", mix(tone(8000, 0.2, 697), tone(8000, 0.6, 1209)), 100, 3900, 1209, 0.05},
		{"freq=697-in-range", mix(tone(8000, 0.2, 697), tone(8000, 0.6, 1209)), 600, 1000, 697, 0.05},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := DominantFrequency(c.s, SampleRate, c.lo, c.hi); math.Abs(got-c.want) > c.delta {
				t.Errorf("dominant %v, want %v ± %v", got, c.want, c.delta)
			}
		})
	}
	if got := DominantFrequency(nil, SampleRate, 0, 4000); got != 0 {
		t.Errorf("no samples: %v", got)
	}
	if got := DominantFrequency(tone(100, 1, 100), SampleRate, 500, 400); got != 0 {
		t.Errorf("empty range: %v", got)
	}
}

func mix(a, b []int16) []int16 {
	out := make([]int16, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
}

func TestRMS(t *testing.T) {
	cases := []struct {
		name string
		s    []int16
		want float64
	}{
		{"samples=none", nil, 0},
		{"samples=zeros", make([]int16, 10), 0},
		{"samples=min", []int16{-32768, -32768}, 32768},
		{"samples=3-4", []int16{3, -4, 3, -4}, math.Sqrt(12.5)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := RMS(c.s); math.Abs(got-c.want) > 1e-9 {
				t.Errorf("RMS %v, want %v", got, c.want)
			}
		})
	}
}

func TestMOS(t *testing.T) {
	cases := []struct {
		name              string
		loss, jitter, rtt float64
		want, delta       float64
	}{
		{"loss=0/jitter=0/rtt=0", 0, 0, 0, 4.40, 0.005},
		{"loss=1/jitter=0/rtt=0", 1, 0, 0, 4.316, 0.001},
		{"loss=5/jitter=0/rtt=0", 5, 0, 0, 3.903, 0.001},
		{"loss=0/jitter=20/rtt=100", 0, 20, 100, 4.352, 0.001},
		{"loss=0/jitter=0/rtt=600", 0, 0, 600, 3.589, 0.001},
		{"loss=100/jitter=0/rtt=0", 100, 0, 0, 1.165, 0.001},
		{"loss=NaN", math.NaN(), 0, 0, 4.40, 0.005},
		{"loss=-3/jitter=-1/rtt=-5", -3, -1, -5, 4.40, 0.005},
		{"loss=500", 500, 0, 0, 1.165, 0.001},
		{"jitter=inf", 0, math.Inf(1), 0, 1, 1e-9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := MOS(c.loss, c.jitter, c.rtt); math.Abs(got-c.want) > c.delta {
				t.Errorf("MOS %v, want %v ± %v", got, c.want, c.delta)
			}
		})
	}
	prev := 5.0
	for loss := 0.0; loss <= 100; loss += 0.25 {
		m := MOS(loss, 10, 50)
		if m > prev || m < 1 || m > 4.5 {
			t.Fatalf("loss=%v: MOS %v after %v", loss, m, prev)
		}
		if m >= prev { // strictly: R stays above 6.5 here
			t.Fatalf("loss=%v: MOS %v not below %v", loss, m, prev)
		}
		prev = m
	}
	prev = 5.0
	for j := 0.0; j <= 500; j += 5 {
		m := MOS(0, j, 0)
		if m > prev {
			t.Fatalf("jitter=%v: MOS %v rose from %v", j, m, prev)
		}
		prev = m
	}
}
