package sdp

import "testing"

func TestDirectionValid(t *testing.T) {
	for _, tc := range []struct {
		d     Direction
		valid bool
	}{
		{SendRecv, true}, {SendOnly, true}, {RecvOnly, true}, {Inactive, true},
		{"", false}, {"hold", false}, {"SENDONLY", false}, {"sendonly ", false},
	} {
		t.Run("dir="+string(tc.d), func(t *testing.T) {
			if got := tc.d.Valid(); got != tc.valid {
				t.Fatalf("Valid = %v, want %v", got, tc.valid)
			}
		})
	}
}

func TestDirectionMirror(t *testing.T) {
	for _, tc := range []struct{ offer, mirror Direction }{
		{SendRecv, SendRecv}, {SendOnly, RecvOnly}, {RecvOnly, SendOnly}, {Inactive, Inactive}, {"", SendRecv}, {"bogus", SendRecv},
	} {
		t.Run("offer="+string(tc.offer), func(t *testing.T) {
			if got := tc.offer.Mirror(); got != tc.mirror {
				t.Fatalf("Mirror = %s, want %s", got, tc.mirror)
			}
		})
	}
}

func TestDirectionIntersect(t *testing.T) {
	const (
		sr = SendRecv
		so = SendOnly
		ro = RecvOnly
		in = Inactive
	)
	for _, tc := range []struct{ a, b, want Direction }{
		{sr, sr, sr}, {so, sr, so}, {sr, so, so}, {so, ro, in}, {ro, sr, ro}, {sr, in, in},
		{so, so, so}, {ro, ro, ro}, {in, in, in}, {ro, so, in},
	} {
		t.Run("a="+string(tc.a)+"/b="+string(tc.b), func(t *testing.T) {
			if got := tc.a.Intersect(tc.b); got != tc.want {
				t.Fatalf("Intersect = %s, want %s", got, tc.want)
			}
			if got := tc.b.Intersect(tc.a); got != tc.want {
				t.Fatalf("Intersect is not symmetric: %s", got)
			}
		})
	}
}

// The answer to an offer, by an answerer with a wish, is the wish
// intersected with the mirrored offer (RFC 3264 §6.1): it sends only if
// the offerer receives, and receives only if the offerer sends.
func TestDirectionAnswer(t *testing.T) {
	for _, offer := range []Direction{SendRecv, SendOnly, RecvOnly, Inactive} {
		for _, wish := range []Direction{SendRecv, SendOnly, RecvOnly, Inactive} {
			t.Run("offer="+string(offer)+"/wish="+string(wish), func(t *testing.T) {
				got := wish.Intersect(offer.Mirror())
				if got.Sends() != (wish.Sends() && offer.Receives()) || got.Receives() != (wish.Receives() && offer.Sends()) {
					t.Fatalf("answer %s", got)
				}
			})
		}
	}
}
