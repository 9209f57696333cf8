package events

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
)

// Errors of the registry and the codec; each is returned wrapped with the
// offending channel, type or decoding error.
var (
	// ErrUnknownChannel means a channel name that is not in the catalogue
	// (or a frame with no channel at all).
	ErrUnknownChannel = errors.New("unknown event channel")
	// ErrUnknownType means an event type that its channel does not have.
	ErrUnknownType = errors.New("unknown event type")
	// ErrMalformed means a frame that is not valid JSON, or not the shape
	// of an envelope, or whose data is not the shape of its event type.
	ErrMalformed = errors.New("malformed event frame")
)

// channelList is one channel of the catalogue and the function that lists
// a zero instance of each of its events.
type channelList struct {
	name   string
	events func() []Event
}

// catalogueLists returns the channels in catalogue order (DESIGN.md §3).
func catalogueLists() []channelList {
	return []channelList{
		{ChannelSessionToDialog, sessionToDialogEvents},
		{ChannelDialogToSession, dialogToSessionEvents},
		{ChannelTransportToDialog, transportToDialogEvents},
		{ChannelDialogToTransport, dialogToTransportEvents},
		{ChannelSessionToMedia, sessionToMediaEvents},
		{ChannelMediaToSession, mediaToSessionEvents},
		{ChannelMediaToRTP, mediaToRTPEvents},
		{ChannelRTPToMedia, rtpToMediaEvents},
		{ChannelAPIToSession, apiToSessionEvents},
		{ChannelSessionToApp, sessionToAppEvents},
	}
}

// registry maps (channel, type) to the Go struct type of the event. It is
// built once and never changed.
type registry struct {
	channels []string
	types    map[string]map[string]reflect.Type // channel → type → struct type
	order    [][]reflect.Type                   // per channel, the struct types in catalogue order
}

// theRegistry returns the registry of the catalogue, building it on first use.
var theRegistry = sync.OnceValue(func() *registry { return buildRegistry(catalogueLists()) })

// buildRegistry panics when two events share a (channel, type), when an
// event's Channel disagrees with the list it is in, or when an event is not
// a pointer to a struct: each is a programming error in this package.
func buildRegistry(lists []channelList) *registry {
	r := &registry{types: make(map[string]map[string]reflect.Type, len(lists))}
	for _, l := range lists {
		if _, dup := r.types[l.name]; dup {
			panic(fmt.Sprintf("events: channel %q listed twice", l.name))
		}
		byType := make(map[string]reflect.Type)
		var order []reflect.Type
		for _, ev := range l.events() {
			t := reflect.TypeOf(ev)
			if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
				panic(fmt.Sprintf("events: %s lists %v, not a pointer to a struct", l.name, t))
			}
			if ch := ev.Channel(); ch != l.name {
				panic(fmt.Sprintf("events: %v is listed in %s but its Channel is %q", t, l.name, ch))
			}
			typ := ev.Type()
			if prev, dup := byType[typ]; dup {
				panic(fmt.Sprintf("events: %s/%s is both %v and %v", l.name, typ, prev, t.Elem()))
			}
			byType[typ] = t.Elem()
			order = append(order, t.Elem())
		}
		r.types[l.name] = byType
		r.channels = append(r.channels, l.name)
		r.order = append(r.order, order)
	}
	return r
}

func (r *registry) lookup(channel, typ string) (reflect.Type, error) {
	byType, ok := r.types[channel]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownChannel, channel)
	}
	t, ok := byType[typ]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, channel+"/"+typ)
	}
	return t, nil
}

// Channels returns the names of every channel, in catalogue order. The
// slice is the caller's.
func Channels() []string {
	return append([]string(nil), theRegistry().channels...)
}

// Lookup returns the Go struct type of the event typ of channel (the
// pointer to it implements Event). It returns an error wrapping
// ErrUnknownChannel or ErrUnknownType, naming the input, when there is none.
func Lookup(channel, typ string) (reflect.Type, error) {
	return theRegistry().lookup(channel, typ)
}

// New returns a pointer to a new zero event of type typ on channel. It
// returns the errors of Lookup.
func New(channel, typ string) (Event, error) {
	t, err := theRegistry().lookup(channel, typ)
	if err != nil {
		return nil, err
	}
	return reflect.New(t).Interface().(Event), nil
}

// All returns a new zero instance of every event, in catalogue order:
// channels as Channels lists them, and events in DESIGN.md §3 order.
func All() []Event {
	var out []Event
	for _, types := range theRegistry().order {
		for _, t := range types {
			out = append(out, reflect.New(t).Interface().(Event))
		}
	}
	return out
}
