package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// wrongChannel claims a channel other than the list it is put in.
type wrongChannel struct {
	onSessionToApp
	SessionRef
}

func (*wrongChannel) Type() string { return "WrongChannel" }

// notAPointer is an Event implemented on the struct value.
type notAPointer struct {
	onSessionToApp
	SessionRef
}

func (notAPointer) Type() string { return "NotAPointer" }

func TestBuildRegistryPanics(t *testing.T) {
	cases := []struct {
		name    string
		lists   []channelList
		mention string
	}{
		{"case=duplicate_type", []channelList{{ChannelSessionToApp, func() []Event {
			return []Event{&CallRinging{}, &CallEnded{}, &CallRinging{}}
		}}}, "session_to_app/CallRinging"},
		{"case=same_type_name_two_go_types", []channelList{{ChannelSessionToDialog, func() []Event {
			return []Event{&SendDtmf{}, &MediaSendDtmf{}}
		}}}, "MediaSendDtmf"},
		{"case=wrong_channel", []channelList{{ChannelDialogToSession, func() []Event {
			return []Event{&IncomingCall{}, &CallRinging{}}
		}}}, `"session_to_app"`},
		{"case=duplicate_channel", []channelList{
			{ChannelSessionToApp, sessionToAppEvents}, {ChannelSessionToApp, sessionToAppEvents},
		}, "listed twice"},
		{"case=not_a_pointer", []channelList{{ChannelSessionToApp, func() []Event {
			return []Event{notAPointer{}}
		}}}, "not a pointer"},
		{"case=marker_of_other_channel", []channelList{{ChannelSessionToMedia, func() []Event {
			return []Event{&wrongChannel{}}
		}}}, "wrongChannel"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("buildRegistry did not panic")
				}
				if msg, _ := r.(string); !strings.Contains(msg, c.mention) {
					t.Errorf("panic %q does not mention %q", r, c.mention)
				}
			}()
			buildRegistry(c.lists)
		})
	}
}

func TestLookupAndNew(t *testing.T) {
	typ, err := Lookup(ChannelSessionToMedia, "SendDtmf")
	if err != nil || typ != reflect.TypeFor[MediaSendDtmf]() {
		t.Errorf("Lookup(session_to_media, SendDtmf) = %v, %v", typ, err)
	}
	typ, err = Lookup(ChannelSessionToApp, "DtmfReceived")
	if err != nil || typ != reflect.TypeFor[CallDtmfReceived]() {
		t.Errorf("Lookup(session_to_app, DtmfReceived) = %v, %v", typ, err)
	}
	if _, err := Lookup("nope", "X"); !errors.Is(err, ErrUnknownChannel) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Lookup(nope) error = %v", err)
	}
	if _, err := Lookup(ChannelAPIToSession, "Fly"); !errors.Is(err, ErrUnknownType) ||
		!strings.Contains(err.Error(), `"api_to_session/Fly"`) {
		t.Errorf("Lookup(api_to_session, Fly) error = %v", err)
	}
	if ev, err := New("nope", "X"); ev != nil || !errors.Is(err, ErrUnknownChannel) {
		t.Errorf("New(nope) = %v, %v", ev, err)
	}

	a, err := New(ChannelAPIToSession, "MakeCall")
	if err != nil {
		t.Fatal(err)
	}
	mc, ok := a.(*CmdMakeCall)
	if !ok || !reflect.ValueOf(mc).Elem().IsZero() {
		t.Fatalf("New(api_to_session, MakeCall) = %#v, want a zero *CmdMakeCall", a)
	}
	mc.From = "changed"
	b, _ := New(ChannelAPIToSession, "MakeCall")
	if b.(*CmdMakeCall).From != "" {
		t.Error("New returned a shared instance")
	}
}

func TestAllAndChannels(t *testing.T) {
	all, again := All(), All()
	// DESIGN.md §3's 80, and the ★ events the signalling flows added:
	// TransferProgress, RegisterAccount, UnregisterAccount, RegistrationUpdated;
	// and CallUpdated, the call resource on the bus.
	if len(all) != 85 {
		t.Errorf("All() has %d events, want the 85 of DESIGN.md §3, the signalling additions and CallUpdated", len(all))
	}
	seen := map[reflect.Type]bool{}
	for i, ev := range all {
		if ev == again[i] {
			t.Fatalf("All() returned %s twice", ev.Type())
		}
		rt := reflect.TypeOf(ev)
		if seen[rt] {
			t.Errorf("%v listed twice", rt)
		}
		seen[rt] = true
		if !reflect.ValueOf(ev).Elem().IsZero() {
			t.Errorf("%v is not zero", rt)
		}
		got, err := Lookup(ev.Channel(), ev.Type())
		if err != nil || got != rt.Elem() {
			t.Errorf("Lookup(%s, %s) = %v, %v; want %v", ev.Channel(), ev.Type(), got, err, rt.Elem())
		}
	}
	ch := Channels()
	ch[0] = "mutated"
	if Channels()[0] != ChannelSessionToDialog {
		t.Error("Channels() shares its slice with the registry")
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\`, "a<b", "a>b", "a&b", "a\"b", `a\b`, "\x00\x1f\x7f", "é", "\u2028", "\xff\xfe", "a\u2029b"} {
		want, _ := jsonString(s)
		if got := string(appendString(nil, s)); got != want {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func jsonString(s string) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}
