package dialog

import (
	"github.com/callbus/callbus/callcore"
)

// allowed lists the methods the dialog layer handles, for Allow headers.
const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO"

func allowedMethod(m string) bool {
	switch m {
	case "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REFER", "NOTIFY", "INFO":
		return true
	}
	return false
}

// StatusForCode is the one table from callbus error codes to SIP final
// statuses, used when a failure must be told to a SIP peer. An unknown or
// empty code maps to 500.
func StatusForCode(code callcore.Code) int {
	switch code {
	case callcore.CodeBadRequest, callcore.CodeValidationFailed:
		return 400
	case callcore.CodeUnauthorized:
		return 403
	case callcore.CodeNotFound:
		return 404
	case callcore.CodeInvalidState:
		return 491
	case callcore.CodeTooLarge:
		return 413
	case callcore.CodeRateLimited, callcore.CodeUnavailable:
		return 503
	default:
		return 500
	}
}
