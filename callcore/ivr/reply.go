package ivr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/callbus/callbus/callcore"
)

// Limits of an app's reply.
const (
	// MaxReplyBytes bounds a reply's body; a longer one is refused whole.
	MaxReplyBytes = 64 << 10
	// MaxActions bounds the actions of one reply, and MaxPrompt those of
	// one gather's prompt.
	MaxActions = 100
	MaxPrompt  = 20
	// MaxTextBytes bounds the text of a say and a tag's client_state.
	MaxTextBytes = 4096
	// MaxDigits bounds a gather's num_digits.
	MaxDigits = 64
)

// Action is one verb of an app's reply, decoded and checked by
// DecodeReply: *Answer, *Reject, *Hangup, *Play, *Say, *Pause, *Gather,
// *Record, *Transfer, *Dial, *Redirect or *Tag.
type Action interface {
	// Verb returns the verb's name as the app wrote it ("gather").
	Verb() string
}

// Answer answers a ringing inbound call.
type Answer struct{}

// Reject refuses a ringing inbound call with Status (400–699; 603 when
// the app gives none).
type Reject struct {
	Status int `json:"status,omitempty"`
}

// Hangup ends the call.
type Hangup struct{}

// Play plays File (relative to CALLBUS_MEDIA_DIR) or URL (http or https),
// exactly one of them, Loop times more (0: once).
type Play struct {
	File string `json:"file,omitempty"`
	URL  string `json:"url,omitempty"`
	Loop int    `json:"loop,omitempty"`
}

// Say speaks Text with the synthesizer, in Voice and Language when given.
type Say struct {
	Text     string `json:"text"`
	Voice    string `json:"voice,omitempty"`
	Language string `json:"language,omitempty"`
}

// Pause waits Seconds (more than 0, at most 600) before the next action.
type Pause struct {
	Seconds float64 `json:"seconds"`
}

// Gather collects digits, RFC 4733 or SIP INFO, while its Prompt (play and
// say only) plays; the first digit stops the prompt (barge-in). It ends
// after NumDigits digits (0: no count), on FinishOnKey (one of 0-9 * #,
// not collected), after TimeoutS without a first digit or
// InterDigitTimeoutS between digits, and posts gather.result to ActionURL
// (the call's webhook URL when empty).
type Gather struct {
	NumDigits          int      `json:"num_digits,omitempty"`
	FinishOnKey        string   `json:"finish_on_key,omitempty"`
	TimeoutS           int      `json:"timeout_s,omitempty"`
	InterDigitTimeoutS int      `json:"inter_digit_timeout_s,omitempty"`
	Prompt             []Action `json:"-"`
	ActionURL          string   `json:"action_url,omitempty"`
}

// Record records the call for at most MaxDurationS seconds, until
// FinishOnKey or SilenceTimeoutS seconds of silence, after a beep when
// Beep is set, and posts record.result to ActionURL (the call's webhook URL
// when empty).
type Record struct {
	MaxDurationS    int    `json:"max_duration_s,omitempty"`
	FinishOnKey     string `json:"finish_on_key,omitempty"`
	SilenceTimeoutS int    `json:"silence_timeout_s,omitempty"`
	Beep            bool   `json:"beep,omitempty"`
	ActionURL       string `json:"action_url,omitempty"`
}

// Transfer transfers the call to Target, a SIP URI (REFER).
type Transfer struct {
	Target string `json:"target"`
}

// Dial places a new leg to To (a SIP URI) from From (a SIP URI, optional),
// plays its ringback or early media to the caller, bridges the two on
// answer, and posts dial.result to ActionURL after TimeoutS seconds
// unanswered or when the new leg ends.
type Dial struct {
	To        string `json:"to"`
	From      string `json:"from,omitempty"`
	TimeoutS  int    `json:"timeout_s,omitempty"`
	ActionURL string `json:"action_url,omitempty"`
}

// Redirect fetches the next actions from URL, dropping the current ones.
type Redirect struct {
	URL string `json:"url"`
}

// Tag sets the call's client_state, carried on every later request.
type Tag struct {
	ClientState string `json:"client_state"`
}

// Verb returns "answer".
func (*Answer) Verb() string { return "answer" }

// Verb returns "reject".
func (*Reject) Verb() string { return "reject" }

// Verb returns "hangup".
func (*Hangup) Verb() string { return "hangup" }

// Verb returns "play".
func (*Play) Verb() string { return "play" }

// Verb returns "say".
func (*Say) Verb() string { return "say" }

// Verb returns "pause".
func (*Pause) Verb() string { return "pause" }

// Verb returns "gather".
func (*Gather) Verb() string { return "gather" }

// Verb returns "record".
func (*Record) Verb() string { return "record" }

// Verb returns "transfer".
func (*Transfer) Verb() string { return "transfer" }

// Verb returns "dial".
func (*Dial) Verb() string { return "dial" }

// Verb returns "redirect".
func (*Redirect) Verb() string { return "redirect" }

// Verb returns "tag".
func (*Tag) Verb() string { return "tag" }

// newAction returns a zero action of verb, or nil for an unknown verb.
func newAction(verb string) Action {
	switch verb {
	case "answer":
		return &Answer{}
	case "reject":
		return &Reject{}
	case "hangup":
		return &Hangup{}
	case "play":
		return &Play{}
	case "say":
		return &Say{}
	case "pause":
		return &Pause{}
	case "gather":
		return &Gather{}
	case "record":
		return &Record{}
	case "transfer":
		return &Transfer{}
	case "dial":
		return &Dial{}
	case "redirect":
		return &Redirect{}
	case "tag":
		return &Tag{}
	}
	return nil
}

// ReplyError is why an app's reply was refused, naming the field at
// fault as a JSON path ("actions[2].num_digits"), empty for the body as a
// whole.
type ReplyError struct {
	Field   string
	Message string
}

// Error returns the field and the message.
func (e *ReplyError) Error() string {
	if e.Field == "" {
		return "ivr: reply: " + e.Message
	}
	return "ivr: reply: " + e.Field + ": " + e.Message
}

func replyErr(field, format string, args ...any) *ReplyError {
	return &ReplyError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// DecodeReply decodes and checks an app's reply,
// {"actions":[{"verb":"answer"},{"verb":"gather","num_digits":1,…},…]},
// and returns its actions in order; an empty body or {} is no action. It
// returns a *ReplyError naming the field at fault for a body over
// MaxReplyBytes, not JSON, with an unknown or missing field, an unknown
// verb, or a value out of its range; a reply is taken whole or not at all.
func DecodeReply(body []byte) ([]Action, error) {
	if len(body) > MaxReplyBytes {
		return nil, replyErr("", "%d bytes, more than the %d allowed", len(body), MaxReplyBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	var reply struct {
		Actions []json.RawMessage `json:"actions"`
	}
	if err := strictDecode(body, &reply); err != nil {
		return nil, replyErr(jsonField("", err), "%s", jsonMessage(err))
	}
	if len(reply.Actions) > MaxActions {
		return nil, replyErr("actions", "%d actions, more than the %d allowed", len(reply.Actions), MaxActions)
	}
	out := make([]Action, 0, len(reply.Actions))
	for i, raw := range reply.Actions {
		a, err := decodeAction(fmt.Sprintf("actions[%d]", i), raw, false)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// decodeAction decodes one action at path; inPrompt allows play and say
// only.
func decodeAction(at string, raw json.RawMessage, inPrompt bool) (Action, error) {
	var head struct {
		Verb   *string         `json:"verb"`
		Prompt json.RawMessage `json:"prompt"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, replyErr(at, "not an object: %s", jsonMessage(err))
	}
	if head.Verb == nil {
		return nil, replyErr(at+".verb", "is required")
	}
	a := newAction(*head.Verb)
	if a == nil {
		return nil, replyErr(at+".verb", "unknown verb %q", *head.Verb)
	}
	if inPrompt {
		if _, ok := a.(*Play); !ok {
			if _, ok := a.(*Say); !ok {
				return nil, replyErr(at+".verb", "a prompt plays or says; %q is not allowed in it", *head.Verb)
			}
		}
	}
	// The verb and a gather's prompt are read above; the verb's own fields
	// are decoded strictly, so that a misspelt field is an error, not a
	// default.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, replyErr(at, "not an object: %s", jsonMessage(err))
	}
	delete(fields, "verb")
	g, isGather := a.(*Gather)
	if isGather {
		delete(fields, "prompt")
	}
	rest, _ := json.Marshal(fields) // a map of raw messages always marshals
	if err := strictDecode(rest, a); err != nil {
		return nil, replyErr(jsonField(at, err), "%s", jsonMessage(err))
	}
	if isGather && len(head.Prompt) > 0 && !bytes.Equal(bytes.TrimSpace(head.Prompt), []byte("null")) {
		var prompt []json.RawMessage
		if err := json.Unmarshal(head.Prompt, &prompt); err != nil {
			return nil, replyErr(at+".prompt", "not a list of actions")
		}
		if len(prompt) > MaxPrompt {
			return nil, replyErr(at+".prompt", "%d actions, more than the %d allowed", len(prompt), MaxPrompt)
		}
		for i, p := range prompt {
			pa, err := decodeAction(fmt.Sprintf("%s.prompt[%d]", at, i), p, true)
			if err != nil {
				return nil, err
			}
			g.Prompt = append(g.Prompt, pa)
		}
	}
	if err := check(at, a); err != nil {
		return nil, err
	}
	return a, nil
}

// check validates an action's values and fills in its defaults.
func check(at string, a Action) error {
	switch v := a.(type) {
	case *Reject:
		if v.Status == 0 {
			v.Status = 603
		}
		if v.Status < 400 || v.Status > 699 {
			return replyErr(at+".status", "%d is not a SIP failure status (400-699)", v.Status)
		}
	case *Play:
		switch {
		case (v.File == "") == (v.URL == ""):
			return replyErr(at+".file", "exactly one of file and url is required")
		case v.File != "" && !callcore.ValidMediaFile(v.File):
			return replyErr(at+".file", "%q is not a relative path inside the media directory", v.File)
		case v.URL != "" && !callcore.ValidHTTPURL(v.URL):
			return replyErr(at+".url", "%q is not an absolute http or https URL", v.URL)
		case v.Loop < 0:
			return replyErr(at+".loop", "%d is negative", v.Loop)
		}
	case *Say:
		switch {
		case strings.TrimSpace(v.Text) == "":
			return replyErr(at+".text", "is required")
		case len(v.Text) > MaxTextBytes:
			return replyErr(at+".text", "%d bytes, more than the %d allowed", len(v.Text), MaxTextBytes)
		case !word(v.Voice):
			return replyErr(at+".voice", "%q is not a voice name", v.Voice)
		case !word(v.Language):
			return replyErr(at+".language", "%q is not a language tag", v.Language)
		}
	case *Pause:
		if !(v.Seconds > 0 && v.Seconds <= 600) {
			return replyErr(at+".seconds", "%v is not more than 0 and at most 600", v.Seconds)
		}
	case *Gather:
		switch {
		case v.NumDigits < 0 || v.NumDigits > MaxDigits:
			return replyErr(at+".num_digits", "%d is not 0-%d", v.NumDigits, MaxDigits)
		case !finishKey(v.FinishOnKey):
			return replyErr(at+".finish_on_key", "%q is not one of 0-9, * or #", v.FinishOnKey)
		case v.TimeoutS < 0 || v.TimeoutS > 600:
			return replyErr(at+".timeout_s", "%d is not 1-600", v.TimeoutS)
		case v.InterDigitTimeoutS < 0 || v.InterDigitTimeoutS > 60:
			return replyErr(at+".inter_digit_timeout_s", "%d is not 1-60", v.InterDigitTimeoutS)
		case v.ActionURL != "" && !callcore.ValidHTTPURL(v.ActionURL):
			return replyErr(at+".action_url", "%q is not an absolute http or https URL", v.ActionURL)
		}
		if v.TimeoutS == 0 {
			v.TimeoutS = 5
		}
		if v.InterDigitTimeoutS == 0 {
			v.InterDigitTimeoutS = 5
		}
	case *Record:
		switch {
		case v.MaxDurationS < 0 || v.MaxDurationS > 3600:
			return replyErr(at+".max_duration_s", "%d is not 1-3600", v.MaxDurationS)
		case !finishKey(v.FinishOnKey):
			return replyErr(at+".finish_on_key", "%q is not one of 0-9, * or #", v.FinishOnKey)
		case v.SilenceTimeoutS < 0 || v.SilenceTimeoutS > 60:
			return replyErr(at+".silence_timeout_s", "%d is not 0-60", v.SilenceTimeoutS)
		case v.ActionURL != "" && !callcore.ValidHTTPURL(v.ActionURL):
			return replyErr(at+".action_url", "%q is not an absolute http or https URL", v.ActionURL)
		}
		if v.MaxDurationS == 0 {
			v.MaxDurationS = 60
		}
	case *Transfer:
		if !callcore.ValidSIPURI(v.Target) {
			return replyErr(at+".target", "%q is not a SIP URI", v.Target)
		}
	case *Dial:
		switch {
		case !callcore.ValidSIPURI(v.To):
			return replyErr(at+".to", "%q is not a SIP URI", v.To)
		case v.From != "" && !callcore.ValidSIPURI(v.From):
			return replyErr(at+".from", "%q is not a SIP URI", v.From)
		case v.TimeoutS < 0 || v.TimeoutS > 600:
			return replyErr(at+".timeout_s", "%d is not 1-600", v.TimeoutS)
		case v.ActionURL != "" && !callcore.ValidHTTPURL(v.ActionURL):
			return replyErr(at+".action_url", "%q is not an absolute http or https URL", v.ActionURL)
		}
		if v.TimeoutS == 0 {
			v.TimeoutS = 30
		}
	case *Redirect:
		if !callcore.ValidHTTPURL(v.URL) {
			return replyErr(at+".url", "%q is not an absolute http or https URL", v.URL)
		}
	case *Tag:
		if len(v.ClientState) > MaxTextBytes {
			return replyErr(at+".client_state", "%d bytes, more than the %d allowed", len(v.ClientState), MaxTextBytes)
		}
	}
	return nil
}

// strictDecode decodes one JSON value into v, refusing unknown fields and
// anything after the value.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errTrailing
	}
	return nil
}

var errTrailing = errors.New("data after the JSON value")

// jsonField names the field a decoding error is about, under at.
func jsonField(at string, err error) string {
	join := func(f string) string {
		if at == "" {
			return f
		}
		return at + "." + f
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return join(te.Field)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return join(strings.Trim(f, `"`))
	}
	return at
}

// jsonMessage says what was wrong, without encoding/json's prefix.
func jsonMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("a JSON %s where a %s is wanted", te.Value, te.Type)
	}
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		return "unknown field"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// finishKey reports whether k is empty or one DTMF key that can end input.
func finishKey(k string) bool {
	return k == "" || len(k) == 1 && strings.Contains("0123456789*#", k)
}

// word reports whether s is empty or a voice or language name: letters,
// digits, '-', '_' and '+', at most 64 of them.
func word(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '+') {
			return false
		}
	}
	return true
}
