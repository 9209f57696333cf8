package transport

import (
	"bytes"
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"net"
	"strings"
	"sync"

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
// wire also answers the requests sipgo cannot parse. sipgo drops such a
// datagram (a Refer-To of "just words", say) with only an error log, and
// the sender retransmits it for 32 s. Parsing every request a second time
// here would cost a tenth of the SIP throughput (the read loop is serial),
// so wire instead notes each datagram's sender and, when sipgo logs its
// "failed to parse" for it (synchronously, on the same read goroutine),
// answers 400 if the request line and the headers a response echoes are
// readable (parseFailures). The flow test of a bad Refer-To guards this
// coupling to sipgo's log across upgrades.
type wire struct {
	parser  *sip.Parser
	deliver func(*sip.Response)
	reply   func(to net.Addr, data []byte)
	seed    maphash.Seed

	// The UDP datagram being read: its sender and a fingerprint, so that a
	// parse failure logged for a TCP stream is never answered over UDP.
	mu       sync.Mutex
	lastFrom net.Addr
	lastSum  uint64
}

func newWire(deliver func(*sip.Response), reply func(net.Addr, []byte)) *wire {
	return &wire{parser: sip.NewParser(), deliver: deliver, reply: reply, seed: maphash.MakeSeed()}
}

// parseFailed answers the datagram sipgo just failed to parse, when it is
// the UDP datagram the filter saw last.
func (w *wire) parseFailed(data string, why string) {
	sum := maphash.String(w.seed, data)
	w.mu.Lock()
	to, ok := w.lastFrom, w.lastSum == sum
	w.mu.Unlock()
	if !ok || to == nil || w.reply == nil {
		return
	}
	if res := unparsableRequest([]byte(data), errors.New(why)); res != nil {
		w.reply(to, res)
	}
}

// parseFailures is a slog.Handler in front of sipgo's logger that hands
// sipgo's "failed to parse" records to wire.
type parseFailures struct {
	slog.Handler
	w *wire
}

func (h parseFailures) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.Handler.Enabled(ctx, l)
}

func (h parseFailures) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "failed to parse" {
		var data, why string
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "data":
				data = a.Value.String()
			case "error":
				why = a.Value.String()
			}
			return true
		})
		h.w.parseFailed(data, why)
		r = slog.NewRecord(r.Time, slog.LevelInfo, "unparsable SIP datagram answered 400 where possible", r.PC)
		r.AddAttrs(slog.String("error", why))
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h parseFailures) WithAttrs(as []slog.Attr) slog.Handler {
	return parseFailures{Handler: h.Handler.WithAttrs(as), w: h.w}
}

func (h parseFailures) WithGroup(name string) slog.Handler {
	return parseFailures{Handler: h.Handler.WithGroup(name), w: h.w}
}

// filter is a sip.TransportReadFilter that passes the data on unchanged.
func (w *wire) filter(props sip.TransportReadProps, data []byte) ([]byte, error) {
	if props.Transport != "UDP" {
		return data, nil
	}
	sum := maphash.Bytes(w.seed, data)
	w.mu.Lock()
	w.lastFrom, w.lastSum = props.RemoteAddr, sum
	w.mu.Unlock()
	if len(data) < 12 || string(data[:8]) != "SIP/2.0 " || data[8] != '1' {
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
