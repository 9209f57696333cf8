package httpapi

import (
	_ "embed"
	"net/http"
)

// openapiYAML is the REST contract, openapi.yaml (OpenAPI 3.1). The file
// lives in this package so that it can be embedded; the repository root's
// openapi.yaml is a symbolic link to it. Nothing writes to it.
//
//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI returns a copy of the REST contract served at GET /openapi.yaml.
func OpenAPI() []byte { return append([]byte(nil), openapiYAML...) }

// ContentTypeYAML is the media type of GET /openapi.yaml (RFC 9512).
const ContentTypeYAML = "application/yaml"

// serveOpenAPI serves GET /openapi.yaml.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", ContentTypeYAML)
	_, _ = w.Write(openapiYAML)
}
