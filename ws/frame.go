package ws

import (
	"strconv"
	"time"

	"github.com/callbus/callbus/callcore/bus"
)

// ChannelFeed and TypeGap name the feed's own frames, which are not bus
// events: they carry no seq and no id.
const (
	ChannelFeed = "feed"
	TypeGap     = "Gap"
)

// GapEncoding is the Gap reason of an event the feed could not encode (it
// is named like a missed event so that no seq goes unannounced); the bus's
// reasons are bus.GapLagging and bus.GapHistory.
const GapEncoding = "encoding"

// GapFrame encodes g as the feed's Gap frame, in the style of an event
// envelope but with neither seq nor id (it is not a bus event):
//
//	{"time":"2026-11-27T03:14:07.123456Z","node":"a","channel":"feed","type":"Gap",
//	 "data":{"from_seq":1043,"to_seq":1090,"dropped":48,"reason":"lagging"}}
//
// time is when the feed sent it and node the bus's node. data is a
// bus.Gap: the control-plane seqs from_seq through to_seq inclusive were
// not sent (both 0 when only RTP packet events were missed), dropped counts
// every missed event including RTP packet events, and reason is "lagging"
// (the client fell behind: resume with since=from_seq-1), "history" (since
// was older than the retained history: those events are gone) or
// "encoding" (one event could not be encoded; it is logged).
func GapFrame(node string, now time.Time, g bus.Gap) []byte {
	b := make([]byte, 0, 192)
	b = append(b, `{"time":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","node":`...)
	b = strconv.AppendQuote(b, node)
	b = append(b, `,"channel":"feed","type":"Gap","data":{"from_seq":`...)
	b = strconv.AppendUint(b, g.FromSeq, 10)
	b = append(b, `,"to_seq":`...)
	b = strconv.AppendUint(b, g.ToSeq, 10)
	b = append(b, `,"dropped":`...)
	b = strconv.AppendUint(b, g.Dropped, 10)
	b = append(b, `,"reason":`...)
	b = strconv.AppendQuote(b, g.Reason)
	return append(b, "}}"...)
}
