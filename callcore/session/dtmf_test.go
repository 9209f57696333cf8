package session

import (
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

func TestSendDtmf(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredOutbound()

	h.ok(&events.CmdSendDtmf{SessionRef: sref(id), Digits: "12#"}, callcore.StateActive)
	if d := expectEv[*events.MediaSendDtmf](h, id, "media:SendDtmf"); d.Tones != "12#" || d.DurationMS != 100 {
		t.Fatalf("media SendDtmf = %+v", d)
	}
	h.ok(&events.CmdSendDtmf{SessionRef: sref(id), Digits: "*0abcd", Method: "rfc4733", DurationMS: 250}, callcore.StateActive)
	if d := expectEv[*events.MediaSendDtmf](h, id, "media:SendDtmf"); d.Tones != "*0ABCD" || d.DurationMS != 250 {
		t.Fatalf("media SendDtmf = %+v", d)
	}
	h.ok(&events.CmdSendDtmf{SessionRef: sref(id), Digits: "987", Method: "info"}, callcore.StateActive)
	if d := expectEv[*events.SendDtmf](h, id, "dialog:SendDtmf"); d.Tones != "987" {
		t.Fatalf("dialog SendDtmf = %+v", d)
	}
}

func TestSendDtmfRefused(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredInbound()
	for _, tc := range []struct {
		name  string
		cmd   events.CmdSendDtmf
		field string
	}{
		{"digits=empty", events.CmdSendDtmf{}, "digits"},
		{"digits=E", events.CmdSendDtmf{Digits: "12E"}, "digits"},
		{"digits=space", events.CmdSendDtmf{Digits: "1 2"}, "digits"},
		{"digits=plus", events.CmdSendDtmf{Digits: "+1"}, "digits"},
		{"digits=unicode", events.CmdSendDtmf{Digits: "１"}, "digits"},
		{"digits=too-many", events.CmdSendDtmf{Digits: strings.Repeat("1", 65)}, "digits"},
		{"method=sms", events.CmdSendDtmf{Digits: "1", Method: "sms"}, "method"},
		{"duration_ms=10", events.CmdSendDtmf{Digits: "1", DurationMS: 10}, "duration_ms"},
		{"duration_ms=-1", events.CmdSendDtmf{Digits: "1", DurationMS: -1}, "duration_ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := tc.cmd
			cmd.SessionID = id
			h.refused(&cmd, callcore.CodeValidationFailed, tc.field)
		})
	}
	t.Run("state=ringing", func(t *testing.T) {
		r := h.incoming("sip:bob@callbus.test")
		h.expect(r, "app:CallCreated")
		ce := h.refused(&events.CmdSendDtmf{SessionRef: sref(r), Digits: "1"}, callcore.CodeInvalidState, "")
		if !strings.Contains(ce.Message, "ringing") {
			t.Fatalf("message %q does not name the state", ce.Message)
		}
	})
}

// DTMF from the far end, by INFO (dialog) or RFC 4733 (media), reaches the app.
func TestDtmfReceived(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredInbound()
	h.publish(&events.DtmfReceived{SessionRef: sref(id), Tones: "5"})
	if d := expectEv[*events.CallDtmfReceived](h, id, "app:DtmfReceived"); d.Digits != "5" || d.Method != "info" {
		t.Fatalf("DtmfReceived = %+v", d)
	}
	h.publish(&events.DtmfDetected{SessionRef: sref(id), Digit: "#", DurationMS: 120})
	if d := expectEv[*events.CallDtmfReceived](h, id, "app:DtmfReceived"); d.Digits != "#" || d.Method != "rfc4733" {
		t.Fatalf("DtmfReceived = %+v", d)
	}
	h.remoteBye(id)
	h.publish(&events.DtmfDetected{SessionRef: sref(id), Digit: "1"}) // after the end: dropped (finish checks)
	h.input(id, "DtmfDetected")
}

// A far end whose answer has no telephone-event gets the digits by SIP
// INFO when no method is asked for; asking for rfc4733 is refused.
func TestSendDtmfWithoutTelephoneEvent(t *testing.T) {
	h := newHarness(t, Config{})
	id := newID()
	h.ok(&events.CmdMakeCall{SessionRef: sref(id), To: "sip:bob@example.com"}, callcore.StateInitiating)
	h.expect(id, "app:CallCreated", "media:StartMediaStream")
	h.publish(&events.MediaStreamStarted{SessionRef: sref(id), LocalPort: 20002, Codec: "PCMU", LocalSDP: mediaOffer})
	h.expect(id, "dialog:InitiateCall")
	noEvents := strings.NewReplacer(" 8 101", " 8", "a=rtpmap:101 telephone-event/8000\r\n", "").Replace(remoteAnswer)
	h.publish(&events.CallEstablished{SessionRef: sref(id), SDPAnswer: noEvents})
	h.expect(id, "media:UpdateMediaStream", "app:CallAnswered")

	h.ok(&events.CmdSendDtmf{SessionRef: sref(id), Digits: "42"}, callcore.StateActive)
	if d := expectEv[*events.SendDtmf](h, id, "dialog:SendDtmf"); d.Tones != "42" {
		t.Fatalf("dialog SendDtmf = %+v", d)
	}
	ce := h.refused(&events.CmdSendDtmf{SessionRef: sref(id), Digits: "1", Method: "rfc4733"}, callcore.CodeInvalidState, "")
	if !strings.Contains(ce.Message, "telephone-event") {
		t.Fatalf("message %q does not say why", ce.Message)
	}
}

// An answered inbound call knows both RTP endpoints (the far end's from
// the INVITE's offer), and RFC 4733 is its default DTMF method.
func TestInboundRemoteSDP(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.answeredInbound()
	c, ok := h.s.Get(id)
	if !ok || c.Media.RemoteRTP != "192.0.2.10:49170" || c.Media.LocalRTP != "127.0.0.1:20000" {
		t.Fatalf("snapshot media %+v, want local 127.0.0.1:20000 and remote 192.0.2.10:49170", c.Media)
	}
	h.ok(&events.CmdSendDtmf{SessionRef: sref(id), Digits: "7"}, callcore.StateActive)
	expectEv[*events.MediaSendDtmf](h, id, "media:SendDtmf")
}
