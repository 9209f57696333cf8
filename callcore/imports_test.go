package callcore_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The import rules of DESIGN.md §1, enforced over the real package graph:
// the layers meet only on the bus, apps reach the layers only through it,
// and each third-party library stays in the package that wraps it.

const module = "github.com/callbus/callbus"

// layers never import each other.
var layers = []string{"transport", "dialog", "session", "media", "rtp"}

// rules maps a package (relative to the module; "x/..." covers x and its
// subpackages) to the module packages it may depend on, directly or not.
// A module package missing here fails the test until it is classified.
var rules = map[string][]string{
	"callcore":                 {},
	"callcore/audio/...":       {}, // pure audio code (G.711, WAV, RFC 4733, tones): stdlib only
	"callcore/sdp/...":         {}, // pure SDP code (directions, reading, rewriting, normalising): stdlib and pion/sdp
	"callcore/events/...":      {"callcore"},
	"callcore/bus":             {"callcore", "callcore/events"},
	"callcore/bus/natsbus/...": {"callcore", "callcore/events", "callcore/bus"},
	"callcore/store/...":       {"callcore", "callcore/events", "callcore/bus"},
	"callcore/calltest/...":    {"callcore", "callcore/events", "callcore/audio", "callcore/sdp"},
	"callcore/transport/...":   {"callcore", "callcore/events", "callcore/bus"},
	"callcore/dialog/...":      {"callcore", "callcore/events", "callcore/bus", "callcore/sdp"},
	"callcore/session/...":     {"callcore", "callcore/events", "callcore/bus", "callcore/sdp"},
	"callcore/media/...":       {"callcore", "callcore/events", "callcore/bus", "callcore/audio", "callcore/sdp"},
	"callcore/rtp/...":         {"callcore", "callcore/events", "callcore/bus"},
	"callcore/ivr/...":         {"callcore", "callcore/events", "callcore/bus", "callcore/store"},
	"httpapi/...":              {"callcore", "callcore/events", "callcore/bus", "callcore/store"},
	"ws/...":                   {"callcore", "callcore/events", "callcore/bus", "callcore/store"},
	"web/...":                  {},
	"cmd/...":                  {"*"}, // main wires every concrete type
	"scripts/...":              {"*"},
	"internal/benchpeer/...":   {"*"},
	"internal/bustest/...":     {"callcore", "callcore/events", "callcore/bus"},
	"internal/mediaload/...":   {"*"}, // the media load generator drives the media and rtp hubs
	"internal/apitest/...":     {},    // tests' OpenAPI-validating HTTP client
}

// libraries maps a third-party module path prefix to the packages that may
// import it directly.
var libraries = map[string][]string{
	"github.com/go-chi/":                   {"httpapi/..."},
	"github.com/coder/websocket":           {"ws/..."},
	"github.com/emiago/sipgo":              {"callcore/transport/...", "callcore/dialog/...", "callcore/calltest/...", "internal/benchpeer/..."},
	"github.com/pion/":                     {"callcore/rtp/...", "callcore/media/...", "callcore/calltest/...", "callcore/sdp/..."},
	"github.com/nats-io/":                  {"callcore/bus/natsbus/...", "cmd/..."},
	"github.com/kelseyhightower/envconfig": {"cmd/..."},
	"modernc.org/sqlite":                   {"callcore/store/..."},
	"github.com/klauspost/compress":        {"callcore/store/..."},
	"github.com/prometheus/":               {"callcore/bus/...", "cmd/..."},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Standard   bool
}

// matches reports whether rel (a module-relative package path) falls under
// pattern, which is a path or "path/...".
func matches(pattern, rel string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return rel == base || strings.HasPrefix(rel, base+"/")
	}
	return rel == pattern
}

func ruleFor(rel string) (string, bool) {
	best := ""
	for p := range rules {
		if matches(p, rel) && len(p) > len(best) {
			best = p
		}
	}
	return best, best != ""
}

func relOf(importPath string) (string, bool) {
	if importPath == module {
		return "", true
	}
	return strings.CutPrefix(importPath, module+"/")
}

// layerOf returns the layer a package belongs to, or "".
func layerOf(rel string) string {
	for _, l := range layers {
		if matches("callcore/"+l+"/...", rel) {
			return l
		}
	}
	return ""
}

// violations checks the graph against the rules and returns one line per
// broken rule.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		rel, ok := relOf(p.ImportPath)
		if !ok {
			continue
		}
		rule, ok := ruleFor(rel)
		if !ok {
			out = append(out, fmt.Sprintf("%s: not in the import rules; classify it in callcore/imports_test.go", rel))
			continue
		}
		allowed := rules[rule]
		own := strings.TrimSuffix(rule, "/...")
		for _, d := range p.Deps {
			drel, ok := relOf(d)
			if !ok || drel == rel || matches(own+"/...", drel) || slices.Contains(allowed, "*") {
				continue
			}
			if l, dl := layerOf(rel), layerOf(drel); dl != "" && l != dl {
				out = append(out, fmt.Sprintf("%s imports layer %s (%s): layers meet only on the bus", rel, dl, drel))
				continue
			}
			if !slices.ContainsFunc(allowed, func(a string) bool { return drel == a }) {
				out = append(out, fmt.Sprintf("%s depends on %s, which its rule %q does not allow", rel, drel, rule))
			}
		}
		for _, imp := range p.Imports {
			for prefix, owners := range libraries {
				if strings.HasPrefix(imp, prefix) &&
					!slices.ContainsFunc(owners, func(o string) bool { return matches(o, rel) }) {
					out = append(out, fmt.Sprintf("%s imports %s, which belongs in %s", rel, imp, strings.Join(owners, ", ")))
				}
			}
		}
		if rel == "callcore" {
			for _, d := range p.Deps {
				if !isStd(pkgs, d) {
					out = append(out, fmt.Sprintf("callcore depends on %s: the vocabulary package is stdlib only", d))
				}
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func isStd(pkgs []pkg, path string) bool {
	for _, p := range pkgs {
		if p.ImportPath == path {
			return p.Standard
		}
	}
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// listPackages runs go list over the module (non-test dependencies: tests
// may wire layers together, production code may not).
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Imports,Deps,Standard", "./...")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	var ours int
	for _, p := range pkgs {
		if _, ok := relOf(p.ImportPath); ok {
			ours++
		}
	}
	if ours < 5 {
		t.Fatalf("go list found %d module packages; the test is not looking at the module", ours)
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// The checker itself must catch each kind of violation.
func TestImportRulesCatchViolations(t *testing.T) {
	p := func(rel string, deps ...string) pkg {
		full := path.Join(module, rel)
		var abs []string
		for _, d := range deps {
			if strings.Contains(strings.Split(d, "/")[0], ".") {
				abs = append(abs, d)
			} else {
				abs = append(abs, path.Join(module, d))
			}
		}
		return pkg{ImportPath: full, Imports: abs, Deps: abs}
	}
	cases := map[string]struct {
		pkgs []pkg
		want string
	}{
		"layer=transport/imports=dialog": {
			[]pkg{p("callcore/transport", "callcore/bus", "callcore/dialog")},
			"callcore/transport imports layer dialog"},
		"layer=media/via=subpackage": {
			[]pkg{p("callcore/media/g711", "callcore/rtp/pool")},
			"callcore/media/g711 imports layer rtp"},
		"app=httpapi/imports=session": {
			[]pkg{p("httpapi", "callcore/session")},
			"httpapi imports layer session"},
		"lib=chi/outside=httpapi": {
			[]pkg{p("ws", "github.com/go-chi/chi/v5")},
			"ws imports github.com/go-chi/chi/v5"},
		"lib=sipgo/in=session": {
			[]pkg{p("callcore/session", "github.com/emiago/sipgo")},
			"callcore/session imports github.com/emiago/sipgo"},
		"vocabulary=callcore/third-party": {
			[]pkg{p("callcore", "golang.org/x/exp/slices")},
			"callcore depends on golang.org/x/exp/slices"},
		"pure=sdp/imports=events": {
			[]pkg{p("callcore/sdp", "callcore/events")},
			"callcore/sdp depends on callcore/events"},
		"lib=pion/in=session": {
			[]pkg{p("callcore/session", "github.com/pion/sdp/v3")},
			"callcore/session imports github.com/pion/sdp/v3"},
		"unclassified=package": {
			[]pkg{p("callcore/newthing")},
			"callcore/newthing: not in the import rules"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got := violations(c.pkgs)
			if !slices.ContainsFunc(got, func(v string) bool { return strings.HasPrefix(v, c.want) }) {
				t.Fatalf("violations %q, want one starting %q", got, c.want)
			}
		})
	}
	ok := []pkg{
		p("callcore/dialog", "callcore", "callcore/events", "callcore/bus", "github.com/emiago/sipgo"),
		p("httpapi", "callcore/bus", "callcore/store", "github.com/go-chi/chi/v5"),
		p("cmd/callbus", "callcore/dialog", "callcore/media", "httpapi"),
		p("callcore/session", "callcore", "callcore/events", "callcore/bus", "callcore/sdp"),
		p("callcore/sdp", "github.com/pion/sdp/v3"),
	}
	if v := violations(ok); len(v) != 0 {
		t.Fatalf("a valid graph reported %q", v)
	}
}
