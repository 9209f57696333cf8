package events_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore/events"
)

func TestSecret(t *testing.T) {
	ev := &events.CmdRegister{RegistrationID: "r1", Username: "alice", Password: "hunter2"}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("hunter2")) || !bytes.Contains(b, []byte(`"password":"[redacted]"`)) {
		t.Errorf("json %s: want the password redacted", b)
	}
	if string(ev.Password) != "hunter2" {
		t.Errorf("in-process value %q, want it intact", string(ev.Password))
	}
	if s := fmt.Sprintf("%v %+v %s", ev.Password, *ev, ev.Password); strings.Contains(s, "hunter2") {
		t.Errorf("fmt printed the secret: %s", s)
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("register", "password", ev.Password, "event", ev)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("register", "password", ev.Password, "event", ev)
	if strings.Contains(logs.String(), "hunter2") {
		t.Errorf("slog printed the secret: %s", logs.String())
	}

	empty, _ := json.Marshal(events.Secret(""))
	if string(empty) != `""` {
		t.Errorf("empty secret marshals to %s", empty)
	}
	// An empty optional password is left out altogether.
	b, _ = json.Marshal(&events.RegisterEndpoint{URI: "sip:a@b"})
	if bytes.Contains(b, []byte("password")) {
		t.Errorf("json %s has an empty password", b)
	}

	var s events.Secret
	for in, want := range map[string]events.Secret{`"p\u00e4ss"`: "päss", `"[redacted]"`: "[redacted]", `""`: ""} {
		if err := json.Unmarshal([]byte(in), &s); err != nil || s != want {
			t.Errorf("Unmarshal(%s) = %q, %v; want %q", in, string(s), err, string(want))
		}
	}
	for _, in := range []string{`5`, `{}`, `["x"]`, `true`} {
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", in)
		}
	}
}
