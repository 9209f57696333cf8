package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"
)

// Frame is the JSON shape of one event on the wire (DESIGN.md §6): the
// envelope, the event's channel, type and session, and the event itself as
// Data. Marshal and Unmarshal convert between it and (Envelope, Event).
type Frame struct {
	Seq       uint64          `json:"seq,omitempty"`
	ID        ID              `json:"id"`
	Time      time.Time       `json:"time"`
	Node      string          `json:"node"`
	Channel   string          `json:"channel"`
	Type      string          `json:"type"`
	SessionID string          `json:"session_id,omitempty"`
	Cause     ID              `json:"cause,omitzero"`
	Data      json.RawMessage `json:"data"`
}

// Marshal encodes ev and its envelope as one JSON frame:
//
//	{"seq":1042,"id":"ev_…","time":"…","node":"a","channel":"…","type":"…",
//	 "session_id":"…","cause":"ev_…","data":{…}}
//
// seq is left out when 0, session_id when ev belongs to no session and cause
// when it is zero; time is written in UTC. It writes whatever ev's Channel
// and Type say, registered or not. It returns an error when ev is nil, when
// encoding/json fails on it, or when the time's year is outside 0–9999.
func Marshal(env Envelope, ev Event) ([]byte, error) {
	if ev == nil {
		return nil, errors.New("events: marshal a nil event")
	}
	if v := reflect.ValueOf(ev); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, fmt.Errorf("events: marshal a nil %T", ev)
	}
	t := env.Time.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("events: marshal %s/%s: time %v: year outside 0-9999", ev.Channel(), ev.Type(), env.Time)
	}
	var data []byte
	if ap, ok := ev.(appender); ok {
		data = ap.appendData(make([]byte, 0, 512))
	} else {
		var err error
		if data, err = json.Marshal(ev); err != nil {
			return nil, fmt.Errorf("events: marshal %s/%s: %w", ev.Channel(), ev.Type(), err)
		}
	}

	// The envelope is written by hand: it is small and fixed, and this runs
	// once per event per WebSocket client.
	var head [320]byte
	b := head[:0]
	b = append(b, '{')
	if env.Seq != 0 {
		b = append(b, `"seq":`...)
		b = strconv.AppendUint(b, env.Seq, 10)
		b = append(b, ',')
	}
	b = append(b, `"id":`...)
	b = appendID(b, env.ID)
	b = append(b, `,"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","node":`...)
	b = appendString(b, env.Node)
	b = append(b, `,"channel":`...)
	b = appendString(b, ev.Channel())
	b = append(b, `,"type":`...)
	b = appendString(b, ev.Type())
	if sid := SessionOf(ev); sid != "" {
		b = append(b, `,"session_id":`...)
		b = appendString(b, sid)
	}
	if !env.Cause.IsZero() {
		b = append(b, `,"cause":`...)
		b = appendID(b, env.Cause)
	}
	b = append(b, `,"data":`...)

	out := make([]byte, 0, len(b)+len(data)+1)
	out = append(out, b...)
	out = append(out, data...)
	return append(out, '}'), nil
}

// appender is an event that appends its own JSON data, byte for byte what
// encoding/json would write for it (a test holds each to that), because it
// is encoded too often for reflection: CallUpdated.
type appender interface {
	appendData(b []byte) []byte
}

func appendID(b []byte, id ID) []byte {
	b = append(b, '"')
	if !id.IsZero() {
		b = append(b, idPrefix...)
		var h [32]byte
		putHex(h[:16], id.Hi)
		putHex(h[16:], id.Lo)
		b = append(b, h[:]...)
	}
	return append(b, '"')
}

// appendString appends s as a JSON string, escaped exactly as encoding/json
// escapes it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			// Rare: let encoding/json handle escapes and invalid UTF-8.
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Unmarshal decodes a frame written by Marshal into its envelope and a new
// event of the registered Go type. Unknown fields, in the envelope or in
// data, are ignored: other nodes may be newer. The session_id of the
// envelope, when present, must agree with data's (and fills it in when data
// leaves it out).
//
// It returns an error wrapping ErrMalformed when b is not a JSON object of
// the envelope's shape, has no data, has a time outside years 0–9999, or its
// data does not decode into the event's type; ErrUnknownChannel when the
// channel is missing or unknown; ErrUnknownType when the type is missing or
// its channel has no such type. Each names the offending value.
func Unmarshal(b []byte) (Envelope, Event, error) {
	var f Frame
	if err := json.Unmarshal(b, &f); err != nil {
		return Envelope{}, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if f.Channel == "" {
		return Envelope{}, nil, fmt.Errorf("%w: missing channel", ErrUnknownChannel)
	}
	byType, ok := theRegistry().types[f.Channel]
	if !ok {
		return Envelope{}, nil, fmt.Errorf("%w: %q", ErrUnknownChannel, f.Channel)
	}
	name := f.Channel + "/" + f.Type
	if f.Type == "" {
		return Envelope{}, nil, fmt.Errorf("%w: missing type in channel %q", ErrUnknownType, f.Channel)
	}
	t, ok := byType[f.Type]
	if !ok {
		return Envelope{}, nil, fmt.Errorf("%w: %q", ErrUnknownType, name)
	}
	if y := f.Time.UTC().Year(); y < 0 || y > 9999 {
		return Envelope{}, nil, fmt.Errorf("%w: %s: time %s: year outside 0-9999", ErrMalformed, name, f.Time.Format(time.RFC3339Nano))
	}
	if len(f.Data) == 0 || bytes.Equal(f.Data, []byte("null")) {
		return Envelope{}, nil, fmt.Errorf("%w: %s: missing data", ErrMalformed, name)
	}
	ev := reflect.New(t).Interface().(Event)
	if err := json.Unmarshal(f.Data, ev); err != nil {
		return Envelope{}, nil, fmt.Errorf("%w: %s data: %w", ErrMalformed, name, err)
	}
	if f.SessionID != "" {
		if s, ok := ev.(sessionSetter); ok {
			switch got := s.Session(); {
			case got == "":
				s.setSession(f.SessionID)
			case got != f.SessionID:
				return Envelope{}, nil, fmt.Errorf("%w: %s: session_id %q in envelope but %q in data",
					ErrMalformed, name, f.SessionID, got)
			}
		}
	}
	env := Envelope{Seq: f.Seq, ID: f.ID, Time: f.Time, Node: f.Node, Cause: f.Cause}
	return env, ev, nil
}

// sessionSetter is implemented by pointers to events that embed SessionRef.
type sessionSetter interface {
	SessionScoped
	setSession(string)
}

func (r *SessionRef) setSession(id string) { r.SessionID = id }
