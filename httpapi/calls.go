package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/callcore/store"
)

// HeaderIdempotencyKey names the header that makes POST /v1/calls safe to
// retry, and HeaderIdempotentReplayed the one that marks a replayed answer.
const (
	HeaderIdempotencyKey     = "Idempotency-Key"
	HeaderIdempotentReplayed = "Idempotent-Replayed"
)

// maxIdempotencyKey bounds an Idempotency-Key's length.
const maxIdempotencyKey = 255

// makeCallRequest is the body of POST /v1/calls.
type makeCallRequest struct {
	To           string            `json:"to"`
	From         string            `json:"from,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	WebhookURL   string            `json:"webhook_url,omitempty"`
	ClientState  string            `json:"client_state,omitempty"`
	RingTimeoutS *int              `json:"ring_timeout_s,omitempty"`
}

func (q *makeCallRequest) validate() error {
	q.To, q.From = strings.TrimSpace(q.To), strings.TrimSpace(q.From)
	if err := requireSIPURI("to", q.To); err != nil {
		return err
	}
	if q.From != "" && !callcore.ValidSIPURI(q.From) {
		return invalid("from", "from %q is not a sip: or sips: URI", q.From)
	}
	if len(q.Headers) > maxHeaders {
		return invalid("headers", "headers: at most %d, got %d", maxHeaders, len(q.Headers))
	}
	for name, v := range q.Headers {
		if !validHeaderName(name) {
			return invalid("headers", "header %q: only X- headers made of token characters may be set", name)
		}
		if !oneLine(v) || len(v) > maxHeaderValue {
			return invalid("headers", "header %s: the value must be one line of at most %d bytes", name, maxHeaderValue)
		}
	}
	if q.WebhookURL != "" && !callcore.ValidHTTPURL(q.WebhookURL) {
		return invalid("webhook_url", "webhook_url %q is not an absolute http or https URL", q.WebhookURL)
	}
	if len(q.ClientState) > maxClientState {
		return invalid("client_state", "client_state: at most %d bytes", maxClientState)
	}
	if q.RingTimeoutS != nil && (*q.RingTimeoutS < 1 || *q.RingTimeoutS > maxRingTimeoutS) {
		return invalid("ring_timeout_s", "ring_timeout_s %d: want 1 to %d", *q.RingTimeoutS, maxRingTimeoutS)
	}
	return nil
}

// command returns the MakeCall of the request for session id.
func (q *makeCallRequest) command(id string) *events.CmdMakeCall {
	cmd := &events.CmdMakeCall{SessionRef: events.SessionRef{SessionID: id}, To: q.To, From: q.From,
		WebhookURL: q.WebhookURL, ClientState: q.ClientState}
	if q.RingTimeoutS != nil {
		cmd.RingTimeoutS = *q.RingTimeoutS
	}
	names := make([]string, 0, len(q.Headers))
	for n := range q.Headers {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		cmd.Headers = append(cmd.Headers, events.Header{Name: n, Value: q.Headers[n]})
	}
	return cmd
}

// makeCall serves POST /v1/calls: 201 with the new call. With an
// Idempotency-Key, a retry of the same body answers the same call
// (Idempotent-Replayed: true) and another body under the same key is
// refused.
func (a *api) makeCall(w http.ResponseWriter, r *http.Request) {
	var q makeCallRequest
	if err := decodeBody(w, r, &q); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if err := q.validate(); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
	defer cancel()

	var id string
	var replayed bool
	var err error
	if key := r.Header.Get(HeaderIdempotencyKey); key == "" {
		id, err = a.originate(ctx, &q)
	} else if !validIdempotencyKey(key) {
		err = invalid(HeaderIdempotencyKey, "%s: want 1 to %d printable ASCII characters",
			HeaderIdempotencyKey, maxIdempotencyKey)
	} else {
		canon, _ := json.Marshal(&q) // strings, ints and a map of strings: it cannot fail
		// Keys are scoped by caller: two API keys never share one.
		id, replayed, err = a.idem.do(ctx, caller(r)+"\x00"+key, sha256.Sum256(canon), func() (string, error) {
			return a.originate(ctx, &q)
		})
	}
	if err == nil {
		err = a.store.Sync(ctx)
	}
	var c callcore.Call
	if err == nil {
		c, err = a.store.Call(ctx, id)
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	w.Header().Set("Location", "/v1/calls/"+c.ID)
	if replayed {
		w.Header().Set(HeaderIdempotentReplayed, "true")
	}
	writeJSON(w, http.StatusCreated, c)
}

// validIdempotencyKey reports whether k is 1 to 255 printable ASCII
// characters.
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > maxIdempotencyKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < ' ' || k[i] > '~' {
			return false
		}
	}
	return true
}

// originate mints the session id and sends MakeCall; it returns the id
// once the session accepted the call.
func (a *api) originate(ctx context.Context, q *makeCallRequest) (string, error) {
	id := callcore.NewSessionID(a.bus.Node())
	if _, err := a.bus.Request(ctx, q.command(id)); err != nil {
		return "", err
	}
	return id, nil
}

// CallList is the answer of GET /v1/calls.
type CallList struct {
	Calls      []callcore.Call `json:"calls"`
	NextCursor string          `json:"next_cursor,omitempty"`
}

// listCalls serves GET /v1/calls?state=&limit=&cursor=.
func (a *api) listCalls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryInt(q.Get("limit"), "limit", DefaultPageSize, 1, MaxPageSize)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	f := store.CallFilter{Limit: limit, Cursor: q.Get("cursor")}
	if s := q.Get("state"); s != "" {
		if !callStateOK(s) {
			writeError(w, r, a.log, invalid("state", "state %q is not a call state (%s)", s, joinStates()))
			return
		}
		f.State = callcore.CallState(s)
	}
	if !a.caughtUp(w, r) {
		return
	}
	calls, next, err := a.store.Calls(r.Context(), f)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if calls == nil {
		calls = []callcore.Call{}
	}
	writeJSON(w, http.StatusOK, CallList{Calls: calls, NextCursor: next})
}

func joinStates() string {
	var b strings.Builder
	for i, s := range callcore.CallStates() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(s))
	}
	return b.String()
}

// getCall serves GET /v1/calls/{id}.
func (a *api) getCall(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if !a.caughtUp(w, r) {
		return
	}
	c, err := a.store.Call(r.Context(), id)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// EventList is the answer of GET /v1/calls/{id}/events: the frames of
// DESIGN.md §6, as the store kept them, by seq.
type EventList struct {
	Events []json.RawMessage `json:"events"`
}

// callEvents serves GET /v1/calls/{id}/events?after_seq=&limit=.
func (a *api) callEvents(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	q := r.URL.Query()
	after, err := queryUint(q.Get("after_seq"), "after_seq")
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	limit, err := queryInt(q.Get("limit"), "limit", DefaultEventPage, 1, MaxEventPage)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if !a.caughtUp(w, r) {
		return
	}
	if _, err := a.store.Call(r.Context(), id); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	evs, err := a.store.CallEvents(r.Context(), id, after, limit)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	out := EventList{Events: make([]json.RawMessage, len(evs))}
	for i, e := range evs {
		out.Events[i] = e.Frame
	}
	writeJSON(w, http.StatusOK, out)
}

// The call commands. Each checks what it can without the session, sends
// the command, and answers 202 with the call once the session accepted it.

type emptyRequest struct{}

func (a *api) hangup(w http.ResponseWriter, r *http.Request) {
	a.simple(w, r, func(ref events.SessionRef) events.Event { return &events.CmdHangupCall{SessionRef: ref} })
}

func (a *api) answer(w http.ResponseWriter, r *http.Request) {
	a.simple(w, r, func(ref events.SessionRef) events.Event { return &events.CmdAnswerCall{SessionRef: ref} })
}

func (a *api) hold(w http.ResponseWriter, r *http.Request) {
	a.simple(w, r, func(ref events.SessionRef) events.Event { return &events.CmdHoldCall{SessionRef: ref} })
}

func (a *api) resume(w http.ResponseWriter, r *http.Request) {
	a.simple(w, r, func(ref events.SessionRef) events.Event { return &events.CmdResumeCall{SessionRef: ref} })
}

func (a *api) stopPlay(w http.ResponseWriter, r *http.Request) {
	a.simple(w, r, func(ref events.SessionRef) events.Event { return &events.CmdStopAudio{SessionRef: ref} })
}

func (a *api) stopRecord(w http.ResponseWriter, r *http.Request) {
	a.simple(w, r, func(ref events.SessionRef) events.Event { return &events.CmdStopRecording{SessionRef: ref} })
}

// simple serves a command without parameters: the body is empty or {}.
func (a *api) simple(w http.ResponseWriter, r *http.Request, mk func(events.SessionRef) events.Event) {
	var q emptyRequest
	a.withBody(w, r, &q, func(id string) (events.Event, error) {
		return mk(events.SessionRef{SessionID: id}), nil
	}, nil)
}

type rejectRequest struct {
	Status *int   `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
}

var rejectFields = map[string]string{"status_code": "status"}

func (a *api) reject(w http.ResponseWriter, r *http.Request) {
	var q rejectRequest
	a.withBody(w, r, &q, func(id string) (events.Event, error) {
		cmd := &events.CmdRejectCall{SessionRef: events.SessionRef{SessionID: id}, Reason: q.Reason}
		if q.Status != nil {
			if *q.Status < 400 || *q.Status > 699 {
				return nil, invalid("status", "status %d: want a final error status, 400 to 699", *q.Status)
			}
			cmd.StatusCode = *q.Status
		}
		if !oneLine(q.Reason) || len(q.Reason) > maxReason {
			return nil, invalid("reason", "reason: one line of at most %d bytes", maxReason)
		}
		return cmd, nil
	}, rejectFields)
}

type transferRequest struct {
	Target        string `json:"target"`
	Type          string `json:"type,omitempty"`
	ConsultCallID string `json:"consult_call_id,omitempty"`
}

var transferFields = map[string]string{"transfer_type": "type", "consult_session_id": "consult_call_id"}

func (a *api) transfer(w http.ResponseWriter, r *http.Request) {
	var q transferRequest
	a.withBody(w, r, &q, func(id string) (events.Event, error) {
		q.Target = strings.TrimSpace(q.Target)
		if err := requireSIPURI("target", q.Target); err != nil {
			return nil, err
		}
		typ := q.Type
		if typ == "" {
			typ = events.TransferBlind
		}
		switch {
		case typ != events.TransferBlind && typ != events.TransferAttended:
			return nil, invalid("type", "type %q: want blind or attended", q.Type)
		case typ == events.TransferBlind && q.ConsultCallID != "":
			return nil, invalid("consult_call_id", "consult_call_id is only for an attended transfer")
		case typ == events.TransferAttended && !validID(q.ConsultCallID):
			return nil, invalid("consult_call_id", "an attended transfer needs consult_call_id, the id of the consultation call")
		}
		return &events.CmdTransferCall{SessionRef: events.SessionRef{SessionID: id}, Target: q.Target,
			TransferType: typ, ConsultSessionID: q.ConsultCallID}, nil
	}, transferFields)
}

type dtmfRequest struct {
	Digits     string `json:"digits"`
	Method     string `json:"method,omitempty"`
	DurationMS *int   `json:"duration_ms,omitempty"`
}

func (a *api) dtmf(w http.ResponseWriter, r *http.Request) {
	var q dtmfRequest
	a.withBody(w, r, &q, func(id string) (events.Event, error) {
		if !validDigits(q.Digits) {
			return nil, invalid("digits", "digits %q: want 1 to %d of 0-9 * # A-D", q.Digits, maxDigits)
		}
		if q.Method != "" && q.Method != events.DtmfMethodRFC4733 && q.Method != events.DtmfMethodInfo {
			return nil, invalid("method", "method %q: want rfc4733 or info", q.Method)
		}
		cmd := &events.CmdSendDtmf{SessionRef: events.SessionRef{SessionID: id}, Digits: q.Digits, Method: q.Method}
		if q.DurationMS != nil {
			if *q.DurationMS < minDtmfMS || *q.DurationMS > maxDtmfMS {
				return nil, invalid("duration_ms", "duration_ms %d: want %d to %d", *q.DurationMS, minDtmfMS, maxDtmfMS)
			}
			cmd.DurationMS = *q.DurationMS
		}
		return cmd, nil
	}, nil)
}

type playRequest struct {
	File string `json:"file,omitempty"`
	URL  string `json:"url,omitempty"`
	Loop int    `json:"loop,omitempty"`
}

var playFields = map[string]string{"loop_count": "loop"}

func (a *api) play(w http.ResponseWriter, r *http.Request) {
	var q playRequest
	a.withBody(w, r, &q, func(id string) (events.Event, error) {
		switch {
		case q.File != "" && q.URL != "":
			return nil, invalid("file", "give a file or a url, not both")
		case q.File == "" && q.URL == "":
			return nil, invalid("file", "a file or a url is required")
		case q.File != "" && !callcore.ValidMediaFile(q.File):
			return nil, invalid("file", "file %q: want a relative path below the media directory", q.File)
		case q.URL != "" && !callcore.ValidHTTPURL(q.URL):
			return nil, invalid("url", "url %q is not an absolute http or https URL", q.URL)
		case q.Loop < 0:
			return nil, invalid("loop", "loop %d: want 0 (once) or more", q.Loop)
		}
		return &events.CmdPlayAudio{SessionRef: events.SessionRef{SessionID: id}, File: q.File, URL: q.URL,
			LoopCount: q.Loop}, nil
	}, playFields)
}

type recordRequest struct {
	MaxDurationS int `json:"max_duration_s,omitempty"`
}

func (a *api) record(w http.ResponseWriter, r *http.Request) {
	var q recordRequest
	a.withBody(w, r, &q, func(id string) (events.Event, error) {
		if q.MaxDurationS < 0 {
			return nil, invalid("max_duration_s", "max_duration_s %d: want 0 (no limit) or more", q.MaxDurationS)
		}
		return &events.CmdStartRecording{SessionRef: events.SessionRef{SessionID: id},
			MaxDurationS: q.MaxDurationS}, nil
	}, nil)
}

type bridgeRequest struct {
	CallID string `json:"call_id"`
}

var bridgeFields = map[string]string{"peer_session_id": "call_id"}

func (a *api) bridge(w http.ResponseWriter, r *http.Request) {
	var q bridgeRequest
	a.withBody(w, r, &q, func(id string) (events.Event, error) {
		switch {
		case q.CallID == "":
			return nil, invalid("call_id", "call_id is required: the call to bridge with")
		case !validID(q.CallID):
			return nil, invalid("call_id", "call_id %q is not a call id", q.CallID)
		case q.CallID == id:
			return nil, invalid("call_id", "a call cannot be bridged with itself")
		}
		return &events.CmdBridgeCalls{SessionRef: events.SessionRef{SessionID: id}, PeerSessionID: q.CallID}, nil
	}, bridgeFields)
}

// withBody decodes the body into q, builds the command with mk (which
// validates q), sends it, and answers 202 with the call. fields maps the
// command's field names to the request's, for the session's
// validation_failed errors.
func (a *api) withBody(w http.ResponseWriter, r *http.Request, q any,
	mk func(id string) (events.Event, error), fields map[string]string) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if err := decodeBody(w, r, q); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	cmd, err := mk(id)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
	defer cancel()
	if _, err := a.bus.Request(ctx, cmd); err != nil {
		writeError(w, r, a.log, a.commandError(ctx, id, renameField(err, fields)))
		return
	}
	if err := a.store.Sync(ctx); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	c, err := a.store.Call(ctx, id)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusAccepted, c)
}

// commandError explains a not_found from the session about a call the
// store still has: the session forgets ended calls (and every call across
// a restart), so the call exists but can take no command.
func (a *api) commandError(ctx context.Context, id string, err error) error {
	if callcore.ErrorCode(err) != callcore.CodeNotFound {
		return err
	}
	c, serr := a.store.Call(ctx, id)
	if serr != nil {
		return err
	}
	return callcore.Errorf(callcore.CodeInvalidState, "call %s is %s: it takes no more commands", id, c.State)
}

// renameField renames the Field of a validation_failed error from the
// command's name to the request's.
func renameField(err error, fields map[string]string) error {
	var ce *callcore.Error
	if !errors.As(err, &ce) || ce.Field == "" {
		return err
	}
	if n, ok := fields[ce.Field]; ok {
		cp := *ce
		cp.Field = n
		return &cp
	}
	return err
}

// caughtUp waits until the store holds every event published before the
// request, so that a read sees what the commands before it did (the store
// commits in batches, up to 100 ms apart). When the store cannot catch up
// within the command timeout it answers 503 and returns false.
func (a *api) caughtUp(w http.ResponseWriter, r *http.Request) bool {
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
	defer cancel()
	if err := a.store.Sync(ctx); err != nil {
		if r.Context().Err() == nil {
			err = &callcore.Error{Code: callcore.CodeUnavailable, Err: err,
				Message: "the call history is behind the bus; retry later"}
		}
		writeError(w, r, a.log, err)
		return false
	}
	return true
}
