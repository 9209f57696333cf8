package media

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"

	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// sdpOf joins SDP lines with CRLF.
func sdpOf(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n" }

// phoneOffer is an offer as a softphone at 198.51.100.1 sends it, with the
// given audio m= line and media attributes.
func phoneOffer(mline string, attrs ...string) string {
	return sdpOf(append([]string{"v=0", "o=alice 2890844526 2890844526 IN IP4 198.51.100.1", "s=-",
		"c=IN IP4 198.51.100.1", "t=0 0", mline}, attrs...)...)
}

var g711DTMF = []string{"a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000",
	"a=fmtp:101 0-16"}

// parsed is our SDP as pion reads it.
func parsed(t *testing.T, text string) *sdp.SessionDescription {
	t.Helper()
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(text); err != nil {
		t.Fatalf("our SDP does not parse: %v\n%s", err, text)
	}
	return &sd
}

func directionOf(md *sdp.MediaDescription) string {
	for _, a := range md.Attributes {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return a.Key
		}
	}
	return ""
}

func TestAnswer(t *testing.T) {
	e := newEnv(t, 40)
	cases := []struct {
		name   string
		offer  string
		config events.MediaConfig
		// Expected answer, when wantErr is "".
		codec       string
		formats     []string // of the audio m= line
		direction   string
		remote      string // address:port recorded by rtp
		mlines      int
		wantErr     events.MediaErrorCode
		wantErrText string
	}{
		{name: "codec=PCMU/dtmf=yes", offer: phoneOffer("m=audio 49170 RTP/AVP 0 8 101", g711DTMF...),
			codec: "PCMU", formats: []string{"0", "101"}, direction: "sendrecv", remote: "198.51.100.1:49170", mlines: 1},
		{name: "codec=PCMA", offer: phoneOffer("m=audio 49170 RTP/AVP 8 0", g711DTMF[:2]...),
			codec: "PCMA", formats: []string{"8"}, direction: "sendrecv", remote: "198.51.100.1:49170", mlines: 1},
		{name: "codec=PCMA/config=PCMA", offer: phoneOffer("m=audio 49170 RTP/AVP 0 8", g711DTMF[:2]...),
			config: events.MediaConfig{Codecs: []string{"pcma"}},
			codec:  "PCMA", formats: []string{"8"}, direction: "sendrecv", remote: "198.51.100.1:49170", mlines: 1},
		{name: "codec=PCMU/static-without-rtpmap", offer: phoneOffer("m=audio 4000 RTP/AVP 18 0"),
			codec: "PCMU", formats: []string{"0"}, direction: "sendrecv", remote: "198.51.100.1:4000", mlines: 1},
		{name: "dtmf=yes/pt=96", offer: phoneOffer("m=audio 49170 RTP/AVP 8 96", "a=rtpmap:96 telephone-event/8000",
			"a=fmtp:96 0-15"),
			codec: "PCMA", formats: []string{"8", "96"}, direction: "sendrecv", remote: "198.51.100.1:49170", mlines: 1},
		{name: "dtmf=no", offer: phoneOffer("m=audio 49170 RTP/AVP 0"),
			codec: "PCMU", formats: []string{"0"}, direction: "sendrecv", remote: "198.51.100.1:49170", mlines: 1},
		{name: "dtmf=wrong-rate", offer: phoneOffer("m=audio 49170 RTP/AVP 0 97", "a=rtpmap:97 telephone-event/48000"),
			codec: "PCMU", formats: []string{"0"}, direction: "sendrecv", remote: "198.51.100.1:49170", mlines: 1},
		{name: "direction=sendonly", offer: phoneOffer("m=audio 49170 RTP/AVP 0 101", append(g711DTMF, "a=sendonly")...),
			codec: "PCMU", formats: []string{"0", "101"}, direction: "recvonly", remote: "198.51.100.1:49170", mlines: 1},
		{name: "direction=recvonly", offer: phoneOffer("m=audio 49170 RTP/AVP 0", "a=recvonly"),
			codec: "PCMU", formats: []string{"0"}, direction: "sendonly", remote: "198.51.100.1:49170", mlines: 1},
		{name: "direction=inactive", offer: phoneOffer("m=audio 49170 RTP/AVP 0", "a=inactive"),
			codec: "PCMU", formats: []string{"0"}, direction: "inactive", remote: "198.51.100.1:49170", mlines: 1},
		{name: "direction=session-level-sendonly", offer: sdpOf("v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-",
			"c=IN IP4 198.51.100.1", "t=0 0", "a=sendonly", "m=audio 5000 RTP/AVP 8"),
			codec: "PCMA", formats: []string{"8"}, direction: "recvonly", remote: "198.51.100.1:5000", mlines: 1},
		{name: "direction=sendrecv/config=recvonly", offer: phoneOffer("m=audio 49170 RTP/AVP 0"),
			config: events.MediaConfig{Direction: "recvonly"},
			codec:  "PCMU", formats: []string{"0"}, direction: "recvonly", remote: "198.51.100.1:49170", mlines: 1},
		{name: "connection=media-level", offer: sdpOf("v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-",
			"c=IN IP4 198.51.100.1", "t=0 0", "m=audio 6000 RTP/AVP 0", "c=IN IP4 203.0.113.7"),
			codec: "PCMU", formats: []string{"0"}, direction: "sendrecv", remote: "203.0.113.7:6000", mlines: 1},
		{name: "streams=video-then-audio", offer: sdpOf("v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-",
			"c=IN IP4 198.51.100.1", "t=0 0", "m=video 5002 RTP/AVP 96", "a=rtpmap:96 H264/90000",
			"m=audio 5000 RTP/AVP 0"),
			codec: "PCMU", formats: []string{"0"}, direction: "sendrecv", remote: "198.51.100.1:5000", mlines: 2},
		{name: "streams=port-0-then-audio", offer: sdpOf("v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-",
			"c=IN IP4 198.51.100.1", "t=0 0", "m=audio 0 RTP/AVP 0", "m=audio 5004 RTP/AVP 8"),
			codec: "PCMA", formats: []string{"8"}, direction: "sendrecv", remote: "198.51.100.1:5004", mlines: 2},
		{name: "pion-strict-order", offer: "v=0\n" + // LF only, c= after t=, a= before c=, no s=
			"o=- 8 8 IN IP4 198.51.100.1\n" + "t=0 0\n" + "a=tool:phone\n" + "c=IN IP4 198.51.100.1\n" +
			"m=audio 7000 RTP/AVP 8 101  \n" + "a=rtpmap:101 telephone-event/8000\n\n",
			codec: "PCMA", formats: []string{"8", "101"}, direction: "sendrecv", remote: "198.51.100.1:7000", mlines: 1},

		{name: "no-audio", offer: sdpOf("v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-", "c=IN IP4 198.51.100.1",
			"t=0 0", "m=video 5002 RTP/AVP 96"), wantErr: "incompatible_sdp", wantErrText: "no audio"},
		{name: "no-m-line", offer: sdpOf("v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-", "t=0 0"),
			wantErr: "incompatible_sdp", wantErrText: "no audio"},
		{name: "port-0", offer: phoneOffer("m=audio 0 RTP/AVP 0 8"), wantErr: "incompatible_sdp", wantErrText: "port 0"},
		{name: "no-common-codec", offer: phoneOffer("m=audio 49170 RTP/AVP 9 18 101", "a=rtpmap:9 G722/8000",
			"a=rtpmap:18 G729/8000", "a=rtpmap:101 telephone-event/8000"),
			wantErr: "incompatible_sdp", wantErrText: "no common codec"},
		{name: "no-common-codec/config=PCMA", offer: phoneOffer("m=audio 49170 RTP/AVP 0"),
			config:  events.MediaConfig{Codecs: []string{"PCMA"}},
			wantErr: "incompatible_sdp", wantErrText: "no common codec"},
		{name: "config=G722-only", offer: phoneOffer("m=audio 49170 RTP/AVP 0"),
			config:  events.MediaConfig{Codecs: []string{"G722"}},
			wantErr: "incompatible_sdp", wantErrText: "no supported codec"},
		{name: "config=bad-direction", offer: phoneOffer("m=audio 49170 RTP/AVP 0"),
			config:  events.MediaConfig{Direction: "both"},
			wantErr: "invalid_config", wantErrText: "direction"},
		{name: "proto=RTP/SAVP", offer: phoneOffer("m=audio 49170 RTP/SAVP 0"),
			wantErr: "incompatible_sdp", wantErrText: "RTP/SAVP"},
		{name: "no-connection", offer: sdpOf("v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-", "t=0 0",
			"m=audio 5000 RTP/AVP 0"), wantErr: "incompatible_sdp", wantErrText: "connection address"},
		{name: "garbage", offer: "hello, this is not SDP", wantErr: "incompatible_sdp", wantErrText: "type=value"},
		{name: "garbage/no-version", offer: sdpOf("o=- 1 1 IN IP4 198.51.100.1", "s=-"), wantErr: "incompatible_sdp", wantErrText: "v="},
		{name: "garbage/unknown-type", offer: phoneOffer("m=audio 49170 RTP/AVP 0", "y=0123456789"),
			wantErr: "incompatible_sdp", wantErrText: "y="},
		{name: "garbage/bad-origin", offer: sdpOf("v=0", "o=x", "s=-", "t=0 0"),
			wantErr: "incompatible_sdp", wantErrText: "parse SDP"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("answer-%d", i)
			before := e.rtp.PortsInUse()
			e.publish(t, &events.StartMediaStream{SessionRef: ref(id), RemoteSDP: c.offer, MediaConfig: c.config})
			started, failed := waitOutcome(t, e.rec, id)
			if c.wantErr != "" {
				if failed == nil {
					t.Fatalf("MediaStreamStarted, want MediaError %s:\n%s", c.wantErr, started.LocalSDP)
				}
				if failed.ErrorCode != c.wantErr || !strings.Contains(failed.Error, c.wantErrText) {
					t.Fatalf("MediaError{%q, %q}, want code %q with %q", failed.ErrorCode, failed.Error, c.wantErr, c.wantErrText)
				}
				// The offer is refused before a port is asked for.
				if n := len(all[*events.StartRtpStream](e.rec, id)); n != 0 || e.rtp.PortsInUse() != before {
					t.Fatalf("a refused offer took a port (%d StartRtpStream)", n)
				}
				if _, ok := e.media.Stream(id); ok {
					t.Fatal("a refused offer left media state behind")
				}
				return
			}
			if failed != nil {
				t.Fatalf("MediaError{%q, %q}, want an answer", failed.ErrorCode, failed.Error)
			}
			sd := parsed(t, started.LocalSDP)
			if len(sd.MediaDescriptions) != c.mlines {
				t.Fatalf("answer has %d m= lines, want %d:\n%s", len(sd.MediaDescriptions), c.mlines, started.LocalSDP)
			}
			var md *sdp.MediaDescription
			for _, m := range sd.MediaDescriptions {
				if m.MediaName.Port.Value != 0 {
					if md != nil {
						t.Fatalf("two accepted streams:\n%s", started.LocalSDP)
					}
					md = m
				}
			}
			if md == nil || md.MediaName.Media != "audio" || md.MediaName.Port.Value != started.LocalPort {
				t.Fatalf("no audio stream on local_port %d:\n%s", started.LocalPort, started.LocalSDP)
			}
			if !slices.Equal(md.MediaName.Formats, c.formats) {
				t.Fatalf("formats %v, want %v:\n%s", md.MediaName.Formats, c.formats, started.LocalSDP)
			}
			if d := directionOf(md); d != c.direction {
				t.Fatalf("direction %q, want %q", d, c.direction)
			}
			if started.Codec != c.codec {
				t.Fatalf("codec %q, want %q", started.Codec, c.codec)
			}
			if got := sd.ConnectionInformation.Address.Address; got != externalIP.String() {
				t.Fatalf("c= %s, want the configured %s", got, externalIP)
			}
			if slices.Contains(c.formats, "101") || slices.Contains(c.formats, "96") {
				pt := c.formats[1]
				if v, _ := md.Attribute("rtpmap"); !strings.Contains(started.LocalSDP, "a=rtpmap:"+pt+" telephone-event/8000") {
					t.Fatalf("no telephone-event rtpmap for %s (%s):\n%s", pt, v, started.LocalSDP)
				}
			}

			info, ok := e.rtp.Stream(id)
			if !ok {
				t.Fatal("rtp has no stream for the session")
			}
			if got := net.JoinHostPort(info.RemoteAddress, fmt.Sprint(info.RemotePort)); got != c.remote {
				t.Fatalf("rtp remote %s, want %s", got, c.remote)
			}
			if info.Codec != c.codec || info.LocalPort != started.LocalPort {
				t.Fatalf("rtp stream %+v: want codec %s on %d", info, c.codec, started.LocalPort)
			}
			mi, _ := e.media.Stream(id)
			if mi.State != "started" || mi.Direction != c.direction || mi.Offerer {
				t.Fatalf("media state %+v", mi)
			}

			e.publish(t, &events.StopMediaStream{SessionRef: ref(id)})
			waitFor[*events.MediaStreamStopped](t, e.rec, id)
		})
	}
}

func TestOffer(t *testing.T) {
	e := newEnv(t, 4)
	cases := []struct {
		name    string
		config  events.MediaConfig
		formats []string
		codec   string
		dir     string
	}{
		{"config=default", events.MediaConfig{}, []string{"0", "8", "101"}, "PCMU", "sendrecv"},
		{"config=PCMA-first", events.MediaConfig{Codecs: []string{"PCMA", "PCMU", "G722"}}, []string{"8", "0", "101"}, "PCMA", "sendrecv"},
		{"config=sendonly/ptime=30", events.MediaConfig{Direction: "sendonly", PtimeMS: 30}, []string{"0", "8", "101"}, "PCMU", "sendonly"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("offer-%d", i)
			e.publish(t, &events.StartMediaStream{SessionRef: ref(id), MediaConfig: c.config})
			started, failed := waitOutcome(t, e.rec, id)
			if failed != nil {
				t.Fatalf("MediaError %+v", failed)
			}
			sd := parsed(t, started.LocalSDP)
			md := sd.MediaDescriptions[0]
			if len(sd.MediaDescriptions) != 1 || md.MediaName.Port.Value != started.LocalPort ||
				!slices.Equal(md.MediaName.Formats, c.formats) || directionOf(md) != c.dir {
				t.Fatalf("offer: want formats %v, %s, port %d:\n%s", c.formats, c.dir, started.LocalPort, started.LocalSDP)
			}
			for _, want := range []string{"a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16",
				"c=IN IP4 " + externalIP.String(), "o=callbus "} {
				if !strings.Contains(started.LocalSDP, want) {
					t.Fatalf("offer lacks %q:\n%s", want, started.LocalSDP)
				}
			}
			if c.config.PtimeMS != 0 && !strings.Contains(started.LocalSDP, fmt.Sprintf("a=ptime:%d", c.config.PtimeMS)) {
				t.Fatalf("offer lacks ptime %d:\n%s", c.config.PtimeMS, started.LocalSDP)
			}
			if started.Codec != c.codec {
				t.Fatalf("codec %q, want %q", started.Codec, c.codec)
			}
			start := waitFor[*events.StartRtpStream](t, e.rec, id)
			if start.LocalPort != 0 || start.RemoteAddress != "" || start.RemotePort != 0 {
				t.Fatalf("offerer's StartRtpStream %+v: want local_port 0 and no remote yet", start)
			}
			e.publish(t, &events.StopMediaStream{SessionRef: ref(id)})
			waitFor[*events.MediaStreamStopped](t, e.rec, id)
		})
	}
}

// The outgoing-call flow: our offer, then the far end's answer in
// UpdateMediaStream → UpdateRtpStream with its address, and the codec it
// chose reaches the RTP stream.
func TestUpdateAfterOffer(t *testing.T) {
	e := newEnv(t, 2)
	e.publish(t, &events.StartMediaStream{SessionRef: ref("out")})
	started := waitFor[*events.MediaStreamStarted](t, e.rec, "out")

	answerSDP := sdpOf("v=0", "o=bob 1 1 IN IP4 203.0.113.5", "s=-", "c=IN IP4 203.0.113.5", "t=0 0",
		"m=audio 30000 RTP/AVP 8 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=sendrecv")
	e.publish(t, &events.UpdateMediaStream{SessionRef: ref("out"), LocalSDP: started.LocalSDP, RemoteSDP: answerSDP})
	up := waitFor[*events.UpdateRtpStream](t, e.rec, "out")
	if up.RemoteAddress != "203.0.113.5" || up.RemotePort != 30000 {
		t.Fatalf("UpdateRtpStream %+v: want 203.0.113.5:30000", up)
	}
	bustest.CheckFor(t, 5e9, func() error {
		info, _ := e.rtp.Stream("out")
		if info.RemoteAddress != "203.0.113.5" || info.RemotePort != 30000 || info.Codec != "PCMA" ||
			info.PayloadType != 8 || info.LocalPort != started.LocalPort {
			return fmt.Errorf("rtp stream %+v: want PCMA/8 to 203.0.113.5:30000 on %d", info, started.LocalPort)
		}
		return nil
	})
	mi, _ := e.media.Stream("out")
	if mi.Codec != "PCMA" || mi.PayloadType != 8 || mi.DTMFPayloadType != 101 || !mi.Sending() {
		t.Fatalf("media state %+v", mi)
	}
	if n := e.rtp.PortsInUse(); n != 1 {
		t.Fatalf("the reconfiguration took another port: %d in use", n)
	}

	// An update that keeps the codec does not touch the RTP stream's
	// configuration: only UpdateRtpStream.
	moved := strings.ReplaceAll(answerSDP, "30000", "30002")
	e.publish(t, &events.UpdateMediaStream{SessionRef: ref("out"), RemoteSDP: moved})
	if up := waitN[*events.UpdateRtpStream](t, e.rec, "out", 2)[1]; up.RemotePort != 30002 {
		t.Fatalf("second UpdateRtpStream %+v", up)
	}
	if n := len(all[*events.StartRtpStream](e.rec, "out")); n != 2 {
		t.Fatalf("%d StartRtpStream, want 2 (start, and one reconfiguration for PCMA)", n)
	}

	e.publish(t, &events.UpdateMediaStream{SessionRef: ref("out"), LocalSDP: started.LocalSDP,
		RemoteSDP: phoneOffer("m=audio 30000 RTP/AVP 9")})
	if f := waitFor[*events.MediaError](t, e.rec, "out"); f.ErrorCode != events.MediaErrIncompatibleSDP {
		t.Fatalf("MediaError %+v, want incompatible_sdp", f)
	}
}

// A far-end re-INVITE with sendonly is answered (by the session) with
// recvonly: media records that it no longer sends.
func TestUpdateReinviteHold(t *testing.T) {
	e := newEnv(t, 1)
	offer := phoneOffer("m=audio 49170 RTP/AVP 0 101", g711DTMF...)
	e.publish(t, &events.StartMediaStream{SessionRef: ref("in"), RemoteSDP: offer})
	started := waitFor[*events.MediaStreamStarted](t, e.rec, "in")

	held := strings.Replace(offer, "a=fmtp:101 0-16", "a=fmtp:101 0-16\r\na=sendonly", 1)
	ours := strings.Replace(started.LocalSDP, "a=sendrecv", "a=recvonly", 1)
	e.publish(t, &events.UpdateMediaStream{SessionRef: ref("in"), LocalSDP: ours, RemoteSDP: held})
	waitFor[*events.UpdateRtpStream](t, e.rec, "in")
	mi, _ := e.media.Stream("in")
	if mi.Direction != "recvonly" || mi.Sending() || mi.LocalSDP != ours {
		t.Fatalf("after a remote hold: %+v", mi)
	}
}

func TestHoldResume(t *testing.T) {
	e := newEnv(t, 1)
	e.publish(t, &events.StartMediaStream{SessionRef: ref("h")})
	waitFor[*events.MediaStreamStarted](t, e.rec, "h")

	want := func(held bool) {
		t.Helper()
		bustest.CheckFor(t, 5e9, func() error {
			if mi, _ := e.media.Stream("h"); mi.Held != held || mi.Sending() == held {
				return fmt.Errorf("held=%v sending=%v, want held=%v", mi.Held, mi.Sending(), held)
			}
			return nil
		})
	}
	e.publish(t, &events.HoldMedia{SessionRef: ref("h")})
	want(true)
	e.publish(t, &events.ResumeMedia{SessionRef: ref("h")})
	want(false)
}

func TestStopReleasesPort(t *testing.T) {
	e := newEnv(t, 2)
	e.publish(t, &events.StartMediaStream{SessionRef: ref("s"), RemoteSDP: phoneOffer("m=audio 4000 RTP/AVP 0")})
	started := waitFor[*events.MediaStreamStarted](t, e.rec, "s")

	// The port in the SDP is a real socket of the rtp layer.
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: started.LocalPort})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte{0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 1, 0xff}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	bustest.CheckFor(t, 5e9, func() error {
		if info, _ := e.rtp.Stream("s"); info.PacketsReceived != 1 {
			return fmt.Errorf("rtp counted %d packets on the advertised port, want 1", info.PacketsReceived)
		}
		return nil
	})

	e.publish(t, &events.StopMediaStream{SessionRef: ref("s")})
	stopped := waitFor[*events.MediaStreamStopped](t, e.rec, "s")
	if stopped.Reason != "stopped" {
		t.Fatalf("reason %q, want stopped", stopped.Reason)
	}
	if got := controlFlow(e.rec, "s"); !slices.Equal(got, []string{"StartMediaStream", "StartRtpStream", "RtpStreamStarted",
		"MediaStreamStarted", "StopMediaStream", "StopRtpStream", "RtpStreamStopped", "MediaStreamStopped"}) {
		t.Fatalf("flow %v", got)
	}
	if n := e.rtp.PortsInUse(); n != 0 {
		t.Fatalf("PortsInUse = %d after stop", n)
	}
	l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: started.LocalPort})
	if err != nil {
		t.Fatalf("port %d still bound after MediaStreamStopped: %v", started.LocalPort, err)
	}
	l.Close()
	if _, ok := e.media.Stream("s"); ok {
		t.Fatal("media still knows the session")
	}
	e.publish(t, &events.StopMediaStream{SessionRef: ref("s")})
	if f := waitFor[*events.MediaError](t, e.rec, "s"); f.ErrorCode != events.MediaErrNoSession {
		t.Fatalf("second stop: %+v, want no_session", f)
	}
}

// Starting and stopping many calls over two port pairs works only if every
// stop releases its pair.
func TestStartStopMany(t *testing.T) {
	e := newEnv(t, 2)
	for i := range 40 {
		a, b := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
		e.publish(t, &events.StartMediaStream{SessionRef: ref(a), RemoteSDP: phoneOffer("m=audio 4000 RTP/AVP 0")})
		e.publish(t, &events.StartMediaStream{SessionRef: ref(b)})
		for _, id := range []string{a, b} {
			if _, failed := waitOutcome(t, e.rec, id); failed != nil {
				t.Fatalf("round %d: %s: MediaError %+v", i, id, failed)
			}
		}
		e.publish(t, &events.StopMediaStream{SessionRef: ref(a)})
		e.publish(t, &events.StopMediaStream{SessionRef: ref(b)})
		waitFor[*events.MediaStreamStopped](t, e.rec, a)
		waitFor[*events.MediaStreamStopped](t, e.rec, b)
	}
	if n := e.rtp.PortsInUse(); n != 0 {
		t.Fatalf("PortsInUse = %d after every stop", n)
	}
}

func TestPortExhaustion(t *testing.T) {
	e := newEnv(t, 1)
	e.publish(t, &events.StartMediaStream{SessionRef: ref("one")})
	waitFor[*events.MediaStreamStarted](t, e.rec, "one")

	e.publish(t, &events.StartMediaStream{SessionRef: ref("two"), RemoteSDP: phoneOffer("m=audio 4000 RTP/AVP 0")})
	started, failed := waitOutcome(t, e.rec, "two")
	if started != nil || failed.ErrorCode != events.MediaErrNoPort || !strings.Contains(failed.Error, "no free RTP port") {
		t.Fatalf("started %v, MediaError %+v: want no_port", started, failed)
	}
	if _, ok := e.media.Stream("two"); ok {
		t.Fatal("a failed start left media state behind")
	}

	e.publish(t, &events.StopMediaStream{SessionRef: ref("one")})
	waitFor[*events.MediaStreamStopped](t, e.rec, "one")
	e.publish(t, &events.StartMediaStream{SessionRef: ref("three")})
	waitFor[*events.MediaStreamStarted](t, e.rec, "three")
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, 2)
	e.publish(t, &events.StartMediaStream{SessionRef: ref("live")})
	waitFor[*events.MediaStreamStarted](t, e.rec, "live")
	update := func(id string) *events.UpdateMediaStream {
		return &events.UpdateMediaStream{SessionRef: ref(id), RemoteSDP: phoneOffer("m=audio 4000 RTP/AVP 0")}
	}
	cases := []struct {
		name string
		ev   events.Event
		code events.MediaErrorCode
	}{
		{"event=StopMediaStream/session=unknown", &events.StopMediaStream{SessionRef: ref("ghost1")}, events.MediaErrNoSession},
		{"event=UpdateMediaStream/session=unknown", update("ghost2"), events.MediaErrNoSession},
		{"event=HoldMedia/session=unknown", &events.HoldMedia{SessionRef: ref("ghost3")}, events.MediaErrNoSession},
		{"event=ResumeMedia/session=unknown", &events.ResumeMedia{SessionRef: ref("ghost4")}, events.MediaErrNoSession},
		{"event=StartMediaStream/session=live", &events.StartMediaStream{SessionRef: ref("live")}, events.MediaErrInvalidState},
		{"event=StartMediaStream/local_sdp=set", &events.StartMediaStream{SessionRef: ref("local"),
			LocalSDP: phoneOffer("m=audio 4000 RTP/AVP 0")}, events.MediaErrNotSupported},
		{"event=StartMediaStream/ptime=7", &events.StartMediaStream{SessionRef: ref("ptime"),
			MediaConfig: events.MediaConfig{PtimeMS: 7}}, events.MediaErrInvalidConfig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := events.SessionOf(c.ev)
			n := len(all[*events.MediaError](e.rec, id))
			e.publish(t, c.ev)
			if f := waitN[*events.MediaError](t, e.rec, id, n+1)[n]; f.ErrorCode != c.code {
				t.Fatalf("MediaError %+v, want %s", f, c.code)
			}
		})
	}
	if n := e.rtp.PortsInUse(); n != 1 {
		t.Fatalf("PortsInUse = %d, want 1 (the live session)", n)
	}
}
