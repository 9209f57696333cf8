package calltest

import (
	"errors"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// tap records every SIP message a phone reads, from sipgo's transport read
// filter: before sipgo parses and dispatches it. A call's Received log is
// thus complete and in wire order, and a message is always recorded before
// any handler acts on it. Recording later would lose messages: sipgo hands
// each message to its own goroutine, and a 180 that its transaction sees
// after the 200 is dropped.
type tap struct {
	parser  *sip.Parser
	deliver func(msg sip.Message, transport, remote string)

	mu      sync.Mutex
	streams map[string]*sip.ParserStream // TCP, by connection
}

func newTap(deliver func(sip.Message, string, string)) *tap {
	return &tap{parser: sip.NewParser(), deliver: deliver, streams: map[string]*sip.ParserStream{}}
}

// filter is a sip.TransportReadFilter that passes data on unchanged.
func (t *tap) filter(props sip.TransportReadProps, data []byte) ([]byte, error) {
	remote := props.RemoteAddr.String()
	if props.Transport == "UDP" {
		if msg, err := t.parser.ParseSIP(data); err == nil {
			t.deliver(msg, "UDP", remote)
		}
		return data, nil
	}
	// A TCP read is any piece of the stream: parse it as sipgo will, with
	// a stream parser per connection (each connection reads in one
	// goroutine, so only the map needs the lock).
	key := props.LocalAddr.String() + "|" + remote
	t.mu.Lock()
	s := t.streams[key]
	if s == nil {
		s = t.parser.NewSIPStream()
		t.streams[key] = s
	}
	t.mu.Unlock()
	err := s.ParseSIPStream(data, func(msg sip.Message) { t.deliver(msg, props.Transport, remote) })
	if err != nil && !errors.Is(err, sip.ErrParseSipPartial) {
		s.Reset()
	}
	return data, nil
}

// onWire routes a message read from the network to its call's Received
// log. Initial INVITEs are recorded by onInvite, which makes their call.
func (p *Phone) onWire(msg sip.Message, transport, remote string) {
	msg.SetTransport(transport)
	id := msg.CallID()
	if id == nil {
		return
	}
	var c *Call
	var m Message
	switch r := msg.(type) {
	case *sip.Request:
		to, from := r.To(), r.From()
		if to == nil || from == nil {
			return
		}
		if tag, _ := to.Params.Get("tag"); tag != "" {
			c = p.lookup(id.Value(), tag)
		} else if r.Method != sip.INVITE {
			// A CANCEL names the dialog by the caller's tag only.
			ftag, _ := from.Params.Get("tag")
			c = p.lookupRemote(id.Value(), ftag)
		}
		m = requestMessage(r, remote)
	case *sip.Response:
		from := r.From()
		if from == nil {
			return
		}
		tag, _ := from.Params.Get("tag")
		c = p.lookup(id.Value(), tag)
		m = responseMessage(r, remote)
	}
	if c != nil {
		c.record(true, m)
	}
}
