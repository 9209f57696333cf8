package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore"
)

// TestBadInput sends each kind of bad request and checks the precise
// answer: status, code and field. Requests the spec can describe must be
// invalid per openapi.yaml too (specInvalid), so the contract states
// every rule the server enforces.
func TestBadInput(t *testing.T) {
	e := newEnv(t, keyedConfig())
	c := e.makeCall(t, "sip:bob@example.com")
	call := "/v1/calls/" + c.ID
	big := `{"to":"sip:a@b","client_state":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	for _, tc := range []struct {
		name         string
		mode         specMode
		method, path string
		body         any
		contentType  string
		status       int
		code         callcore.Code
		field        string
		detail       string // a part of the detail, when it matters
	}{
		{"body=malformed", specInvalid, "POST", "/v1/calls", `{"to": "sip:a@b",}`, "", 400, callcore.CodeBadRequest, "", "offset 18"},
		{"body=truncated", specInvalid, "POST", "/v1/calls", `{"to": "sip:a@b"`, "", 400, callcore.CodeBadRequest, "", "ends early"},
		{"body=trailing", specSkip, "POST", "/v1/calls", `{"to": "sip:a@b"} {"to": "sip:c@d"}`, "", 400, callcore.CodeBadRequest, "", "trailing data"},
		{"body=array", specInvalid, "POST", "/v1/calls", `["sip:a@b"]`, "", 422, callcore.CodeValidationFailed, "", "JSON object"},
		{"body=too-large", specInvalid, "POST", "/v1/calls", big, "", 413, callcore.CodeTooLarge, "", "65536"},
		{"content-type=text", specInvalid, "POST", "/v1/calls", `{"to":"sip:a@b"}`, "text/plain", 400, callcore.CodeBadRequest, "", "application/json"},
		{"field=unknown", specInvalid, "POST", "/v1/calls", `{"to":"sip:a@b","colour":"red"}`, "", 422, callcore.CodeValidationFailed, "colour", ""},
		{"field=to/missing", specInvalid, "POST", "/v1/calls", `{}`, "", 422, callcore.CodeValidationFailed, "to", ""},
		{"field=to/not-sip", specInvalid, "POST", "/v1/calls", `{"to":"tel:+123"}`, "", 422, callcore.CodeValidationFailed, "to", ""},
		{"field=to/name-addr", specInvalid, "POST", "/v1/calls", `{"to":"<sip:a@b>"}`, "", 422, callcore.CodeValidationFailed, "to", ""},
		{"field=to/wrong-type", specInvalid, "POST", "/v1/calls", `{"to":42}`, "", 422, callcore.CodeValidationFailed, "to", "want a string"},
		{"field=from", specInvalid, "POST", "/v1/calls", `{"to":"sip:a@b","from":"alice"}`, "", 422, callcore.CodeValidationFailed, "from", ""},
		{"field=headers/not-x", specInvalid, "POST", "/v1/calls", `{"to":"sip:a@b","headers":{"Via":"x"}}`, "", 422, callcore.CodeValidationFailed, "headers", ""},
		{"field=headers/two-lines", specSkip, "POST", "/v1/calls", `{"to":"sip:a@b","headers":{"X-A":"1\r\nVia: x"}}`, "", 422, callcore.CodeValidationFailed, "headers", ""},
		{"field=webhook_url", specInvalid, "POST", "/v1/calls", `{"to":"sip:a@b","webhook_url":"ftp://x"}`, "", 422, callcore.CodeValidationFailed, "webhook_url", ""},
		{"field=ring_timeout_s/zero", specInvalid, "POST", "/v1/calls", `{"to":"sip:a@b","ring_timeout_s":0}`, "", 422, callcore.CodeValidationFailed, "ring_timeout_s", ""},
		{"field=ring_timeout_s/big", specInvalid, "POST", "/v1/calls", `{"to":"sip:a@b","ring_timeout_s":601}`, "", 422, callcore.CodeValidationFailed, "ring_timeout_s", ""},
		{"field=ring_timeout_s/fraction", specInvalid, "POST", "/v1/calls", `{"to":"sip:a@b","ring_timeout_s":1.5}`, "", 422, callcore.CodeValidationFailed, "ring_timeout_s", ""},
		{"field=digits/letter", specInvalid, "POST", call + "/dtmf", `{"digits":"12E"}`, "", 422, callcore.CodeValidationFailed, "digits", ""},
		{"field=digits/empty", specInvalid, "POST", call + "/dtmf", `{"digits":""}`, "", 422, callcore.CodeValidationFailed, "digits", ""},
		{"field=digits/long", specInvalid, "POST", call + "/dtmf", fmt.Sprintf(`{"digits":%q}`, strings.Repeat("1", 65)), "", 422, callcore.CodeValidationFailed, "digits", ""},
		{"field=method", specInvalid, "POST", call + "/dtmf", `{"digits":"1","method":"inband"}`, "", 422, callcore.CodeValidationFailed, "method", ""},
		{"field=duration_ms/short", specInvalid, "POST", call + "/dtmf", `{"digits":"1","duration_ms":39}`, "", 422, callcore.CodeValidationFailed, "duration_ms", ""},
		{"field=duration_ms/long", specInvalid, "POST", call + "/dtmf", `{"digits":"1","duration_ms":5001}`, "", 422, callcore.CodeValidationFailed, "duration_ms", ""},
		{"field=target", specInvalid, "POST", call + "/transfer", `{"target":"carol"}`, "", 422, callcore.CodeValidationFailed, "target", ""},
		{"field=type", specInvalid, "POST", call + "/transfer", `{"target":"sip:a@b","type":"warm"}`, "", 422, callcore.CodeValidationFailed, "type", ""},
		{"field=consult_call_id/blind", specSkip, "POST", call + "/transfer", `{"target":"sip:a@b","consult_call_id":"t.x"}`, "", 422, callcore.CodeValidationFailed, "consult_call_id", ""},
		{"field=consult_call_id/missing", specSkip, "POST", call + "/transfer", `{"target":"sip:a@b","type":"attended"}`, "", 422, callcore.CodeValidationFailed, "consult_call_id", ""},
		{"field=status/low", specInvalid, "POST", call + "/reject", `{"status":399}`, "", 422, callcore.CodeValidationFailed, "status", ""},
		{"field=status/high", specInvalid, "POST", call + "/reject", `{"status":700}`, "", 422, callcore.CodeValidationFailed, "status", ""},
		{"field=reason", specSkip, "POST", call + "/reject", `{"reason":"a\nb"}`, "", 422, callcore.CodeValidationFailed, "reason", ""},
		{"field=loop", specInvalid, "POST", call + "/play", `{"file":"a.wav","loop":-1}`, "", 422, callcore.CodeValidationFailed, "loop", ""},
		{"field=file/both", specInvalid, "POST", call + "/play", `{"file":"a.wav","url":"http://x/a.wav"}`, "", 422, callcore.CodeValidationFailed, "file", ""},
		{"field=file/none", specInvalid, "POST", call + "/play", `{}`, "", 422, callcore.CodeValidationFailed, "file", ""},
		{"field=file/escape", specSkip, "POST", call + "/play", `{"file":"../../etc/passwd"}`, "", 422, callcore.CodeValidationFailed, "file", ""},
		{"field=file/absolute", specSkip, "POST", call + "/play", `{"file":"/etc/passwd"}`, "", 422, callcore.CodeValidationFailed, "file", ""},
		{"field=url", specInvalid, "POST", call + "/play", `{"url":"file:///etc/passwd"}`, "", 422, callcore.CodeValidationFailed, "url", ""},
		{"field=max_duration_s", specInvalid, "POST", call + "/record", `{"max_duration_s":-1}`, "", 422, callcore.CodeValidationFailed, "max_duration_s", ""},
		{"field=call_id/missing", specInvalid, "POST", call + "/bridge", `{}`, "", 422, callcore.CodeValidationFailed, "call_id", ""},
		{"field=call_id/self", specSkip, "POST", call + "/bridge", `{"call_id":"` + c.ID + `"}`, "", 422, callcore.CodeValidationFailed, "call_id", ""},
		{"field=call_id/path", specInvalid, "POST", call + "/bridge", `{"call_id":"../x"}`, "", 422, callcore.CodeValidationFailed, "call_id", ""},
		{"empty-body/with-field", specInvalid, "POST", call + "/hold", `{"force":true}`, "", 422, callcore.CodeValidationFailed, "force", ""},
		{"id=path-characters/recording", specInvalid, "GET", "/v1/recordings/..%2F..%2Fetc%2Fpasswd", nil, "", 422, callcore.CodeValidationFailed, "id", ""},
		{"id=path-characters/audio", specInvalid, "GET", "/v1/recordings/..%2Fsecret/audio", nil, "", 422, callcore.CodeValidationFailed, "id", ""},
		{"id=dot-first/call", specInvalid, "GET", "/v1/calls/.hidden", nil, "", 422, callcore.CodeValidationFailed, "id", ""},
		{"id=space/call", specInvalid, "POST", "/v1/calls/a%20b/hold", nil, "", 422, callcore.CodeValidationFailed, "id", ""},
		{"id=too-long/registration", specInvalid, "GET", "/v1/registrations/" + strings.Repeat("r", 129), nil, "", 422, callcore.CodeValidationFailed, "id", ""},
		{"query=state", specInvalid, "GET", "/v1/calls?state=ended", nil, "", 422, callcore.CodeValidationFailed, "state", ""},
		{"query=limit/zero", specInvalid, "GET", "/v1/calls?limit=0", nil, "", 422, callcore.CodeValidationFailed, "limit", ""},
		{"query=limit/big", specInvalid, "GET", "/v1/recordings?limit=501", nil, "", 422, callcore.CodeValidationFailed, "limit", ""},
		{"query=limit/word", specInvalid, "GET", "/v1/calls?limit=ten", nil, "", 422, callcore.CodeValidationFailed, "limit", ""},
		{"query=cursor", specSkip, "GET", "/v1/calls?cursor=not-a-cursor!", nil, "", 422, callcore.CodeValidationFailed, "cursor", ""},
		{"query=after_seq", specInvalid, "GET", call + "/events?after_seq=-1", nil, "", 422, callcore.CodeValidationFailed, "after_seq", ""},
		{"field=registrar", specInvalid, "POST", "/v1/registrations", `{"registrar":"example.com","aor":"sip:a@b"}`, "", 422, callcore.CodeValidationFailed, "registrar", ""},
		{"field=aor", specInvalid, "POST", "/v1/registrations", `{"registrar":"sip:example.com"}`, "", 422, callcore.CodeValidationFailed, "aor", ""},
		{"field=expires", specInvalid, "POST", "/v1/registrations", `{"registrar":"sip:r","aor":"sip:a@r","expires":0}`, "", 422, callcore.CodeValidationFailed, "expires", ""},
		{"field=ttl_s", specInvalid, "POST", "/v1/tokens", `{"ttl_s":3601}`, "", 422, callcore.CodeValidationFailed, "ttl_s", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := authed()
			if tc.contentType != "" {
				h.Set("Content-Type", tc.contentType)
			}
			before := e.session.count("HoldCall") + e.session.count("MakeCall")
			resp, body := e.request(t, tc.mode, tc.method, tc.path, tc.body, h)
			p := wantProblem(t, resp, body, tc.status, tc.code)
			if p.Field != tc.field {
				t.Errorf("field = %q, want %q (%s)", p.Field, tc.field, p.Detail)
			}
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail %q lacks %q", p.Detail, tc.detail)
			}
			if after := e.session.count("HoldCall") + e.session.count("MakeCall"); after != before {
				t.Error("a refused request reached the session")
			}
		})
	}
}

func TestUnknownResources(t *testing.T) {
	e := newEnv(t, keyedConfig())
	for _, path := range []string{"/v1/calls/t.nope", "/v1/recordings/rec_nope", "/v1/recordings/rec_nope/audio", "/v1/registrations/reg_nope"} {
		resp, body := e.request(t, specValid, "GET", path, nil, authed())
		wantProblem(t, resp, body, 404, callcore.CodeNotFound)
	}
	resp, body := e.request(t, specValid, "DELETE", "/v1/recordings/rec_nope", nil, authed())
	wantProblem(t, resp, body, 404, callcore.CodeNotFound)
}

func TestHeadAnswersLikeGet(t *testing.T) {
	e := newEnv(t, keyedConfig())
	c := e.makeCall(t, "sip:bob@example.com")
	resp, body := e.request(t, specOff, "HEAD", "/v1/calls/"+c.ID, nil, authed())
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD = %d, %d bytes, %q", resp.StatusCode, len(body), resp.Header.Get("Content-Type"))
	}
}
