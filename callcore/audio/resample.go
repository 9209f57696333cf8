package audio

import (
	"math"
	"sync"
)

// The resampler is a band-limited interpolator (J. O. Smith's "digital
// audio resampling"): each output sample is the input convolved with a
// Kaiser-windowed sinc low-pass centred on the output's exact position. The
// kernel is tabulated once, finely enough (512 points per zero crossing,
// linearly interpolated: error about -100 dB) to serve every rate pair.
const (
	sincZeros   = 32   // zero crossings of the kernel on each side
	sincRes     = 512  // table points per zero crossing
	sincBeta    = 8.0  // Kaiser window shape: about -80 dB side lobes
	sincRolloff = 0.90 // cutoff as a fraction of the lower Nyquist frequency
)

// With 32 zero crossings and β=8 the transition band is about ±8% of the
// cutoff, so 0.90 puts the stopband at the lower Nyquist frequency (no
// audible aliasing) and keeps the passband flat to about 0.83 of it
// (3.3 kHz when converting to 8 kHz).

// sincTable returns the kernel table, computed on first use and then only
// read.
var sincTable = sync.OnceValue(func() []float64 {
	n := sincZeros * sincRes
	t := make([]float64, n+2) // one extra zero so interpolation never reads past the end
	i0b := besselI0(sincBeta)
	for i := 0; i <= n; i++ {
		x := float64(i) / sincRes // in zero crossings
		s := 1.0
		if i > 0 {
			s = math.Sin(math.Pi*x) / (math.Pi * x)
		}
		r := x / sincZeros
		w := besselI0(sincBeta*math.Sqrt(max(0, 1-r*r))) / i0b
		t[i] = s * w
	}
	t[n] = 0
	return t
})

// besselI0 is the zeroth-order modified Bessel function of the first kind,
// by its power series (converges fast for the β used here).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		h := x / (2 * float64(k))
		term *= h * h
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

// maxPolyphase bounds the precomputed coefficients (phases × taps) of a
// rate pair: 1 MiB of float64. Common pairs need far less (44.1→8 kHz: 80
// phases of 386 taps; 48→8 kHz: 1 phase); an odd pair such as 44099→8000
// would need 8000 phases and interpolates the kernel table instead.
const maxPolyphase = 1 << 17

// resampler converts a stream of samples from one rate to another. Input is
// pushed in blocks of any size and output appended as soon as the kernel
// window of an output sample is covered, so memory stays bounded by the
// kernel, not by the stream. The result does not depend on how the input
// was split into blocks.
type resampler struct {
	from, to int64
	gain     float64 // 2·fc: the kernel's height, for unity gain at DC
	half     float64 // kernel half-width, in input samples
	scale    float64 // table index per input sample
	table    []float64
	kmin     int64 // taps span input ip+kmin .. ip+kmax around output position ip+frac
	kmax     int64

	// Polyphase coefficients, when the rate pair has few phases: output n
	// has phase (n·from mod to)/g of to/g, and its taps are coefs[phase].
	g      int64
	ntaps  int
	coefs  []float64
	buf    []float64 // input samples base .. ; zeros before 0 and, at finish, after total
	base   int64     // input index of buf[0]
	total  int64     // input samples pushed so far
	n      int64     // next output index
	closed bool
}

func newResampler(from, to int) *resampler {
	fc := 0.5 * sincRolloff // cycles per input sample
	if to < from {
		fc *= float64(to) / float64(from)
	}
	r := &resampler{
		from:  int64(from),
		to:    int64(to),
		gain:  2 * fc,
		half:  sincZeros / (2 * fc),
		scale: 2 * fc * sincRes,
		table: sincTable(),
	}
	r.kmin = int64(math.Ceil(-r.half))
	r.kmax = int64(math.Floor(r.half)) + 1
	r.ntaps = int(r.kmax - r.kmin + 1)
	r.g = gcd(r.from, r.to)
	if phases := r.to / r.g; phases*int64(r.ntaps) <= maxPolyphase {
		r.coefs = make([]float64, phases*int64(r.ntaps))
		for p := range phases {
			frac := float64(p) / float64(phases)
			c := r.coefs[p*int64(r.ntaps):]
			for k := r.kmin; k <= r.kmax; k++ {
				c[k-r.kmin] = r.kernel(math.Abs(frac-float64(k))) * r.gain
			}
		}
	}
	// Input before the first sample is silence: start the buffer with it so
	// that every output reads whole windows.
	r.buf = make([]float64, -r.kmin, 4096)
	r.base = r.kmin
	return r
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// kernel returns the tabulated windowed sinc at distance d input samples.
func (r *resampler) kernel(d float64) float64 {
	x := d * r.scale
	i := int(x)
	if i >= len(r.table)-2 {
		return 0
	}
	f := x - float64(i)
	return r.table[i] + f*(r.table[i+1]-r.table[i])
}

// position returns output n's exact input position as integer and
// fraction, and the remainder that names its polyphase phase.
func (r *resampler) position(n int64) (int64, int64) {
	num := n * r.from
	return num / r.to, num % r.to
}

// push adds input samples and appends every output sample they complete.
func (r *resampler) push(in []float64, out []int16) []int16 {
	r.buf = append(r.buf, in...)
	r.total += int64(len(in))
	for {
		ip, rem := r.position(r.n)
		if ip+r.kmax >= r.total {
			break // the kernel reaches input not pushed yet
		}
		out = append(out, clampRound(r.sample(ip, rem)))
		r.n++
	}
	// Drop input no later output can reach; copying only when at least half
	// of the buffer is dead keeps this amortised O(1) per sample.
	ip, _ := r.position(r.n)
	if drop := ip + r.kmin - r.base; drop > 0 && drop >= int64(len(r.buf))/2 {
		drop = min(drop, int64(len(r.buf)))
		r.buf = r.buf[:copy(r.buf, r.buf[drop:])]
		r.base += drop
	}
	return out
}

// finish appends the remaining output samples, treating input past the end
// as silence: ceil(total·to/from) samples in all, so the duration is kept.
func (r *resampler) finish(out []int16) []int16 {
	if !r.closed {
		r.closed = true
		r.buf = append(r.buf, make([]float64, r.kmax+1)...)
	}
	count := (r.total*r.to + r.from - 1) / r.from
	for ; r.n < count; r.n++ {
		ip, rem := r.position(r.n)
		out = append(out, clampRound(r.sample(ip, rem)))
	}
	return out
}

// sample convolves the buffered input with the kernel centred at
// ip + rem/to; the buffer holds input ip+kmin .. ip+kmax.
func (r *resampler) sample(ip, rem int64) float64 {
	x := r.buf[ip+r.kmin-r.base:][:r.ntaps]
	if r.coefs != nil {
		p := rem / r.g
		return dot(r.coefs[p*int64(r.ntaps):][:r.ntaps], x)
	}
	frac := float64(rem) / float64(r.to)
	var acc float64
	for k := range x {
		acc += x[k] * r.kernel(math.Abs(frac-float64(int64(k)+r.kmin)))
	}
	return acc * r.gain
}

// dot returns the dot product of equal-length a and b, four lanes at a
// time so the additions do not wait on each other.
func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// Resample converts mono samples from rate from to rate to with a
// Kaiser-windowed sinc low-pass whose cutoff is 0.9 of the lower Nyquist
// frequency, returning a new slice of ceil(len(in)·to/from) samples (the
// same duration). Equal rates return a copy; a non-positive rate returns nil.
func Resample(in []int16, from, to int) []int16 {
	if from <= 0 || to <= 0 {
		return nil
	}
	if from == to {
		return append([]int16(nil), in...)
	}
	r := newResampler(from, to)
	out := make([]int16, 0, (int64(len(in))*int64(to)+int64(from)-1)/int64(from))
	var block [1024]float64
	for len(in) > 0 {
		n := min(len(in), len(block))
		for i, s := range in[:n] {
			block[i] = float64(s)
		}
		out = r.push(block[:n], out)
		in = in[n:]
	}
	return r.finish(out)
}
