package callcore

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the call resource to b exactly as encoding/json
// encodes it from its field tags (a test compares the two), without
// reflection: the session publishes the call in every CallUpdated, and the
// feed and the store encode each one, so this runs for a good part of a
// call's events. (A MarshalJSON method would not help: encoding/json
// re-scans what a Marshaler returns.)
func (c Call) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, c.ID)
	b = append(b, `,"direction":`...)
	b = appendJSONString(b, string(c.Direction))
	b = append(b, `,"from":`...)
	b = appendJSONString(b, c.From)
	b = append(b, `,"to":`...)
	b = appendJSONString(b, c.To)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, string(c.State))
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, c.CreatedAt)
	if !c.AnsweredAt.IsZero() {
		b = append(b, `,"answered_at":`...)
		b = appendJSONTime(b, c.AnsweredAt)
	}
	if !c.EndedAt.IsZero() {
		b = append(b, `,"ended_at":`...)
		b = appendJSONTime(b, c.EndedAt)
	}
	if c.EndReason != "" {
		b = append(b, `,"end_reason":`...)
		b = appendJSONString(b, string(c.EndReason))
	}
	if c.SipStatus != 0 {
		b = append(b, `,"sip_status":`...)
		b = strconv.AppendInt(b, int64(c.SipStatus), 10)
	}
	if c.SipCallID != "" {
		b = append(b, `,"sip_call_id":`...)
		b = appendJSONString(b, c.SipCallID)
	}
	b = append(b, `,"held":`...)
	b = strconv.AppendBool(b, c.Held)
	b = append(b, `,"media":{`...)
	sep := ""
	if c.Media.Codec != "" {
		b = append(b, `"codec":`...)
		b = appendJSONString(b, c.Media.Codec)
		sep = ","
	}
	if c.Media.LocalRTP != "" {
		b = append(b, sep+`"local_rtp":`...)
		b = appendJSONString(b, c.Media.LocalRTP)
		sep = ","
	}
	if c.Media.RemoteRTP != "" {
		b = append(b, sep+`"remote_rtp":`...)
		b = appendJSONString(b, c.Media.RemoteRTP)
		sep = ","
	}
	if q := c.Media.Quality; q != nil {
		b = append(b, sep+`"quality":{"mos":`...)
		b = appendJSONFloat(b, q.MOS)
		b = append(b, `,"packet_loss_pct":`...)
		b = appendJSONFloat(b, q.PacketLossPct)
		b = append(b, `,"jitter_ms":`...)
		b = appendJSONFloat(b, q.JitterMS)
		if q.RttMS != 0 {
			b = append(b, `,"rtt_ms":`...)
			b = appendJSONFloat(b, q.RttMS)
		}
		b = append(b, `,"packets_sent":`...)
		b = strconv.AppendUint(b, q.PacketsSent, 10)
		b = append(b, `,"packets_received":`...)
		b = strconv.AppendUint(b, q.PacketsReceived, 10)
		b = append(b, '}')
	}
	b = append(b, '}')
	if c.RecordingID != "" {
		b = append(b, `,"recording_id":`...)
		b = appendJSONString(b, c.RecordingID)
	}
	if c.BridgedWith != "" {
		b = append(b, `,"bridged_with":`...)
		b = appendJSONString(b, c.BridgedWith)
	}
	if c.ClientState != "" {
		b = append(b, `,"client_state":`...)
		b = appendJSONString(b, c.ClientState)
	}
	return append(b, '}')
}

// appendJSONTime appends t as time.Time.MarshalJSON does. A year outside
// 0-9999, which MarshalJSON refuses, cannot come from the session's clock;
// it is written as the Unix epoch rather than as invalid JSON.
func appendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		t = time.Unix(0, 0).UTC()
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONFloat appends f as encoding/json does (NaN and infinities,
// which it refuses, as 0).
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does by default:
// HTML-sensitive characters, U+2028 and U+2029 escaped, invalid UTF-8
// replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
