package session

import (
	"testing"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

func TestRegister(t *testing.T) {
	h := newHarness(t, Config{})
	res, err := h.request(&events.CmdRegister{RegistrationID: "reg-1", Registrar: "sip:registrar.example.com",
		AOR: "sip:alice@example.com", Username: "alice", Password: "s3cret", Expires: 600})
	if err != nil || res.ID != "reg-1" || res.State != "registering" {
		t.Fatalf("Register: %+v, %v", res, err)
	}
	ra := expectEv[*events.RegisterAccount](h, "reg-1", "dialog:RegisterAccount")
	if ra.Registrar != "sip:registrar.example.com" || ra.AOR != "sip:alice@example.com" || ra.Username != "alice" ||
		string(ra.Password) != "s3cret" || ra.Expires != 600 {
		t.Fatalf("RegisterAccount = %+v", ra)
	}
	h.publish(&events.RegistrationUpdated{RegistrationID: "reg-1", Status: "registered", Expires: 300})
	rc := expectEv[*events.RegistrationChanged](h, "reg-1", "app:RegistrationChanged")
	if rc.Status != "registered" || rc.Expires != 300 || rc.AOR != "sip:alice@example.com" {
		t.Fatalf("RegistrationChanged = %+v", rc)
	}
	if regs := h.s.Registrations(); len(regs) != 1 || regs[0].Status != "registered" || regs[0].Expires != 300 {
		t.Fatalf("Registrations() = %+v", regs)
	}

	res, err = h.request(&events.CmdUnregister{RegistrationID: "reg-1"})
	if err != nil || res.ID != "reg-1" || res.State != "unregistering" {
		t.Fatalf("Unregister: %+v, %v", res, err)
	}
	h.expect("reg-1", "dialog:UnregisterAccount")
	h.publish(&events.RegistrationUpdated{RegistrationID: "reg-1", AOR: "sip:alice@example.com", Status: "unregistered"})
	if rc := expectEv[*events.RegistrationChanged](h, "reg-1", "app:RegistrationChanged"); rc.Status != "unregistered" {
		t.Fatalf("RegistrationChanged = %+v", rc)
	}
	if regs := h.s.Registrations(); len(regs) != 0 {
		t.Fatalf("Registrations() after unregistering = %+v", regs)
	}
	h.refused(&events.CmdUnregister{RegistrationID: "reg-1"}, callcore.CodeNotFound, "")
}

// A failed registration is reported as it is.
func TestRegisterFails(t *testing.T) {
	h := newHarness(t, Config{})
	if _, err := h.request(&events.CmdRegister{RegistrationID: "r", Registrar: "sip:reg.test", AOR: "sip:a@reg.test"}); err != nil {
		t.Fatal(err)
	}
	h.expect("r", "dialog:RegisterAccount")
	h.publish(&events.RegistrationUpdated{RegistrationID: "r", AOR: "sip:a@reg.test", Status: "failed", Error: "403 Forbidden"})
	if rc := expectEv[*events.RegistrationChanged](h, "r", "app:RegistrationChanged"); rc.Status != "failed" || rc.Error != "403 Forbidden" {
		t.Fatalf("RegistrationChanged = %+v", rc)
	}
}

func TestRegisterValidation(t *testing.T) {
	h := newHarness(t, Config{})
	ok := events.CmdRegister{RegistrationID: "r", Registrar: "sip:reg.test", AOR: "sip:a@reg.test"}
	for _, tc := range []struct {
		name  string
		edit  func(*events.CmdRegister)
		field string
	}{
		{"registrar=empty", func(c *events.CmdRegister) { c.Registrar = "" }, "registrar"},
		{"registrar=http", func(c *events.CmdRegister) { c.Registrar = "http://reg.test" }, "registrar"},
		{"aor=bare", func(c *events.CmdRegister) { c.AOR = "alice" }, "aor"},
		{"expires=-1", func(c *events.CmdRegister) { c.Expires = -1 }, "expires"},
		{"username=quote", func(c *events.CmdRegister) { c.Username = `a"b` }, "username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := ok
			tc.edit(&cmd)
			h.refused(&cmd, callcore.CodeValidationFailed, tc.field)
		})
	}
	if regs := h.s.Registrations(); len(regs) != 0 {
		t.Fatalf("a refused registration is kept: %+v", regs)
	}
}
