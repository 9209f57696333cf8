// Package apitest checks HTTP traffic against callbus's OpenAPI contract
// in tests: a RoundTripper that validates every request (as the test says
// it should be: valid, or deliberately invalid) and every response against
// openapi.yaml, failing the test on any violation, so that the spec cannot
// drift from what the server does. The httpapi tests and the whole-node
// REST tests of cmd/callbus share it.
package apitest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// Mode says how a request is checked against the spec.
type Mode int

const (
	// Valid: the request must be valid, and so must the response.
	Valid Mode = iota
	// Invalid: the request must be invalid — a bad-input test whose rule
	// the spec must state; the response is checked.
	Invalid
	// Skip: the request is not checked; the response is.
	Skip
	// RequestOnly: the request must be valid; the response is not checked
	// (a WebSocket upgrade answered by a test's own feed).
	RequestOnly
	// Off: neither is checked (requests the spec has no operation for,
	// such as HEAD or a 405).
	Off
)

type modeKey struct{}

// WithMode returns ctx carrying m for the requests made with it; without
// one a request is checked as Valid.
func WithMode(ctx context.Context, m Mode) context.Context {
	return context.WithValue(ctx, modeKey{}, m)
}

// NewValidator builds the validator of an OpenAPI document.
func NewValidator(spec []byte) (validator.Validator, error) {
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return v, nil
}

// Transport checks each exchange against Spec per its Mode, reporting
// violations with T.Errorf, and sends it with Base.
type Transport struct {
	T    testing.TB
	Spec validator.Validator
	Base http.RoundTripper
}

// RoundTrip validates req, sends it and validates the response. It
// returns Base's error, or an error reading either body.
func (s *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	mode, _ := req.Context().Value(modeKey{}).(Mode)
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	clone := func() *http.Request {
		c := req.Clone(context.Background())
		c.Body = io.NopCloser(bytes.NewReader(body))
		return c
	}
	if mode != Skip && mode != Off {
		ok, errs := s.Spec.ValidateHttpRequest(clone())
		switch {
		case mode != Invalid && !ok:
			s.T.Errorf("%s %s: the request violates openapi.yaml:%s", req.Method, req.URL.Path, DescribeErrs(errs))
		case mode == Invalid && ok:
			s.T.Errorf("%s %s: the request is valid per openapi.yaml, but the test sends it as invalid: the spec lacks the rule",
				req.Method, req.URL.Path)
		}
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := s.Base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	if mode == RequestOnly || mode == Off {
		return resp, nil
	}
	check := *resp
	check.Body = io.NopCloser(bytes.NewReader(rb))
	if ok, errs := s.Spec.ValidateHttpResponse(clone(), &check); !ok {
		s.T.Errorf("%s %s → %d: the response violates openapi.yaml:%s\nbody: %s",
			req.Method, req.URL.Path, resp.StatusCode, DescribeErrs(errs), rb)
	}
	return resp, nil
}

// DescribeErrs renders validation errors one per line.
func DescribeErrs[E interface{ Error() string }](errs []E) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\n  " + e.Error())
	}
	return b.String()
}
