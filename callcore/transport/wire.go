package transport

import (
	"github.com/emiago/sipgo/sip"
)

// wire reads every UDP datagram off the socket, in wire order, from
// sipgo's transport read filter: before sipgo hands each message to a
// goroutine of its own. The transport publishes the provisional responses
// to its INVITEs from here. Taken from the client transaction instead, a
// 180 that the peer sends right before its 200 is often overtaken by it,
// and the transaction, Accepted by then, drops it: the flow tests saw no
// ringing in 26 calls of 30 to a phone that rings and answers at once.
//
// Over TCP the transaction path is kept: a stream read is any piece of a
// message, and following each connection's stream here would need a
// parser per connection that nothing tells us to free.
type wire struct {
	parser  *sip.Parser
	deliver func(*sip.Response)
}

func newWire(deliver func(*sip.Response)) *wire {
	return &wire{parser: sip.NewParser(), deliver: deliver}
}

// filter is a sip.TransportReadFilter that passes the data on unchanged.
func (w *wire) filter(props sip.TransportReadProps, data []byte) ([]byte, error) {
	if props.Transport != "UDP" || len(data) < 12 || string(data[:8]) != "SIP/2.0 " || data[8] != '1' {
		return data, nil // only provisional responses interest us
	}
	msg, err := w.parser.ParseSIP(data)
	if err != nil {
		return data, nil // sipgo will refuse it too
	}
	if res, ok := msg.(*sip.Response); ok {
		if cseq := res.CSeq(); cseq != nil && cseq.MethodName == sip.INVITE {
			w.deliver(res)
		}
	}
	return data, nil
}
