package transport

import (
	"bytes"
	"net"
	"strings"

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
//
// Requests are parsed here too, for one reason: sipgo drops a datagram it
// cannot parse (a Refer-To of "just words", say) without an answer, and
// the sender retransmits it for 32 s. When its start line and the headers
// a response needs are readable, wire answers 400 itself (reply).
type wire struct {
	parser  *sip.Parser
	deliver func(*sip.Response)
	reply   func(to net.Addr, data []byte)
}

func newWire(deliver func(*sip.Response), reply func(net.Addr, []byte)) *wire {
	return &wire{parser: sip.NewParser(), deliver: deliver, reply: reply}
}

// filter is a sip.TransportReadFilter that passes the data on unchanged.
func (w *wire) filter(props sip.TransportReadProps, data []byte) ([]byte, error) {
	if props.Transport != "UDP" || len(data) < 12 {
		return data, nil
	}
	if string(data[:8]) != "SIP/2.0 " {
		if _, err := w.parser.ParseSIP(data); err != nil && w.reply != nil {
			if res := unparsableRequest(data, err); res != nil {
				w.reply(props.RemoteAddr, res)
			}
		}
		return data, nil
	}
	if data[8] != '1' {
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

// unparsableRequest builds the stateless 400 for a request that does not parse,
// from its raw lines: Via, From, To, Call-ID and CSeq copied as they are
// (RFC 3261 §8.2.6). It returns nil for a datagram that is no SIP request
// or lacks what a response must echo: such garbage gets no answer.
func unparsableRequest(data []byte, why error) []byte {
	lines := strings.Split(string(data), "\n")
	if len(lines) < 2 || !strings.HasSuffix(strings.TrimSpace(lines[0]), " SIP/2.0") ||
		strings.HasPrefix(lines[0], "ACK ") { // an ACK is never answered
		return nil
	}
	var b bytes.Buffer
	b.WriteString("SIP/2.0 400 Bad Request\r\n")
	have := map[string]bool{}
	for _, l := range lines[1:] {
		l = strings.TrimRight(l, "\r")
		if l == "" {
			break // end of headers
		}
		name, _, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch canon := canonicalName(strings.TrimSpace(name)); canon {
		case "Via", "From", "To", "Call-ID", "CSeq":
			have[canon] = true
			b.WriteString(l + "\r\n")
		}
	}
	if !have["Via"] || !have["CSeq"] || !have["Call-ID"] || !have["From"] || !have["To"] {
		return nil
	}
	reason := strings.NewReplacer(`"`, "'", "\r", " ", "\n", " ").Replace(why.Error())
	b.WriteString(`Warning: 399 callbus "unparsable request: ` + reason + "\"\r\n")
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}
