package events

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
)

// CatalogueDoc lists every channel, event type and field of the bus, as
// served by GET /v1/events/catalogue so that bots can discover the feed.
// (It is not named Catalogue because the function returning it is.)
type CatalogueDoc struct {
	Channels []ChannelDoc `json:"channels"`
}

// ChannelDoc describes one channel and its events, in catalogue order.
type ChannelDoc struct {
	Name   string     `json:"name"`
	Events []EventDoc `json:"events"`
}

// EventDoc describes one event type.
type EventDoc struct {
	// Type is the event type as it appears in a frame's "type".
	Type string `json:"type"`
	// GoType is the Go type that carries it, e.g. "events.MediaSendDtmf".
	GoType string `json:"go_type"`
	// DataPlane is true for the RTP packet events, which carry no feed seq
	// and are streamed only when asked for by name.
	DataPlane bool `json:"data_plane"`
	// Request is true for commands, which are answered with a CommandResult.
	Request bool `json:"request"`
	// Fields are the fields of the frame's "data", in JSON order.
	Fields []FieldDoc `json:"fields"`
}

// FieldDoc describes one JSON field, or the items of an array.
type FieldDoc struct {
	// Name is the JSON name; empty for the Items of an array.
	Name string `json:"name,omitempty"`
	// Type is the JSON type: string, integer, number, boolean, object or array.
	Type string `json:"type"`
	// Format refines Type as OpenAPI does: "base64" for bytes, "date-time",
	// "password" for secrets (always sent as "[redacted]"), "int64",
	// "uint16", "double" and so on.
	Format string `json:"format,omitempty"`
	// Optional is true when the field is left out of the JSON when empty.
	Optional bool `json:"optional"`
	// Fields are the fields of an object.
	Fields []FieldDoc `json:"fields,omitempty"`
	// Items describes the elements of an array.
	Items *FieldDoc `json:"items,omitempty"`
}

// theCatalogue returns the catalogue, building it on first use.
var theCatalogue = sync.OnceValue(buildCatalogue)

// Catalogue returns the catalogue of every registered event, derived by
// reflection from the Go types. It is built once and the same value is
// returned to every caller, which must not modify it.
func Catalogue() *CatalogueDoc { return theCatalogue() }

func buildCatalogue() *CatalogueDoc {
	r := theRegistry()
	c := &CatalogueDoc{Channels: make([]ChannelDoc, len(r.channels))}
	for i, name := range r.channels {
		ch := ChannelDoc{Name: name, Events: make([]EventDoc, len(r.order[i]))}
		for j, t := range r.order[i] {
			ev := reflect.New(t).Interface().(Event)
			ch.Events[j] = EventDoc{
				Type:      ev.Type(),
				GoType:    t.String(),
				DataPlane: IsDataPlane(ev),
				Request:   name == ChannelAPIToSession,
				Fields:    append([]FieldDoc{}, structFields(t)...),
			}
		}
		c.Channels[i] = ch
	}
	return c
}

var (
	timeType   = reflect.TypeFor[time.Time]()
	idType     = reflect.TypeFor[ID]()
	secretType = reflect.TypeFor[Secret]()
)

// structFields lists the JSON fields of struct type t as encoding/json
// writes them: exported fields in order, fields of untagged embedded
// structs inline, json tag names, "-" skipped. It assumes no two fields
// share a JSON name, which the catalogue test checks against json itself.
func structFields(t reflect.Type) []FieldDoc {
	var out []FieldDoc
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if sf.Anonymous && name == "" {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				// Also the zero-size channel markers: no exported fields.
				out = append(out, structFields(ft)...)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		fd := describe(ft)
		fd.Name = name
		fd.Optional = hasOption(opts, "omitempty") || hasOption(opts, "omitzero")
		out = append(out, fd)
	}
	return out
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// describe returns the JSON type of Go type t. It panics on a type with no
// fixed JSON shape (an interface, a func, a chan), which no event may have.
func describe(t reflect.Type) FieldDoc {
	switch t {
	case timeType:
		return FieldDoc{Type: "string", Format: "date-time"}
	case idType:
		return FieldDoc{Type: "string", Format: "event-id"}
	case secretType:
		return FieldDoc{Type: "string", Format: "password"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return describe(t.Elem())
	case reflect.String:
		return FieldDoc{Type: "string"}
	case reflect.Bool:
		return FieldDoc{Type: "boolean"}
	case reflect.Int, reflect.Int64:
		return FieldDoc{Type: "integer", Format: "int64"}
	case reflect.Uint, reflect.Uint64:
		return FieldDoc{Type: "integer", Format: "uint64"}
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return FieldDoc{Type: "integer", Format: t.Kind().String()}
	case reflect.Float32:
		return FieldDoc{Type: "number", Format: "float"}
	case reflect.Float64:
		return FieldDoc{Type: "number", Format: "double"}
	case reflect.Struct:
		return FieldDoc{Type: "object", Fields: structFields(t)}
	case reflect.Map:
		return FieldDoc{Type: "object"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return FieldDoc{Type: "string", Format: "base64"}
		}
		items := describe(t.Elem())
		return FieldDoc{Type: "array", Items: &items}
	}
	panic(fmt.Sprintf("events: catalogue: %v has no JSON type", t))
}
