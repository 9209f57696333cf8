package ivr

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	secret := []byte("0123456789abcdef-secret")
	body := []byte(`{"id":"ev_1","event":"call.incoming","seq":7}`)
	now := time.Unix(1_800_000_000, 0)
	good := Sign(secret, now, body)
	if !strings.HasPrefix(good, "t=1800000000,v1=") || len(good) != len("t=1800000000,v1=")+64 {
		t.Fatalf("Sign = %q", good)
	}
	other := Sign([]byte("another secret, rotated"), now, body)
	for _, tc := range []struct {
		name   string
		secret []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"sig=good", secret, good, body, now, nil},
		{"sig=good/age=4m59s", secret, good, body, now.Add(4*time.Minute + 59*time.Second), nil},
		{"sig=good/clock=behind", secret, good, body, now.Add(-time.Minute), nil},
		{"sig=two/one-good", secret, other + "," + strings.Split(good, ",")[1], body, now, nil},
		{"secret=wrong", []byte("not the secret"), good, body, now, ErrMismatch},
		{"body=altered", secret, good, []byte(`{"id":"ev_1","event":"call.incoming","seq":8}`), now, ErrMismatch},
		{"timestamp=altered", secret, strings.Replace(good, "t=1800000000", "t=1800000001", 1), body, now, ErrMismatch},
		{"age=stale", secret, good, body, now.Add(MaxSignatureAge + time.Second), ErrStale},
		{"age=future", secret, good, body, now.Add(-MaxSignatureAge - time.Second), ErrStale},
		{"header=empty", secret, "", body, now, ErrNoSignature},
		{"header=no-v1", secret, "t=1800000000", body, now, ErrBadSignature},
		{"header=no-t", secret, strings.Split(good, ",")[1], body, now, ErrBadSignature},
		{"header=two-t", secret, "t=1,t=2," + strings.Split(good, ",")[1], body, now, ErrBadSignature},
		{"header=bad-hex", secret, "t=1800000000,v1=zz", body, now, ErrBadSignature},
		{"header=short-mac", secret, "t=1800000000,v1=abcd", body, now, ErrBadSignature},
		{"header=bad-time", secret, "t=soon,v1=" + strings.Repeat("0", 64), body, now, ErrBadSignature},
		{"header=garbage", secret, "hello", body, now, ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.secret, tc.header, tc.body, tc.now); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("t=1800000000,v1=" + strings.Repeat("ab", 32))
	f.Add("t=1,v1=00,v1=" + strings.Repeat("0", 64))
	f.Add(" , =,t=")
	secret, body, now := []byte("0123456789abcdef"), []byte("body"), time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, header string) {
		// Never panics, and accepts a header only when it holds the MAC of
		// the body at the header's own timestamp.
		if Verify(secret, header, body, now) != nil {
			return
		}
		var ts string
		for _, part := range strings.Split(header, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(part), "t="); ok {
				ts = v
			}
		}
		if !strings.Contains(strings.ToLower(header), hex.EncodeToString(mac(secret, ts, body))) {
			t.Fatalf("accepted %q", header)
		}
	})
}
