package ivr

import (
	"time"

	"github.com/callbus/callbus/callcore"
)

// Events of a webhook request.
const (
	EventIncoming     = "call.incoming" // an inbound call asks the app what to do
	EventAnswered     = "call.answered" // an outbound call with a webhook was answered
	EventGatherResult = "gather.result" // a gather ended: Digits, Reason
	EventRecordResult = "record.result" // a record ended: RecordingID, RecordingURL
	EventDialResult   = "dial.result"   // a dial ended: DialStatus, SipStatus
)

// Reasons a gather ended (Request.Reason of gather.result).
const (
	GatherNumDigits = "num_digits" // NumDigits digits came
	GatherFinishKey = "finish_key" // FinishOnKey was pressed
	GatherTimeout   = "timeout"    // no digit, or none for the inter-digit timeout
)

// Outcomes of a dial (Request.DialStatus of dial.result).
const (
	DialCompleted = "completed"
	DialBusy      = "busy"
	DialNoAnswer  = "no_answer"
	DialFailed    = "failed"
)

// Request is the JSON body of every webhook request callbus sends: the
// event, the seq and time of the bus event that caused it, the call as it
// then stood (its latest CallUpdated) and the call's client_state, plus a
// verb's result for the *.result events. ID is also sent as the
// Callbus-Event-Id header and stays the same on every attempt.
type Request struct {
	ID          string        `json:"id"`
	Event       string        `json:"event"`
	OccurredAt  time.Time     `json:"occurred_at"`
	Seq         uint64        `json:"seq"`
	Call        callcore.Call `json:"call"`
	ClientState string        `json:"client_state,omitempty"`

	Digits       string `json:"digits,omitempty"`        // gather.result
	Reason       string `json:"reason,omitempty"`        // gather.result: GatherNumDigits…
	RecordingID  string `json:"recording_id,omitempty"`  // record.result
	RecordingURL string `json:"recording_url,omitempty"` // record.result: GET it with the API key
	DurationMS   int64  `json:"duration_ms,omitempty"`   // record.result
	DialStatus   string `json:"dial_status,omitempty"`   // dial.result: DialCompleted…
	SipStatus    int    `json:"sip_status,omitempty"`    // dial.result: the new leg's final status
	DialCallID   string `json:"dial_call_id,omitempty"`  // dial.result: the new leg's call id
}
