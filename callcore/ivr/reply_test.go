package ivr

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeReply(t *testing.T) {
	got, err := DecodeReply([]byte(`{"actions":[
		{"verb":"answer"},
		{"verb":"play","file":"menu/welcome.wav","loop":1},
		{"verb":"gather","num_digits":1,"finish_on_key":"#","action_url":"https://app.example/menu",
		 "prompt":[{"verb":"say","text":"Press 1","voice":"en-us"},{"verb":"play","url":"http://media.example/a.wav"}]},
		{"verb":"record","max_duration_s":30,"beep":true},
		{"verb":"dial","to":"sip:bob@example.com","timeout_s":20},
		{"verb":"transfer","target":"sip:carol@example.com"},
		{"verb":"pause","seconds":0.5},
		{"verb":"tag","client_state":"step-2"},
		{"verb":"redirect","url":"https://app.example/next"},
		{"verb":"reject","status":486},
		{"verb":"reject"},
		{"verb":"hangup"}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Action{
		&Answer{},
		&Play{File: "menu/welcome.wav", Loop: 1},
		&Gather{NumDigits: 1, FinishOnKey: "#", TimeoutS: 5, InterDigitTimeoutS: 5, ActionURL: "https://app.example/menu",
			Prompt: []Action{&Say{Text: "Press 1", Voice: "en-us"}, &Play{URL: "http://media.example/a.wav"}}},
		&Record{MaxDurationS: 30, Beep: true},
		&Dial{To: "sip:bob@example.com", TimeoutS: 20},
		&Transfer{Target: "sip:carol@example.com"},
		&Pause{Seconds: 0.5},
		&Tag{ClientState: "step-2"},
		&Redirect{URL: "https://app.example/next"},
		&Reject{Status: 486},
		&Reject{Status: 603},
		&Hangup{},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeReply:\n got %s\nwant %s", describe(got), describe(want))
	}
	for _, empty := range []string{"", "  \n", "{}", `{"actions":[]}`, `{"actions":null}`} {
		if got, err := DecodeReply([]byte(empty)); err != nil || len(got) != 0 {
			t.Errorf("DecodeReply(%q) = %v, %v; want no action", empty, got, err)
		}
	}
}

func describe(as []Action) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "%s%+v ", a.Verb(), a)
	}
	return b.String()
}

// Every bad reply is refused whole, with the field at fault.
func TestDecodeReplyRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, body, field string
	}{
		{"body=not-json", `<Response><Say>hi</Say></Response>`, ""},
		{"body=array", `[{"verb":"answer"}]`, ""},
		{"body=trailing", `{"actions":[]} {"actions":[]}`, ""},
		{"body=unknown-field", `{"actions":[],"action":[]}`, "action"},
		{"actions=not-list", `{"actions":{"verb":"answer"}}`, "actions"},
		{"action=not-object", `{"actions":["answer"]}`, "actions[0]"},
		{"verb=missing", `{"actions":[{"text":"hi"}]}`, "actions[0].verb"},
		{"verb=unknown", `{"actions":[{"verb":"conference"}]}`, "actions[0].verb"},
		{"verb=wrong-type", `{"actions":[{"verb":7}]}`, "actions[0]"},
		{"field=unknown", `{"actions":[{"verb":"answer"},{"verb":"gather","num_digit":1}]}`, "actions[1].num_digit"},
		{"field=wrong-type", `{"actions":[{"verb":"gather","num_digits":"1"}]}`, "actions[0].num_digits"},
		{"reject=status", `{"actions":[{"verb":"reject","status":200}]}`, "actions[0].status"},
		{"play=none", `{"actions":[{"verb":"play"}]}`, "actions[0].file"},
		{"play=both", `{"actions":[{"verb":"play","file":"a.wav","url":"http://x/a.wav"}]}`, "actions[0].file"},
		{"play=escape", `{"actions":[{"verb":"play","file":"../etc/passwd"}]}`, "actions[0].file"},
		{"play=absolute", `{"actions":[{"verb":"play","file":"/etc/passwd"}]}`, "actions[0].file"},
		{"play=url-scheme", `{"actions":[{"verb":"play","url":"file:///etc/passwd"}]}`, "actions[0].url"},
		{"play=loop", `{"actions":[{"verb":"play","file":"a.wav","loop":-1}]}`, "actions[0].loop"},
		{"say=empty", `{"actions":[{"verb":"say","text":"  "}]}`, "actions[0].text"},
		{"say=long", `{"actions":[{"verb":"say","text":"` + strings.Repeat("a", MaxTextBytes+1) + `"}]}`, "actions[0].text"},
		{"say=voice", `{"actions":[{"verb":"say","text":"hi","voice":"en;rm -rf"}]}`, "actions[0].voice"},
		{"pause=zero", `{"actions":[{"verb":"pause"}]}`, "actions[0].seconds"},
		{"pause=long", `{"actions":[{"verb":"pause","seconds":601}]}`, "actions[0].seconds"},
		{"gather=digits", `{"actions":[{"verb":"gather","num_digits":65}]}`, "actions[0].num_digits"},
		{"gather=key", `{"actions":[{"verb":"gather","finish_on_key":"##"}]}`, "actions[0].finish_on_key"},
		{"gather=timeout", `{"actions":[{"verb":"gather","timeout_s":-1}]}`, "actions[0].timeout_s"},
		{"gather=action_url", `{"actions":[{"verb":"gather","action_url":"/relative"}]}`, "actions[0].action_url"},
		{"gather=prompt-verb", `{"actions":[{"verb":"gather","prompt":[{"verb":"hangup"}]}]}`, "actions[0].prompt[0].verb"},
		{"gather=prompt-nested", `{"actions":[{"verb":"gather","prompt":[{"verb":"gather"}]}]}`, "actions[0].prompt[0].verb"},
		{"gather=prompt-bad", `{"actions":[{"verb":"gather","prompt":[{"verb":"play"}]}]}`, "actions[0].prompt[0].file"},
		{"gather=prompt-not-list", `{"actions":[{"verb":"gather","prompt":"hi"}]}`, "actions[0].prompt"},
		{"prompt=on-play", `{"actions":[{"verb":"play","file":"a.wav","prompt":[]}]}`, "actions[0].prompt"},
		{"record=duration", `{"actions":[{"verb":"record","max_duration_s":3601}]}`, "actions[0].max_duration_s"},
		{"record=silence", `{"actions":[{"verb":"record","silence_timeout_s":61}]}`, "actions[0].silence_timeout_s"},
		{"transfer=target", `{"actions":[{"verb":"transfer","target":"tel:+15550100"}]}`, "actions[0].target"},
		{"transfer=missing", `{"actions":[{"verb":"transfer"}]}`, "actions[0].target"},
		{"dial=to", `{"actions":[{"verb":"dial","to":"bob"}]}`, "actions[0].to"},
		{"dial=from", `{"actions":[{"verb":"dial","to":"sip:bob@example.com","from":"x"}]}`, "actions[0].from"},
		{"redirect=url", `{"actions":[{"verb":"redirect","url":"ftp://x/y"}]}`, "actions[0].url"},
		{"tag=long", `{"actions":[{"verb":"tag","client_state":"` + strings.Repeat("a", MaxTextBytes+1) + `"}]}`, "actions[0].client_state"},
		{"actions=too-many", `{"actions":[` + strings.Repeat(`{"verb":"answer"},`, MaxActions) + `{"verb":"answer"}]}`, "actions"},
		{"body=too-large", `{"actions":[],"x":"` + strings.Repeat("a", MaxReplyBytes) + `"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeReply([]byte(tc.body))
			var re *ReplyError
			if !errors.As(err, &re) {
				t.Fatalf("DecodeReply = %v, %v; want a *ReplyError", describe(got), err)
			}
			if re.Field != tc.field || re.Message == "" {
				t.Fatalf("refused %q (%s), want field %q", re.Field, re.Message, tc.field)
			}
			if got != nil {
				t.Fatalf("a refused reply returned actions: %s", describe(got))
			}
		})
	}
}

// FuzzDecodeReply: an app's reply is network input. DecodeReply never
// panics, and what it accepts holds only known verbs whose values are in
// range (checked by checking them again).
func FuzzDecodeReply(f *testing.F) {
	f.Add([]byte(`{"actions":[{"verb":"answer"},{"verb":"gather","num_digits":1,"prompt":[{"verb":"say","text":"hi"}]}]}`))
	f.Add([]byte(`{"actions":[{"verb":"play","file":"a.wav"}]}`))
	f.Add([]byte(`{"actions":[{"verb":"dial","to":"sip:a@b"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		actions, err := DecodeReply(body)
		if err != nil {
			return
		}
		if len(actions) > MaxActions {
			t.Fatalf("%d actions accepted", len(actions))
		}
		for i, a := range actions {
			if newAction(a.Verb()) == nil {
				t.Fatalf("unknown verb %q accepted", a.Verb())
			}
			if err := check(fmt.Sprintf("actions[%d]", i), a); err != nil {
				t.Fatalf("accepted an action that fails its check: %v", err)
			}
		}
	})
}
