package callcore_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// What the layers tell each other (error codes, stop reasons, end reasons)
// is a typed vocabulary in callcore/events: a consumer switches on the
// constants, and a producer that means "timeout" says so with a constant
// of its own. Looking inside the text of a reason or an error field
// (strings.Contains(e.Reason, "timeout"), strings.HasPrefix(e.Error,
// "no_port:")) is how a vocabulary rots, so no code under callcore does it.

// textFields are the event fields that carry a vocabulary or a message.
var textFields = map[string]bool{"Reason": true, "Error": true, "ErrorCode": true}

// textMatchers are the functions of package strings that look at part of
// a string. Those that only validate one (ContainsAny(s, "\r\n")), change
// its case or trim its spaces are not matchers.
var textMatchers = map[string]bool{
	"Contains": true, "HasPrefix": true, "HasSuffix": true, "Index": true, "LastIndex": true,
	"Cut": true, "CutPrefix": true, "CutSuffix": true, "TrimPrefix": true, "TrimSuffix": true,
	"EqualFold": true, "Count": true, "Split": true, "SplitN": true, "SplitAfter": true,
}

// substringMatches returns "file:line: strings.F(…x.Field…)" for every call
// of a text matcher of package strings that has a Reason, Error or
// ErrorCode field in its arguments (x.Error() calls a method, not a field).
func substringMatches(fset *token.FileSet, f *ast.File) []string {
	pkg := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "strings" {
			pkg = "strings"
			if imp.Name != nil {
				pkg = imp.Name.Name
			}
		}
	}
	if pkg == "" || pkg == "_" {
		return nil
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		fn, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := fn.X.(*ast.Ident); !ok || x.Name != pkg || !textMatchers[fn.Sel.Name] {
			return true
		}
		for _, arg := range call.Args {
			if field := textField(arg); field != "" {
				out = append(out, fset.Position(call.Pos()).String()+": strings."+fn.Sel.Name+" on field "+field)
			}
		}
		return true
	})
	return out
}

// textField returns the first Reason, Error or ErrorCode field read in e,
// or "".
func textField(e ast.Expr) string {
	found := ""
	var visit func(n ast.Node) bool
	visit = func(n ast.Node) bool {
		if found != "" {
			return false
		}
		switch n := n.(type) {
		case *ast.CallExpr:
			// In x.Error(), Error is a method: look at x and the arguments only.
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
				ast.Inspect(sel.X, visit)
			} else {
				ast.Inspect(n.Fun, visit)
			}
			for _, a := range n.Args {
				ast.Inspect(a, visit)
			}
			return false
		case *ast.SelectorExpr:
			if textFields[n.Sel.Name] {
				found = n.Sel.Name
				return false
			}
		}
		return true
	}
	ast.Inspect(e, visit)
	return found
}

func TestNoSubstringMatchOnVocabulary(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		for _, m := range substringMatches(fset, f) {
			t.Errorf("%s: switch on the typed constant of callcore/events instead", m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("checked %d files under callcore: the walk missed the layers", files)
	}
}

// The check finds the substring matches that the vocabularies replaced,
// and only those.
func TestSubstringCheck(t *testing.T) {
	const src = `package p

import str "strings"

func f(e *Ev, pe *PathError) {
	if str.Contains(e.Reason, "timeout") {} // matched
	if str.HasPrefix(ev.Error, "no_port:") {} // matched
	_, _, _ = str.Cut(str.ToLower(e.ErrorCode), ":") // matched
	if str.ContainsAny(e.Reason, "\r\n") {} // validation
	_ = str.TrimSpace(e.Reason) // not a match
	if str.Contains(pe.Err.Error(), "escapes") {} // a method, not a field
	if str.Contains(e.SDP, "telephone-event") {} // not a vocabulary field
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := substringMatches(fset, f)
	want := []string{"p.go:6:5: strings.Contains on field Reason", "p.go:7:5: strings.HasPrefix on field Error",
		"p.go:8:12: strings.Cut on field ErrorCode"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("found\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
