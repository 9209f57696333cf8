package calltest

import (
	"context"
	"strings"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// registerClient is a bare sipgo client, as callbus's transport uses one.
func registerClient(t *testing.T) *sipgo.Client {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(discardLog)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	c, err := sipgo.NewClient(ua, sipgo.WithClientLogger(discardLog), sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// register sends one REGISTER for user, answering a digest challenge with
// password, and returns the final response.
func register(t *testing.T, ctx context.Context, c *sipgo.Client, registrar, user, password, expires string) *sip.Response {
	t.Helper()
	var ruri sip.Uri
	if err := sip.ParseUri(registrar, &ruri); err != nil {
		t.Fatal(err)
	}
	aor := sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1"}
	req := sip.NewRequest(sip.REGISTER, ruri)
	req.AppendHeader(&sip.FromHeader{Address: aor, Params: sip.HeaderParams{{K: "tag", V: sip.GenerateTagN(8)}}})
	req.AppendHeader(&sip.ToHeader{Address: aor})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: 5099}})
	req.AppendHeader(sip.NewHeader("Expires", expires))
	res, err := c.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 401 {
		t.Fatalf("first REGISTER got %d, want a 401 challenge", res.StatusCode)
	}
	if h := res.GetHeader("WWW-Authenticate"); h == nil || !strings.Contains(h.Value(), `realm="calltest"`) || !strings.Contains(h.Value(), "qop") {
		t.Fatalf("challenge %v", h)
	}
	res, err = c.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRegistrar(t *testing.T) {
	for _, tr := range transports {
		t.Run("transport="+tr, func(t *testing.T) {
			ctx := testCtx(t)
			r := StartRegistrar(t, WithAccount("alice", "secret"), WithGrantedExpires(60))
			uri := r.URI()
			if tr == "tcp" {
				uri = r.TCPURI()
			}
			c := registerClient(t)

			res := register(t, ctx, c, uri, "alice", "secret", "3600")
			if res.StatusCode != 200 {
				t.Fatalf("REGISTER got %d", res.StatusCode)
			}
			if got := res.GetHeader("Expires"); got == nil || got.Value() != "60" {
				t.Fatalf("granted Expires %v, want 60", got)
			}
			if ct := res.Contact(); ct == nil || ct.Params.GetOr("expires", "") != "60" {
				t.Fatalf("granted Contact %v", ct)
			}
			reg, err := r.WaitRegistered(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if reg.Expires != 60 || !strings.Contains(reg.Contact, "sip:alice@127.0.0.1:5099") || reg.AOR != "sip:alice@127.0.0.1" {
				t.Fatalf("registration %+v", reg)
			}
			if n := r.Count(); n != 2 {
				t.Fatalf("registrar saw %d REGISTERs, want 2 (challenged, authorized)", n)
			}
			if got := r.Received()[1].Get("Authorization"); !strings.HasPrefix(got, "Digest ") {
				t.Fatalf("second REGISTER Authorization %q", got)
			}

			res = register(t, ctx, c, uri, "alice", "secret", "0")
			if res.StatusCode != 200 {
				t.Fatalf("unREGISTER got %d", res.StatusCode)
			}
			if err := r.WaitUnregistered(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			if _, ok := r.Registration("alice"); ok || len(r.Registrations()) != 0 {
				t.Fatal("alice is still registered")
			}
			if err := r.WaitCount(ctx, 4); err != nil {
				t.Fatal(err)
			}
			if h := r.History(); len(h) != 2 || h[1].Expires != 0 {
				t.Fatalf("history %+v", h)
			}
		})
	}
}

func TestRegistrarRefuses(t *testing.T) {
	cases := []struct{ name, user, password string }{
		{"password=wrong", "alice", "guess"},
		{"user=unknown", "mallory", "secret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			r := StartRegistrar(t, WithAccount("alice", "secret"))
			res := register(t, ctx, registerClient(t), r.URI(), tc.user, tc.password, "3600")
			if res.StatusCode != 403 {
				t.Fatalf("REGISTER got %d, want 403", res.StatusCode)
			}
			if n := r.Count(); n != 2 {
				t.Fatalf("registrar saw %d REGISTERs, want 2", n)
			}
			if len(r.Registrations()) != 0 || len(r.History()) != 0 {
				t.Fatal("a refused REGISTER was recorded as a binding")
			}
		})
	}
}

func TestRegistrarStaleNonce(t *testing.T) {
	ctx := testCtx(t)
	r := StartRegistrar(t, WithAccount("alice", "secret"))
	c := registerClient(t)
	aor := sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1"}
	var ruri sip.Uri
	_ = sip.ParseUri(r.URI(), &ruri)
	req := sip.NewRequest(sip.REGISTER, ruri)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	req.AppendHeader(sip.NewHeader("Authorization",
		`Digest username="alice", realm="calltest", nonce="forged", uri="sip:127.0.0.1", response="00"`))
	res, err := c.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 401 || !strings.Contains(res.GetHeader("WWW-Authenticate").Value(), "stale=true") {
		t.Fatalf("forged nonce got %s", res.StartLine())
	}
}
