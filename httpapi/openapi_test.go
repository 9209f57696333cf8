package httpapi

import (
	"bytes"
	"github.com/callbus/callbus/internal/apitest"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/pb33f/libopenapi"
)

// TestOpenAPIDocument checks openapi.yaml against the OpenAPI 3.1 schema.
func TestOpenAPIDocument(t *testing.T) {
	doc, err := libopenapi.NewDocument(OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Errorf("openapi version %q, want 3.1.0", v)
	}
	ok, errs := loadSpec(t).ValidateDocument()
	if !ok {
		t.Errorf("openapi.yaml is not a valid OpenAPI document:%s", apitest.DescribeErrs(errs))
	}
}

// TestOpenAPIRoutes walks the router and the spec: every route the
// router serves is in the spec, and every operation of the spec is routed.
func TestOpenAPIRoutes(t *testing.T) {
	e := newEnv(t, Config{})
	h, err := New(Config{Metrics: http.NotFoundHandler(), Store: e.store, Feed: e.feed}, e.bus, nil)
	if err != nil {
		t.Fatal(err)
	}
	var routed []string
	err = chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(strings.ReplaceAll(route, "/*/", "/"), "/")
		routed = append(routed, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	var specified []string
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			specified = append(specified, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(routed)
	slices.Sort(specified)
	for _, r := range routed {
		if !slices.Contains(specified, r) {
			t.Errorf("%s is routed but not in openapi.yaml", r)
		}
	}
	for _, s := range specified {
		if !slices.Contains(routed, s) {
			t.Errorf("%s is in openapi.yaml but not routed", s)
		}
	}
	if len(routed) < 30 {
		t.Errorf("only %d routes walked: %q", len(routed), routed)
	}
}

// TestOpenAPIServed checks GET /openapi.yaml and that the repository
// root's openapi.yaml is this very file.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, keyedConfig())
	resp, body := e.request(t, specValid, "GET", "/openapi.yaml", nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentTypeYAML || !bytes.Equal(body, OpenAPI()) {
		t.Errorf("GET /openapi.yaml = %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	root, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatalf("the repository root's openapi.yaml: %v", err)
	}
	if !bytes.Equal(root, OpenAPI()) {
		t.Error("the repository root's openapi.yaml differs from httpapi/openapi.yaml")
	}
}
