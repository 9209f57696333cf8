package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/calltest"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// registrationChanges returns the RegistrationChanged events of
// registration id, in seq order.
func registrationChanges(recs []bus.Record, id string) []*events.RegistrationChanged {
	var out []*events.RegistrationChanged
	for _, r := range recs {
		if e, ok := r.Event.(*events.RegistrationChanged); ok && e.RegistrationID == id {
			out = append(out, e)
		}
	}
	return out
}

// waitRegistration waits for the n-th RegistrationChanged of id and
// returns it.
func waitRegistration(t *testing.T, n *node, id string, k int) *events.RegistrationChanged {
	t.Helper()
	recs := n.rec.wait(t, fmt.Sprintf("RegistrationChanged #%d of %s", k, id), func(recs []bus.Record) bool {
		return len(registrationChanges(recs, id)) >= k
	})
	return registrationChanges(recs, id)[k-1]
}

// register sends CmdRegister for user at the registrar.
func register(t *testing.T, n *node, reg *calltest.Registrar, id, user, password string) {
	t.Helper()
	command(t, n, &events.CmdRegister{RegistrationID: id, Registrar: reg.URI(),
		AOR: "sip:" + user + "@127.0.0.1", Username: user, Password: events.Secret(password), Expires: 60})
}

// REGISTER with digest auth: challenged once, registered, refreshed
// before expiry, unregistered on request.
func TestFlowRegister(t *testing.T) {
	ctx := flowCtx(t)
	n := openFlowNode(t, nil)
	// A short grant makes the node refresh soon: at 80% of 2s.
	reg := calltest.StartRegistrar(t, calltest.WithAccount("alice", "s3cret"), calltest.WithGrantedExpires(2))
	register(t, n, reg, "reg-alice", "alice", "s3cret")

	got := waitRegistration(t, n, "reg-alice", 1)
	if got.Status != "registered" || got.Expires != 2 || got.AOR != "sip:alice@127.0.0.1" {
		t.Fatalf("RegistrationChanged %+v, want registered for 2s", got)
	}
	binding, ok := reg.Registration("alice")
	if !ok || binding.AOR != "sip:alice@127.0.0.1" || binding.Expires != 2 ||
		!strings.Contains(binding.Contact, n.sipTarget("udp")) {
		t.Fatalf("registrar binding %+v (%v), want alice's AOR, 2s, a contact at %s", binding, ok, n.sipTarget("udp"))
	}
	// The first REGISTER is challenged, the second carries the digest.
	if sent := reg.Received(); len(sent) != 2 || sent[0].Get("Authorization") != "" ||
		!strings.HasPrefix(sent[1].Get("Authorization"), "Digest ") || sent[0].Get("Call-ID") != sent[1].Get("Call-ID") {
		t.Fatalf("REGISTERs:\n%s", wireRaw(sent))
	}

	// The refresh: a new binding granted before the first expires.
	bustest.CheckFor(t, 10*time.Second, func() error {
		if h := reg.History(); len(h) < 2 {
			return fmt.Errorf("%d bindings granted, want a refresh", len(h))
		}
		return nil
	})
	if h := reg.History(); h[1].At.Sub(h[0].At) >= 2*time.Second {
		t.Errorf("refreshed after %v, not before the 2s granted expired", h[1].At.Sub(h[0].At))
	}
	if again := waitRegistration(t, n, "reg-alice", 2); again.Status != "registered" {
		t.Errorf("after the refresh: %+v", again)
	}

	command(t, n, &events.CmdUnregister{RegistrationID: "reg-alice"})
	if err := reg.WaitUnregistered(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	recs := n.rec.wait(t, "unregistered", func(recs []bus.Record) bool {
		ch := registrationChanges(recs, "reg-alice")
		return ch[len(ch)-1].Status == "unregistered"
	})
	for _, e := range registrationChanges(recs, "reg-alice") {
		if e.Status == "failed" {
			t.Errorf("a registration failed: %+v", e)
		}
	}
}

// A wrong password fails once (401, then 403 to the digest) and is not
// retried.
func TestFlowRegisterWrongPassword(t *testing.T) {
	ctx := flowCtx(t)
	n := openFlowNode(t, nil)
	reg := calltest.StartRegistrar(t, calltest.WithAccount("alice", "s3cret"), calltest.WithAccount("bob", "b0b"))
	register(t, n, reg, "reg-alice", "alice", "wrong")

	failed := waitRegistration(t, n, "reg-alice", 1)
	if failed.Status != "failed" || failed.Error == "" {
		t.Fatalf("RegistrationChanged %+v, want failed with an error", failed)
	}
	if c := reg.Count(); c != 2 {
		t.Fatalf("%d REGISTERs at the failure, want 2 (challenged, then refused):\n%s", c, wireRaw(reg.Received()))
	}
	if _, ok := reg.Registration("alice"); ok {
		t.Fatal("the registrar bound alice with a wrong password")
	}

	// The window: bob registers through the same node and registrar, two
	// more REGISTER round trips after alice's failure. A retry loop (a
	// REGISTER sent again on the failure, without the 30s backoff of
	// transient failures) would show up in it.
	register(t, n, reg, "reg-bob", "bob", "b0b")
	if got := waitRegistration(t, n, "reg-bob", 1); got.Status != "registered" {
		t.Fatalf("bob: %+v", got)
	}
	if c := reg.Count(); c != 4 {
		t.Fatalf("%d REGISTERs, want 4 (2 for alice, 2 for bob):\n%s", c, wireRaw(reg.Received()))
	}
	// No registration loop lives on for alice: unregistering sends
	// nothing (a live one would send REGISTER Expires: 0) and is reported
	// at once.
	command(t, n, &events.CmdUnregister{RegistrationID: "reg-alice"})
	if got := waitRegistration(t, n, "reg-alice", 2); got.Status != "unregistered" {
		t.Fatalf("after Unregister: %+v", got)
	}
	recs := n.rec.all()
	if ch := registrationChanges(recs, "reg-alice"); len(ch) != 2 {
		t.Errorf("alice's registration changed %d times, want failed then unregistered", len(ch))
	}
	if c := reg.Count(); c != 4 {
		t.Errorf("%d REGISTERs after alice's Unregister, want still 4:\n%s", c, wireRaw(reg.Received()))
	}

	command(t, n, &events.CmdUnregister{RegistrationID: "reg-bob"})
	if err := reg.WaitUnregistered(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
}

// wireRaw renders messages whole, for failure messages.
func wireRaw(ms []calltest.Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.Raw + "\n")
	}
	return b.String()
}
