// Package callcore holds the vocabulary every part of callbus shares: error
// codes, call states, end reasons and identifiers. It imports only the
// standard library, so any package may depend on it.
package callcore

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error class. httpapi owns the one table
// from Code to HTTP status and dialog the one table from Code to SIP status.
type Code string

// The error codes of the public contract (DESIGN.md §5), plus internal.
const (
	CodeBadRequest       Code = "bad_request"
	CodeUnauthorized     Code = "unauthorized"
	CodeNotFound         Code = "not_found"
	CodeInvalidState     Code = "invalid_state"
	CodeValidationFailed Code = "validation_failed"
	CodeTooLarge         Code = "too_large"
	CodeRateLimited      Code = "rate_limited"
	CodeUnavailable      Code = "unavailable"
	CodeInternal         Code = "internal"
)

// Error is the error type that reaches the API: a stable Code, a message
// written for the person reading it, and the underlying cause if any.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Field names the offending input field for CodeValidationFailed.
	Field string `json:"field,omitempty"`
	Err   error  `json:"-"`
}

// Error returns the message, followed by the underlying cause when there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the Code of the first *Error in err's chain, or
// CodeInternal when there is none (a nil err has no code: "").
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
