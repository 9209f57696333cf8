package events_test

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/callbus/callbus/callcore/events"
)

var secretType = reflect.TypeFor[events.Secret]()

// filler sets every settable field of a value to a distinct non-zero value.
type filler struct{ n int }

func (f *filler) next() int { f.n++; return f.n }

// fill fills ev (a pointer to an event struct) and returns it.
func (f *filler) fill(ev events.Event) events.Event {
	f.value(reflect.ValueOf(ev).Elem())
	return ev
}

func (f *filler) value(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("v%d", f.next()))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(f.next()%100 + 1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(f.next()%100 + 1))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(f.next()) + 0.25)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 3, 3)
		for i := range 3 {
			f.value(s.Index(i))
		}
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		f.value(p.Elem())
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 27, 3, 14, f.next()%60, 123456789, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				f.value(v.Field(i))
			}
		}
	default:
		panic(fmt.Sprintf("filler: cannot fill %v", v.Type()))
	}
}

// zeroFields returns the paths of the exported fields of ev that are zero;
// a correct filler leaves none.
func zeroFields(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return []string{path}
		}
		return zeroFields(v.Elem(), path)
	case reflect.Struct:
		var out []string
		for i := 0; i < v.NumField(); i++ {
			sf := v.Type().Field(i)
			if sf.IsExported() {
				out = append(out, zeroFields(v.Field(i), path+"."+sf.Name)...)
			}
		}
		return out
	case reflect.Slice:
		if v.Len() == 0 {
			return []string{path}
		}
		var out []string
		for i := 0; i < v.Len(); i++ {
			out = append(out, zeroFields(v.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

// canonical returns a deep copy of ev as it comes back from a round trip
// through JSON: non-empty secrets become "[redacted]" and empty slices of
// omitempty fields become nil. It also returns the paths of the secrets.
func canonical(ev events.Event) (events.Event, []string) {
	cp := reflect.New(reflect.TypeOf(ev).Elem())
	cp.Elem().Set(deepCopy(reflect.ValueOf(ev).Elem()))
	var secrets []string
	canonicalValue(cp.Elem(), false, "", &secrets)
	return cp.Interface().(events.Event), secrets
}

func canonicalValue(v reflect.Value, omitempty bool, path string, secrets *[]string) {
	switch {
	case v.Type() == secretType:
		if v.Len() > 0 {
			v.SetString("[redacted]")
			*secrets = append(*secrets, path)
		}
	case v.Kind() == reflect.Slice:
		if omitempty && v.Len() == 0 {
			v.SetZero()
		}
		for i := 0; i < v.Len(); i++ {
			canonicalValue(v.Index(i), false, fmt.Sprintf("%s[%d]", path, i), secrets)
		}
	case v.Kind() == reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			sf := v.Type().Field(i)
			if sf.IsExported() {
				canonicalValue(v.Field(i), strings.Contains(sf.Tag.Get("json"), ",omitempty"), path+"."+sf.Name, secrets)
			}
		}
	}
}

func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			s.Index(i).Set(deepCopy(v.Index(i)))
		}
		return s
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v) // copies unexported fields too
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				out.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return out
	}
	return v
}

// envelopeDiff reports how a and b differ, or "" when they are equal.
func envelopeDiff(a, b events.Envelope) string {
	var d []string
	if a.Seq != b.Seq {
		d = append(d, fmt.Sprintf("seq %d != %d", a.Seq, b.Seq))
	}
	if a.ID != b.ID {
		d = append(d, fmt.Sprintf("id %v != %v", a.ID, b.ID))
	}
	if !a.Time.Equal(b.Time) {
		d = append(d, fmt.Sprintf("time %v != %v", a.Time, b.Time))
	}
	if a.Node != b.Node {
		d = append(d, fmt.Sprintf("node %q != %q", a.Node, b.Node))
	}
	if a.Cause != b.Cause {
		d = append(d, fmt.Sprintf("cause %v != %v", a.Cause, b.Cause))
	}
	return strings.Join(d, "; ")
}

// name returns "channel/type" of ev.
func name(ev events.Event) string { return ev.Channel() + "/" + ev.Type() }
