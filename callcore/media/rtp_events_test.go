package media

import (
	"fmt"
	"slices"
	"testing"

	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// In these tests there is no rtp hub: the test plays rtp, which fixes the
// order in which media sees the rtp_to_media events.

// A stop that arrives while the start waits for its port: the stream
// started by rtp is stopped, and only MediaStreamStopped is published.
func TestStopWhilePending(t *testing.T) {
	e := newEnv(t, 0)
	e.publish(t, &events.StartMediaStream{SessionRef: ref("p")})
	waitFor[*events.StartRtpStream](t, e.rec, "p")
	e.publish(t, &events.UpdateMediaStream{SessionRef: ref("p"), RemoteSDP: phoneOffer("m=audio 4000 RTP/AVP 0")})
	if f := waitFor[*events.MediaError](t, e.rec, "p"); f.ErrorCode != events.MediaErrInvalidState {
		t.Fatalf("update before MediaStreamStarted: %+v, want invalid_state", f)
	}
	if mi, _ := e.media.Stream("p"); mi.State != "starting" {
		t.Fatalf("state %q, want starting", mi.State)
	}
	e.publish(t, &events.StopMediaStream{SessionRef: ref("p")})
	waitFor[*events.StopRtpStream](t, e.rec, "p")
	e.publish(t, &events.StopMediaStream{SessionRef: ref("p")}) // a second stop waits with the first

	e.publish(t, &events.RtpStreamStarted{SessionRef: ref("p"), LocalPort: 20000})
	e.publish(t, &events.RtpStreamStopped{SessionRef: ref("p"), Reason: "stopped"})
	waitFor[*events.MediaStreamStopped](t, e.rec, "p")
	want := []string{"StartMediaStream", "StartRtpStream", "UpdateMediaStream", "MediaError", "StopMediaStream",
		"StopRtpStream", "StopMediaStream", "RtpStreamStarted", "RtpStreamStopped", "MediaStreamStopped"}
	if got := e.rec.TypesOf("p"); !slices.Equal(got, want) {
		t.Fatalf("flow %v\nwant %v", got, want)
	}
}

// An RTP stream media did not ask for is stopped, not leaked.
func TestOrphanStreamIsStopped(t *testing.T) {
	e := newEnv(t, 0)
	e.publish(t, &events.RtpStreamStarted{SessionRef: ref("orphan"), LocalPort: 20000})
	waitFor[*events.StopRtpStream](t, e.rec, "orphan")
	e.publish(t, &events.RtpStreamStopped{SessionRef: ref("orphan"), Reason: "stopped"})
	waitFor[*events.RtpStreamStopped](t, e.rec, "orphan")
	if n := len(all[*events.MediaStreamStopped](e.rec, "orphan")); n != 0 {
		t.Fatalf("MediaStreamStopped for a session media never had")
	}
}

func TestRtpErrors(t *testing.T) {
	e := newEnv(t, 0)
	cases := []struct {
		name    string
		started bool
		rtpCode events.RtpErrorCode
		err     string
		code    events.MediaErrorCode
	}{
		{"phase=starting/error=no_port", false, events.RtpErrNoPort, "no_port: no free RTP port pair", events.MediaErrNoPort},
		{"phase=starting/error=other", false, events.RtpErrBadRequest, "bad_request: remote_port 70000 out of range", events.MediaErrRTP},
		{"phase=started/error=socket", true, events.RtpErrSocket, "socket: read RTP socket on port 20000: boom", events.MediaErrRTP},
		// The code decides, not the text.
		{"phase=starting/error=socket/text=no_port", false, events.RtpErrSocket, "no_port: a misleading text", events.MediaErrRTP},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("err-%d", i)
			e.publish(t, &events.StartMediaStream{SessionRef: ref(id)})
			waitFor[*events.StartRtpStream](t, e.rec, id)
			if c.started {
				e.publish(t, &events.RtpStreamStarted{SessionRef: ref(id), LocalPort: 20000})
				waitFor[*events.MediaStreamStarted](t, e.rec, id)
			}
			e.publish(t, &events.RtpError{SessionRef: ref(id), Error: c.err, ErrorCode: c.rtpCode})
			f := waitFor[*events.MediaError](t, e.rec, id)
			if f.ErrorCode != c.code || f.Error != c.err {
				t.Fatalf("MediaError %+v, want %s with rtp's text", f, c.code)
			}
			_, known := e.media.Stream(id)
			if known != c.started {
				t.Fatalf("media knows the session: %v, want %v", known, c.started)
			}
		})
	}
}

func TestPacketsAndStatistics(t *testing.T) {
	e := newEnv(t, 0)
	e.publish(t, &events.StartMediaStream{SessionRef: ref("q")})
	waitFor[*events.StartRtpStream](t, e.rec, "q")
	e.publish(t, &events.RtpStreamStarted{SessionRef: ref("q"), LocalPort: 20000})
	waitFor[*events.MediaStreamStarted](t, e.rec, "q")

	for i := range 3 {
		e.publish(t, &events.RtpPacketReceived{SessionRef: ref("q"), SequenceNumber: uint16(i), Payload: []byte{0xff}})
	}
	e.publish(t, &events.RtpStatisticsUpdate{SessionRef: ref("q"), Stats: events.RtpStats{PacketsReceived: 3, JitterMS: 1.5}})
	bustest.CheckFor(t, 5e9, func() error {
		mi, _ := e.media.Stream("q")
		if mi.PacketsReceived != 3 || mi.Stats.PacketsReceived != 3 || mi.Stats.JitterMS != 1.5 {
			return fmt.Errorf("media state %+v", mi)
		}
		return nil
	})
}
