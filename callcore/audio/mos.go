package audio

import "math"

// E-model constants for G.711 (ITU-T G.107 and G.113 Appendix I).
const (
	// mosR0 is the default R of G.107 (93.2) with the default signal-to-noise
	// and simultaneous impairments.
	mosR0 = 93.2
	// mosBpl is G.711's packet-loss robustness with packet loss concealment
	// (G.113 Appendix I: 25.1 for random loss). Without PLC it would be 4.3,
	// which rates 2% loss as bad; every endpoint worth measuring conceals
	// loss, so 25.1 matches what the listener hears.
	mosBpl = 25.1
	// mosPacketMS is the packetisation delay added to the one-way delay.
	mosPacketMS = 20
)

// MOS estimates the mean opinion score (1..4.5) of a G.711 call from the
// ITU-T G.107 E-model simplified as usual for G.711:
// R = 93.2 - Id - Ie,eff, with Ie,eff = Ie + (95 - Ie)·Ppl/(Ppl + Bpl),
// Ie = 0 and Bpl = 25.1 (G.711 with packet loss concealment, G.113
// Appendix I); Id from the one-way delay d = rttMS/2 + 2·jitterMS + 20 ms
// (the jitter buffer holds about twice the jitter, plus one 20 ms packet):
// Id = 0.024·d + 0.11·(d - 177.3)·H(d - 177.3). R maps to MOS by
// 1 + 0.035·R + 7e-6·R·(R - 60)·(100 - R), clamped to 1..4.5 (4.5 above
// R=100; the cubic dips just under 1 for R below 6.5).
// lossPct is 0..100; rttMS 0 means unknown and counts as 0. Negative or NaN
// inputs count as 0, loss above 100 as 100. With no loss, jitter or RTT the
// result is about 4.40.
func MOS(lossPct, jitterMS, rttMS float64) float64 {
	clean := func(v float64) float64 {
		if math.IsNaN(v) || v < 0 {
			return 0
		}
		return v
	}
	ppl := min(clean(lossPct), 100)
	d := clean(rttMS)/2 + 2*clean(jitterMS) + mosPacketMS
	id := 0.024 * d
	if d > 177.3 {
		id += 0.11 * (d - 177.3)
	}
	ie := 95 * ppl / (ppl + mosBpl)
	r := mosR0 - id - ie
	switch {
	case r <= 0 || math.IsNaN(r):
		return 1
	case r >= 100:
		return 4.5
	}
	// The cubic dips just below 1 for R under 6.5; the scale has no MOS
	// below 1, and clamping keeps MOS monotonic in R.
	return max(1, 1+0.035*r+7e-6*r*(r-60)*(100-r))
}
