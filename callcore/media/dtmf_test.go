package media

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// SendDtmf "1#": per digit, RFC 4733 packets with the telephone-event
// payload type, one per tick, all with the timestamp of the digit's first
// tick, the first marked, durations growing to the digit's, three end
// packets; three audio packets (60 ms) between the digits; sequence numbers
// continuous throughout.
func TestDTMFSend(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	cases := []struct {
		name     string
		offer    string
		pt       uint8
		duration int
		packets  []uint16 // durations, the last three the end packets
	}{
		{"duration=100/pt=101", offerPCMU, 101, 100, []uint16{160, 320, 480, 640, 800, 800, 800, 800}},
		{"duration=0/pt=96", offerPCMA, 96, 0, []uint16{160, 320, 480, 640, 800, 800, 800, 800}},
		{"duration=10-clamped", offerPCMU, 101, 10, []uint16{160, 320, 320, 320, 320}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("dtmf-%d", i)
			e.start(t, id, c.offer, events.MediaConfig{})
			e.waitSent(t, id, 2, nil)
			e.publish(t, &events.MediaSendDtmf{SessionRef: ref(id), Tones: "1#", DurationMS: c.duration})
			isDTMF := func(p *events.SendRtpPacket) bool { return p.PayloadType == c.pt }
			pkts := e.waitSent(t, id, 2*len(c.packets), isDTMF)
			pkts = e.waitSent(t, id, len(pkts)+1, nil)

			first := slices.IndexFunc(pkts, isDTMF)
			for i := 1; i < len(pkts); i++ {
				if pkts[i].SequenceNumber != pkts[i-1].SequenceNumber+1 {
					t.Fatalf("packet %d: seq %d after %d", i, pkts[i].SequenceNumber, pkts[i-1].SequenceNumber)
				}
			}
			n := len(c.packets)
			digit1, gap, digit2 := pkts[first:first+n], pkts[first+n:first+n+dtmfGapTicks], pkts[first+n+dtmfGapTicks:first+2*n+dtmfGapTicks]
			checkDigit(t, digit1, 1, c.pt, c.packets)
			checkDigit(t, digit2, 11, c.pt, c.packets)
			for _, p := range gap {
				if p.PayloadType != 0 || len(p.Payload) != 160 {
					t.Fatalf("between the digits: %+v, want audio", p)
				}
			}
			if !gap[0].Marker {
				t.Fatal("the first audio packet after a digit is not marked")
			}
			before := pkts[first-1]
			if d := step(before.Timestamp, digit1[0].Timestamp); d < 1 || (digit1[0].Timestamp-before.Timestamp)%160 != 0 {
				t.Fatalf("digit 1 at timestamp %d, the audio before at %d", digit1[0].Timestamp, before.Timestamp)
			}
			if d := step(digit1[0].Timestamp, digit2[0].Timestamp); d < int32(n+dtmfGapTicks) {
				t.Fatalf("digit 2 starts %d ticks after digit 1, want at least %d", d, n+dtmfGapTicks)
			}
			if mi, _ := e.media.Stream(id); mi.DTMFSent != 2 {
				t.Fatalf("DTMFSent %d", mi.DTMFSent)
			}
			e.stop(t, id)
		})
	}
}

// checkDigit checks one digit's packets.
func checkDigit(t *testing.T, pkts []*events.SendRtpPacket, event uint8, pt uint8, durations []uint16) {
	t.Helper()
	for i, p := range pkts {
		ev, err := audio.ParseDTMFEvent(p.Payload)
		end := i >= len(durations)-3
		if err != nil || p.PayloadType != pt || ev.Event != event || ev.Duration != durations[i] || ev.End != end ||
			p.Marker != (i == 0) || p.Timestamp != pkts[0].Timestamp || len(p.Payload) != 4 {
			t.Fatalf("digit packet %d: %+v %+v (%v); want event %d pt %d duration %d end %v", i, p, ev, err, event, pt,
				durations[i], end)
		}
	}
}

func TestDTMFSendRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	e.start(t, "dtmf", offerPCMU, events.MediaConfig{})
	e.start(t, "nodtmf", offerPCMUNoDTMF, events.MediaConfig{})
	cases := []struct {
		name, id, tones string
		code            events.MediaErrorCode
		text            string
	}{
		{"digits=bad", "dtmf", "12x4", events.MediaErrInvalidRequest, "'x'"},
		{"digits=lower-case", "dtmf", "a", events.MediaErrInvalidRequest, "'a'"},
		{"digits=none", "dtmf", "", events.MediaErrInvalidRequest, "no digits"},
		{"negotiated=no", "nodtmf", "1", events.MediaErrDTMFNotNegotiated, "telephone-event"},
		{"session=unknown", "ghost", "1", events.MediaErrNoSession, "no media stream"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := len(all[*events.MediaError](e.rec, c.id))
			e.publish(t, &events.MediaSendDtmf{SessionRef: ref(c.id), Tones: c.tones, DurationMS: 100})
			f := waitN[*events.MediaError](t, e.rec, c.id, n+1)[n]
			if f.ErrorCode != c.code || !strings.Contains(f.Error, c.text) {
				t.Fatalf("MediaError{%q, %q}, want %s with %q", f.ErrorCode, f.Error, c.code, c.text)
			}
		})
	}
	e.waitTicks(t, 3)
	for _, id := range []string{"dtmf", "nodtmf"} {
		if mi, _ := e.media.Stream(id); mi.DTMFSent != 0 {
			t.Fatalf("%s: %d digits sent after refusals", id, mi.DTMFSent)
		}
	}
}

// A digit whose start packets were lost and whose end packets arrive
// twice is reported once; a digit whose end never came is reported when
// the stream stops; other payload types are dropped and counted.
func TestDTMFReceive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	const id = "dtmfin"
	e.start(t, id, offerPCMA, events.MediaConfig{})

	five := dtmfPayloads(t, '5', 120) // 6 growing, 3 end
	var lossy [][]byte
	for _, p := range five[2:] {
		lossy = append(lossy, p)
		if ev, _ := audio.ParseDTMFEvent(p); ev.End {
			lossy = append(lossy, p)
		}
	}
	e.injectDTMF(t, id, 96, 8000, lossy)
	for _, pt := range []uint8{18, 0, 101} { // G.729, PCMU on a PCMA stream, an unnegotiated event type
		e.publish(t, &events.RtpPacketReceived{SessionRef: ref(id), PayloadType: pt, Payload: make([]byte, 20)})
	}
	e.publish(t, &events.RtpPacketReceived{SessionRef: ref(id), PayloadType: 96, Payload: []byte{5, 0}}) // too short
	bustest.CheckFor(t, 5e9, func() error {
		if mi, _ := e.media.Stream(id); mi.WrongPayloadType != 4 || mi.DTMFReceived != 1 {
			return fmt.Errorf("wrong payload type %d, digits %d; want 4 and 1", mi.WrongPayloadType, mi.DTMFReceived)
		}
		return nil
	})
	got := all[*events.DtmfDetected](e.rec, id)
	if len(got) != 1 || got[0].Digit != "5" || got[0].DurationMS != 120 {
		t.Fatalf("DtmfDetected %+v, want one 5 of 120 ms", got)
	}

	// Every end packet of the 9 lost: it is reported once telephone
	// events have been quiet for dtmfQuiet, not only when the next digit
	// starts.
	nine := dtmfPayloads(t, '9', 80)
	e.injectDTMF(t, id, 96, 9600, nine[:len(nine)-3])
	bustest.CheckFor(t, 5e9, func() error {
		if n := len(all[*events.DtmfDetected](e.rec, id)); n != 2 {
			return fmt.Errorf("%d digits, want the 5 and the 9", n)
		}
		return nil
	})
	got = all[*events.DtmfDetected](e.rec, id)
	if got[1].Digit != "9" || got[1].DurationMS != 80 {
		t.Fatalf("DtmfDetected %+v, want the 9 (80 ms) after the quiet", got)
	}

	// A digit still open when the stream stops is reported before
	// MediaStreamStopped (by the quiet or by the stop, whichever first).
	seven := dtmfPayloads(t, '7', 60)
	e.injectDTMF(t, id, 96, 12800, seven[:len(seven)-3])
	e.stop(t, id)
	got = all[*events.DtmfDetected](e.rec, id)
	if len(got) != 3 || got[2].Digit != "7" || got[2].DurationMS != 60 {
		t.Fatalf("DtmfDetected %+v, want the 7 (60 ms) by the stream's stop", got)
	}
	flow := controlFlow(e.rec, id)
	if flow[len(flow)-1] != "MediaStreamStopped" {
		t.Fatalf("flow %v: want MediaStreamStopped last", flow)
	}
}
