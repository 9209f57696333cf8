package callcore

// CallState is the state of a call as the public API reports it (DESIGN.md §5).
type CallState string

// The call states, in the order a call normally passes through them.
const (
	StateInitiating   CallState = "initiating"
	StateRinging      CallState = "ringing"
	StateActive       CallState = "active"
	StateOnHold       CallState = "on_hold"
	StateTransferring CallState = "transferring"
	StateTerminating  CallState = "terminating"
	StateTerminated   CallState = "terminated"
)

// CallStates lists every call state.
func CallStates() []CallState {
	return []CallState{StateInitiating, StateRinging, StateActive, StateOnHold,
		StateTransferring, StateTerminating, StateTerminated}
}

// Valid reports whether s is one of the call states.
func (s CallState) Valid() bool {
	for _, v := range CallStates() {
		if s == v {
			return true
		}
	}
	return false
}

// EndReason says why a call ended (DESIGN.md §5).
type EndReason string

// The end reasons of the public contract.
const (
	EndLocalHangup  EndReason = "local_hangup"
	EndRemoteHangup EndReason = "remote_hangup"
	EndRejected     EndReason = "rejected"
	EndCancelled    EndReason = "cancelled"
	EndBusy         EndReason = "busy"
	EndNoAnswer     EndReason = "no_answer"
	EndTimeout      EndReason = "timeout"
	EndFailed       EndReason = "failed"
	EndTransferred  EndReason = "transferred"
)

// Direction says who placed a call.
type Direction string

// The call directions.
const (
	Inbound  Direction = "inbound"
	Outbound Direction = "outbound"
)
