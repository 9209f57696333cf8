package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/callbus/callbus/callcore"
)

// codeStatus is the one table from error code to HTTP status (DESIGN.md §5).
var codeStatus = map[callcore.Code]int{
	callcore.CodeBadRequest:       http.StatusBadRequest,
	callcore.CodeUnauthorized:     http.StatusUnauthorized,
	callcore.CodeNotFound:         http.StatusNotFound,
	callcore.CodeInvalidState:     http.StatusConflict,
	callcore.CodeValidationFailed: http.StatusUnprocessableEntity,
	callcore.CodeTooLarge:         http.StatusRequestEntityTooLarge,
	callcore.CodeRateLimited:      http.StatusTooManyRequests,
	callcore.CodeUnavailable:      http.StatusServiceUnavailable,
	callcore.CodeInternal:         http.StatusInternalServerError,
}

// StatusOf returns the HTTP status that answers an error with code c; an
// unknown code answers 500.
func StatusOf(c callcore.Code) int {
	if s, ok := codeStatus[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ContentTypeProblem is the media type of every error response (RFC 9457).
const ContentTypeProblem = "application/problem+json"

// Problem is an RFC 9457 problem detail, extended with the stable Code
// that clients branch on (and Field for validation_failed).
type Problem struct {
	// Type is "about:blank": the HTTP status and Code say what went wrong.
	Type   string        `json:"type"`
	Title  string        `json:"title"`
	Status int           `json:"status"`
	Detail string        `json:"detail,omitempty"`
	Code   callcore.Code `json:"code"`
	Field  string        `json:"field,omitempty"`
}

// writeProblem answers with a problem of the given status and code. The
// status is passed apart from the code because a few protocol answers (405)
// have no code of their own.
func writeProblem(w http.ResponseWriter, status int, code callcore.Code, detail string) {
	writeProblemValue(w, Problem{
		Type:   "about:blank",
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
	})
}

func writeProblemValue(w http.ResponseWriter, p Problem) {
	body, _ := json.Marshal(p) // strings and an int: it cannot fail
	h := w.Header()
	h.Set("Content-Type", ContentTypeProblem)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}

// writeError answers with the problem that err's code maps to. The message
// of a *callcore.Error is written for the caller and is sent as the detail;
// any other error is internal and is logged, not sent.
//
// An error caused by the end of the request's context is not a failure of
// the server: when the client went away it is logged at debug level only;
// when a deadline passed it is unavailable.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var ce *callcore.Error
	switch {
	case r.Context().Err() != nil && errors.Is(err, r.Context().Err()):
		log.DebugContext(r.Context(), "request abandoned by the client", "err", err,
			"method", r.Method, "path", r.URL.Path, "request_id", RequestID(r.Context()))
		writeProblem(w, http.StatusServiceUnavailable, callcore.CodeUnavailable, "the request was abandoned")
		return
	case !errors.As(err, &ce) && errors.Is(err, context.DeadlineExceeded):
		writeProblem(w, http.StatusServiceUnavailable, callcore.CodeUnavailable, "the node did not answer in time")
		return
	}
	if ce == nil || ce.Code == callcore.CodeInternal {
		log.ErrorContext(r.Context(), "request failed", "err", err,
			"method", r.Method, "path", r.URL.Path, "request_id", RequestID(r.Context()))
		writeProblem(w, http.StatusInternalServerError, callcore.CodeInternal, "internal error")
		return
	}
	status := StatusOf(ce.Code)
	writeProblemValue(w, Problem{
		Type:   "about:blank",
		Title:  http.StatusText(status),
		Status: status,
		Detail: ce.Message,
		Code:   ce.Code,
		Field:  ce.Field,
	})
}
