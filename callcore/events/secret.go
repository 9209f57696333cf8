package events

import "encoding/json"

// redacted is what a non-empty Secret becomes in JSON.
const redacted = "[redacted]"

// Secret is a credential (a SIP digest password) carried by an event.
// In process the value is kept intact, so the layer that needs it reads it
// with string(s); but it marshals to JSON as "[redacted]", and prints as
// "[redacted]" through fmt and log/slog, so it never reaches the WebSocket
// feed, the event store or a log line.
type Secret string

// MarshalJSON writes "[redacted]" for a non-empty secret and "" for an
// empty one. It never returns an error.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte(`""`), nil
	}
	return []byte(`"` + redacted + `"`), nil
}

// UnmarshalJSON accepts any JSON string (including "[redacted]", which is
// then the value) and null, which leaves s unchanged. It returns an error
// for any other JSON value.
func (s *Secret) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Secret(v)
	return nil
}

// String returns "[redacted]" for a non-empty secret and "" for an empty
// one, so that fmt and log/slog never print the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}
