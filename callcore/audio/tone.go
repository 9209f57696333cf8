package audio

import "math"

// ToneGenerator produces a continuous sum of sine tones at SampleRate; the
// phase carries over from one Fill to the next, so consecutive frames join
// without clicks. A ToneGenerator is not safe for concurrent use.
type ToneGenerator struct {
	amp float64      // peak of each tone, in sample units
	osc [][4]float64 // per tone: cos, sin of the phase; cos, sin of the step
}

// NewTone returns a generator of the sum of sines at freqs (Hz), each with
// an equal share of amplitude (0..1 of full scale, clamped) so the sum never
// clips. With no frequencies it produces silence.
func NewTone(amplitude float64, freqs ...float64) *ToneGenerator {
	amplitude = min(max(amplitude, 0), 1)
	g := &ToneGenerator{}
	if len(freqs) == 0 {
		return g
	}
	g.amp = amplitude * 32767 / float64(len(freqs))
	for _, f := range freqs {
		w := 2 * math.Pi * f / SampleRate
		g.osc = append(g.osc, [4]float64{1, 0, math.Cos(w), math.Sin(w)})
	}
	return g
}

// Fill writes the next len(dst) samples of the tone into dst.
func (g *ToneGenerator) Fill(dst []int16) {
	if len(g.osc) == 0 {
		clear(dst)
		return
	}
	// A rotating phasor costs four multiplications per sample instead of a
	// math.Sin; renormalising it after each Fill keeps its rounding drift
	// far below one LSB.
	for i := range dst {
		var sum float64
		for k := range g.osc {
			o := &g.osc[k]
			sum += o[1]
			c, s := o[0]*o[2]-o[1]*o[3], o[1]*o[2]+o[0]*o[3]
			o[0], o[1] = c, s
		}
		dst[i] = clampRound(sum * g.amp)
	}
	for k := range g.osc {
		o := &g.osc[k]
		n := math.Hypot(o[0], o[1])
		o[0], o[1] = o[0]/n, o[1]/n
	}
}

// clampRound rounds v to the nearest int16, saturating; NaN becomes 0.
func clampRound(v float64) int16 {
	switch {
	case v >= 32767:
		return 32767
	case v <= -32768:
		return -32768
	case v != v:
		return 0
	}
	return int16(math.Round(v))
}

// Goertzel returns the power of freq (Hz) in samples taken at rate, with a
// rectangular window, normalised so that a full-scale sine at freq gives
// about 1 (a sine of amplitude a·32768 gives about a²). It returns 0 for no
// samples or a non-positive rate.
func Goertzel(samples []int16, rate int, freq float64) float64 {
	if len(samples) == 0 || rate <= 0 {
		return 0
	}
	w := 2 * math.Pi * freq / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range samples {
		s1, s2 = float64(x)+coeff*s1-s2, s1
	}
	// |X(f)|² for a sine of amplitude A over N samples is about (A·N/2)².
	p := s1*s1 + s2*s2 - coeff*s1*s2
	n := float64(len(samples)) * 32768 / 2
	return p / (n * n)
}

// goertzelHann is Goertzel over Hann-windowed samples (window in win, of
// the same length), normalised the same way; the window keeps a strong
// tone's leakage from hiding or moving a weaker peak.
func goertzelHann(samples []int16, win []float64, rate int, freq float64) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for i, x := range samples {
		s1, s2 = float64(x)*win[i]+coeff*s1-s2, s1
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	n := float64(len(samples)) * 32768 / 4 // the Hann window's coherent gain is 1/2
	return p / (n * n)
}

func hann(n int) []float64 {
	win := make([]float64, n)
	for i := range win {
		win[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n))
	}
	return win
}

// DominantFrequency estimates the strongest frequency (Hz) between lo and hi
// in samples taken at rate. A coarse scan in 5 Hz steps sums the
// Hann-windowed Goertzel power of up to 4 segments of 1/16 s (whose ±32 Hz
// main lobe a 5 Hz step cannot miss); a fine scan of up to 4 s of the signal
// within one coarse bin of the coarse peak, in steps of half its resolution,
// and a ternary search between the neighbours of the best step then find the
// peak to a small fraction of a hertz for a steady tone. It returns 0 for no samples,
// a non-positive rate or an empty range.
func DominantFrequency(samples []int16, rate int, lo, hi float64) float64 {
	if len(samples) == 0 || rate <= 0 || !(hi >= lo) {
		return 0
	}
	seg := min(len(samples), max(rate/16, 64))
	nseg := min(4, len(samples)/seg)
	win := hann(seg)
	power := func(f float64) float64 {
		var p float64
		for k := range nseg {
			off := 0
			if nseg > 1 {
				off = k * (len(samples) - seg) / (nseg - 1)
			}
			p += goertzelHann(samples[off:off+seg], win, rate, f)
		}
		return p
	}
	best, bestP := lo, -1.0
	for f := lo; f <= hi; f += 5 {
		if p := power(f); p > bestP {
			best, bestP = f, p
		}
	}
	fine := samples[:min(len(samples), 4*rate)]
	fwin := hann(len(fine))
	fpower := func(f float64) float64 { return goertzelHann(fine, fwin, rate, f) }
	span := float64(rate) / float64(seg) // one coarse bin
	step := float64(rate) / float64(len(fine)) / 2
	a, b := max(lo, best-span), min(hi, best+span)
	center, bestP := best, -1.0
	for f := a; f <= b; f += step {
		if p := fpower(f); p > bestP {
			center, bestP = f, p
		}
	}
	a, b = max(lo, center-step), min(hi, center+step)
	for range 40 {
		m1, m2 := a+(b-a)/3, b-(b-a)/3
		if fpower(m1) < fpower(m2) {
			a = m1
		} else {
			b = m2
		}
	}
	return (a + b) / 2
}

// RMS returns the root mean square of samples, 0..32768 (0 for none).
func RMS(samples []int16) float64 {
	if len(samples) == 0 {
		return 0
	}
	var sum float64
	for _, x := range samples {
		v := float64(x)
		sum += v * v
	}
	return math.Sqrt(sum / float64(len(samples)))
}
