package callcore

// SIP status vocabulary shared by the layers and the test phone.

// reasonPhrases are RFC 3261 §21's (and its extensions') reason phrases
// for the statuses callbus sends or meets.
var reasonPhrases = map[int]string{
	100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
	183: "Session Progress",
	200: "OK", 202: "Accepted",
	300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
	400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
	405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
	408: "Request Timeout", 410: "Gone", 413: "Request Entity Too Large",
	415: "Unsupported Media Type", 420: "Bad Extension", 480: "Temporarily Unavailable",
	481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
	484: "Address Incomplete", 486: "Busy Here", 487: "Request Terminated",
	488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending",
	500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
	503: "Service Unavailable", 504: "Server Time-out",
	600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}

// ReasonPhrase returns the reason phrase of a status, or a class's generic
// one for a status it does not know.
func ReasonPhrase(code int) string {
	if r, ok := reasonPhrases[code]; ok {
		return r
	}
	switch code / 100 {
	case 1:
		return "Progress"
	case 2:
		return "OK"
	case 3:
		return "Redirect"
	case 4:
		return "Request Failure"
	case 5:
		return "Server Failure"
	default:
		return "Global Failure"
	}
}

// EndReasonForStatus maps the final status of a failed INVITE to the end
// reason of the call (docs/signalling.md): busy, rejected, no_answer,
// cancelled (487) or failed.
func EndReasonForStatus(code int) EndReason {
	switch code {
	case 486, 600:
		return EndBusy
	case 603, 403:
		return EndRejected
	case 480, 408:
		return EndNoAnswer
	case 487:
		return EndCancelled
	default:
		return EndFailed
	}
}

// KnownStatus reports whether code has a reason phrase of its own, rather
// than its class's generic one.
func KnownStatus(code int) bool {
	_, ok := reasonPhrases[code]
	return ok
}
