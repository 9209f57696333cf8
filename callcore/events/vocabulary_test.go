package events_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// vocabulary is one typed vocabulary the layers tell each other on the
// bus: every constant of the type, written out here by hand, and the list
// the package exports for it (nil when it exports none).
type vocabulary struct {
	typ    reflect.Type
	dir    string // the package directory that declares the constants
	values []string
	listed []string
}

func vals[T ~string](vs ...T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func vocabularies() []vocabulary {
	return []vocabulary{
		{reflect.TypeFor[events.MediaErrorCode](), ".", vals(events.MediaErrIncompatibleSDP, events.MediaErrNoPort,
			events.MediaErrNoSession, events.MediaErrInvalidState, events.MediaErrInvalidConfig,
			events.MediaErrInvalidRequest, events.MediaErrNotSupported, events.MediaErrPlaybackFailed,
			events.MediaErrRecordingFailed, events.MediaErrDTMFNotNegotiated, events.MediaErrRTP,
			events.MediaErrInternal), vals(events.MediaErrorCodes()...)},
		{reflect.TypeFor[events.StreamStopReason](), ".", vals(events.StopReasonStopped, events.StopReasonNoStream,
			events.StopReasonRTPTimeout), vals(events.StreamStopReasons()...)},
		{reflect.TypeFor[events.RtpErrorCode](), ".", vals(events.RtpErrNoPort, events.RtpErrNoStream,
			events.RtpErrBadRequest, events.RtpErrNoDestination, events.RtpErrSocket), vals(events.RtpErrorCodes()...)},
		{reflect.TypeFor[events.TransportErrorCode](), ".", vals(events.TransportErrTimeout,
			events.TransportErrNoFinalResponse, events.TransportErrSendFailed, events.TransportErrBadMessage,
			events.TransportErrTooLarge, events.TransportErrUnsupportedTransport,
			events.TransportErrUnknownTransaction), vals(events.TransportErrorCodes()...)},
		{reflect.TypeFor[events.RegistrationStatus](), ".", vals(events.RegStatusRegistered,
			events.RegStatusUnregistered, events.RegStatusFailed), vals(events.RegistrationStatuses()...)},
		{reflect.TypeFor[events.PlaybackReason](), ".", vals(events.PlaybackReasonFinished,
			events.PlaybackReasonStopped, events.PlaybackReasonFailed), vals(events.PlaybackReasons()...)},
		// CallTerminated and TerminateSession carry the public end reasons.
		{reflect.TypeFor[callcore.EndReason](), "..", vals(callcore.EndLocalHangup, callcore.EndRemoteHangup,
			callcore.EndRejected, callcore.EndCancelled, callcore.EndBusy, callcore.EndNoAnswer,
			callcore.EndTimeout, callcore.EndFailed, callcore.EndTransferred), nil},
	}
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// Every value of a vocabulary is snake_case and distinct, and the list
// above, the package's exported list and the constants declared in its
// source are the same set: a constant added to a vocabulary fails here
// until it is listed.
func TestVocabularies(t *testing.T) {
	declared := map[string]map[string][]string{} // dir → type → values
	for _, v := range vocabularies() {
		t.Run("type="+v.typ.Name(), func(t *testing.T) {
			if v.typ.Kind() != reflect.String {
				t.Fatalf("%v is not string-kinded", v.typ)
			}
			seen := map[string]bool{}
			for _, s := range v.values {
				if !snakeCase.MatchString(s) {
					t.Errorf("%s %q is not snake_case", v.typ.Name(), s)
				}
				if seen[s] {
					t.Errorf("%s %q is listed twice (two constants share a wire value)", v.typ.Name(), s)
				}
				seen[s] = true
			}
			if v.listed != nil && !sameSet(v.listed, v.values) {
				t.Errorf("the exported list of %s is %q, want %q", v.typ.Name(), v.listed, v.values)
			}
			if declared[v.dir] == nil {
				declared[v.dir] = declaredConstants(t, v.dir)
			}
			if got := declared[v.dir][v.typ.Name()]; !sameSet(got, v.values) {
				t.Errorf("the %s constants declared in %s are %q, want %q (list every constant here)",
					v.typ.Name(), v.dir, got, v.values)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// declaredConstants returns the string values of the typed constants that
// the non-test files of dir declare, by type name. An untyped string
// constant in a block of typed ones (the `B = "b"` after `A T = "a"` that
// Go leaves untyped) fails the test.
func declaredConstants(t *testing.T, dir string) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			typed := ""
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				id, ok := vs.Type.(*ast.Ident)
				if !ok {
					if typed != "" && vs.Type == nil && len(vs.Values) > 0 {
						t.Errorf("%s: %s is untyped in a block of %s constants", fset.Position(vs.Pos()), vs.Names[0], typed)
					}
					continue
				}
				typed = id.Name
				for _, val := range vs.Values {
					lit, ok := val.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out[id.Name] = append(out[id.Name], s)
				}
			}
		}
	}
	return out
}

// Every event field of a named string type carries one of the
// vocabularies above, and is a plain JSON string in the catalogue and on
// the wire: typing a field changes neither the feed nor the catalogue.
func TestVocabularyFields(t *testing.T) {
	vocab := map[reflect.Type]vocabulary{}
	for _, v := range vocabularies() {
		vocab[v.typ] = v
	}
	plain := map[reflect.Type]bool{reflect.TypeFor[string](): true, reflect.TypeFor[events.ID](): true,
		reflect.TypeFor[events.Secret](): true}
	docs := map[string]events.EventDoc{}
	for _, ch := range events.Catalogue().Channels {
		for _, d := range ch.Events {
			docs[ch.Name+"/"+d.Type] = d
		}
	}
	used := map[reflect.Type]bool{}
	for _, ev := range events.All() {
		name := ev.Channel() + "/" + ev.Type()
		st := reflect.TypeOf(ev).Elem()
		for _, sf := range reflect.VisibleFields(st) {
			if !sf.IsExported() || sf.Type.Kind() != reflect.String || plain[sf.Type] {
				continue
			}
			v, ok := vocab[sf.Type]
			if !ok {
				t.Errorf("%s.%s has type %v, which is in no vocabulary of this test", name, sf.Name, sf.Type)
				continue
			}
			used[sf.Type] = true
			jsonName, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			i := slices.IndexFunc(docs[name].Fields, func(f events.FieldDoc) bool { return f.Name == jsonName })
			if i < 0 {
				t.Errorf("%s: the catalogue has no field %q", name, jsonName)
				continue
			}
			if f := docs[name].Fields[i]; f.Type != "string" || f.Format != "" {
				t.Errorf("%s.%s is %s/%s in the catalogue, want a plain string", name, jsonName, f.Type, f.Format)
			}
			e := reflect.New(st)
			e.Elem().FieldByIndex(sf.Index).SetString(v.values[0])
			b, err := json.Marshal(e.Interface())
			if err != nil {
				t.Fatal(err)
			}
			want := strconv.Quote(jsonName) + ":" + strconv.Quote(v.values[0])
			if !strings.Contains(string(b), want) {
				t.Errorf("%s marshals as %s, want %s in it", name, b, want)
			}
		}
	}
	for typ := range vocab {
		if !used[typ] {
			t.Errorf("no event field carries %v", typ)
		}
	}
}
