package httpapi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// wavFile writes a small 8 kHz mono PCM WAV file and returns its bytes.
func wavFile(t *testing.T, path string, samples int) []byte {
	t.Helper()
	var b bytes.Buffer
	data := samples * 2
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+data))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(data))
	for i := range samples {
		binary.Write(&b, binary.LittleEndian, int16(i*37))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRecordings(t *testing.T) {
	e := newEnv(t, keyedConfig())
	c := e.makeCall(t, "sip:bob@example.com")
	dir := t.TempDir()
	want := map[string][]byte{}
	for _, id := range []string{"rec_one", "rec_two", "rec_three"} {
		path := filepath.Join(dir, id+".wav")
		want[id] = wavFile(t, path, 800)
		bustest.Publish(t, e.bus, &events.RecordingFinished{SessionRef: events.SessionRef{SessionID: c.ID},
			RecordingID: id, FilePath: path, DurationMS: 100})
	}
	if err := e.store.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}

	resp, body := e.request(t, specValid, "GET", "/v1/recordings?limit=2", nil, authed())
	page := decodeJSON[RecordingList](t, body)
	if resp.StatusCode != 200 || len(page.Recordings) != 2 || page.NextCursor == "" {
		t.Fatalf("first page = %d %s", resp.StatusCode, body)
	}
	resp, body = e.request(t, specValid, "GET", "/v1/recordings?cursor="+page.NextCursor, nil, authed())
	if p2 := decodeJSON[RecordingList](t, body); resp.StatusCode != 200 || len(p2.Recordings) != 1 || p2.NextCursor != "" {
		t.Fatalf("second page = %d %s", resp.StatusCode, body)
	}

	resp, body = e.request(t, specValid, "GET", "/v1/recordings/rec_two", nil, authed())
	rec := decodeJSON[Recording](t, body)
	if resp.StatusCode != 200 || rec.ID != "rec_two" || rec.CallID != c.ID || rec.Format != "wav" ||
		rec.DurationMS != 100 || rec.AudioURL != "/v1/recordings/rec_two/audio" || strings.Contains(string(body), dir) {
		t.Errorf("GET /v1/recordings/rec_two = %d %s (no server path may show)", resp.StatusCode, body)
	}

	// The audio, whole and in ranges.
	resp, body = e.request(t, specValid, "GET", rec.AudioURL, nil, authed())
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "audio/wav" || !bytes.Equal(body, want["rec_two"]) ||
		resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("GET audio = %d %q, %d bytes (want %d)", resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(want["rec_two"]))
	}
	h := authed()
	h.Set("Range", "bytes=4-11")
	resp, body = e.request(t, specValid, "GET", rec.AudioURL, nil, h)
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want["rec_two"][4:12]) ||
		resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 4-11/%d", len(want["rec_two"])) {
		t.Errorf("GET audio Range 4-11 = %d %q %q", resp.StatusCode, resp.Header.Get("Content-Range"), body)
	}
	h.Set("Range", "bytes=99999-")
	resp, body = e.request(t, specValid, "GET", rec.AudioURL, nil, h)
	wantProblem(t, resp, body, http.StatusRequestedRangeNotSatisfiable, callcore.CodeBadRequest)

	// DELETE removes the row and the file.
	resp, body = e.request(t, specValid, "DELETE", "/v1/recordings/rec_two", nil, authed())
	if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
		t.Errorf("DELETE = %d %s", resp.StatusCode, body)
	}
	if _, err := os.Stat(filepath.Join(dir, "rec_two.wav")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the file is still there: %v", err)
	}
	for _, path := range []string{"/v1/recordings/rec_two", "/v1/recordings/rec_two/audio"} {
		resp, body = e.request(t, specValid, "GET", path, nil, authed())
		wantProblem(t, resp, body, 404, callcore.CodeNotFound)
	}
	resp, body = e.request(t, specValid, "DELETE", "/v1/recordings/rec_two", nil, authed())
	wantProblem(t, resp, body, 404, callcore.CodeNotFound)

	// A row whose file is gone: the audio is not_found, DELETE still works.
	if err := os.Remove(filepath.Join(dir, "rec_one.wav")); err != nil {
		t.Fatal(err)
	}
	resp, body = e.request(t, specValid, "GET", "/v1/recordings/rec_one/audio", nil, authed())
	wantProblem(t, resp, body, 404, callcore.CodeNotFound)
	if resp, _ = e.request(t, specValid, "DELETE", "/v1/recordings/rec_one", nil, authed()); resp.StatusCode != 204 {
		t.Errorf("DELETE without its file = %d", resp.StatusCode)
	}
}

func TestRegistrations(t *testing.T) {
	e := newEnv(t, keyedConfig())
	resp, body := e.request(t, specValid, "POST", "/v1/registrations", map[string]any{
		"registrar": "sip:registrar.example.com", "aor": "sip:alice@example.com",
		"username": "alice", "password": "s3cret-pass", "expires": 300,
	}, authed())
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/registrations = %d %s", resp.StatusCode, body)
	}
	reg := decodeJSON[Registration](t, body)
	if !strings.HasPrefix(reg.ID, "reg_") || reg.AOR != "sip:alice@example.com" || reg.Username != "alice" ||
		reg.Status != "registering" || resp.Header.Get("Location") != "/v1/registrations/"+reg.ID {
		t.Errorf("registration %+v, Location %q", reg, resp.Header.Get("Location"))
	}
	if strings.Contains(string(body), "s3cret") {
		t.Errorf("the password is echoed: %s", body)
	}
	cmd, ok := e.session.last().(*events.CmdRegister)
	if !ok || cmd.RegistrationID != reg.ID || string(cmd.Password) != "s3cret-pass" || cmd.Expires != 300 ||
		cmd.Registrar != "sip:registrar.example.com" {
		t.Errorf("the session got %+v", e.session.last())
	}

	resp, body = e.request(t, specValid, "GET", "/v1/registrations", nil, authed())
	if l := decodeJSON[RegistrationList](t, body); resp.StatusCode != 200 || len(l.Registrations) != 1 || l.Registrations[0].ID != reg.ID {
		t.Errorf("GET /v1/registrations = %d %s", resp.StatusCode, body)
	}
	resp, body = e.request(t, specValid, "GET", "/v1/registrations/"+reg.ID, nil, authed())
	if got := decodeJSON[Registration](t, body); resp.StatusCode != 200 || got.ID != reg.ID {
		t.Errorf("GET one = %d %s", resp.StatusCode, body)
	}

	resp, body = e.request(t, specValid, "DELETE", "/v1/registrations/"+reg.ID, nil, authed())
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE = %d %s", resp.StatusCode, body)
	}
	if u, ok := e.session.last().(*events.CmdUnregister); !ok || u.RegistrationID != reg.ID {
		t.Errorf("the session got %+v, want Unregister", e.session.last())
	}
	e.session.setReply(func(events.Event) error { return callcore.Errorf(callcore.CodeNotFound, "registration not found") })
	resp, body = e.request(t, specValid, "DELETE", "/v1/registrations/reg_unknown", nil, authed())
	wantProblem(t, resp, body, 404, callcore.CodeNotFound)
}
