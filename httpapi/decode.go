package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/callbus/callbus/callcore"
)

// decodeBody reads r's body as one JSON object into v. An empty body is
// the empty object, so that commands without parameters need none. Every
// failure is a *callcore.Error:
//   - a Content-Type other than application/json: bad_request (§5 has no
//     code for 415);
//   - a body over MaxBodyBytes: too_large;
//   - not JSON, or JSON followed by more data: bad_request, with the byte
//     offset of the fault;
//   - not an object, a field of the wrong type, or a field v does not
//     have: validation_failed naming the field.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return callcore.Errorf(callcore.CodeBadRequest,
				"Content-Type %q: the body must be application/json", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return callcore.Errorf(callcore.CodeTooLarge, "the body exceeds %d bytes", MaxBodyBytes)
		}
		return callcore.Errorf(callcore.CodeBadRequest, "reading the body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, dec.InputOffset())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return callcore.Errorf(callcore.CodeBadRequest,
			"the body holds more than one JSON value: trailing data at offset %d", dec.InputOffset())
	}
	return nil
}

// jsonError turns an error of json.Decoder.Decode into a *callcore.Error.
func jsonError(err error, offset int64) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return callcore.Errorf(callcore.CodeBadRequest, "the body is not valid JSON: %v (offset %d)", err, syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return callcore.Errorf(callcore.CodeBadRequest, "the body is not valid JSON: it ends early (offset %d)", offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return invalid("", "the body must be a JSON object, not %s", typ.Value)
		}
		return invalid(typ.Field, "%s: want %s, not %s", typ.Field, jsonType(typ.Type.Kind().String()), typ.Value)
	}
	// encoding/json words an unknown field as `json: unknown field "x"`.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return invalid(name, "unknown field %q", name)
	}
	return callcore.Errorf(callcore.CodeBadRequest, "the body is not valid JSON: %v", err)
}

// jsonType names a Go kind as the JSON type it decodes from.
func jsonType(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return fmt.Sprintf("a %s", kind)
}
