package main

import (
	"fmt"
	"testing"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/calltest"
	"github.com/callbus/callbus/callcore/events"
)

// DTMF over SIP INFO, both ways.
func TestFlowDtmfInfo(t *testing.T) {
	ctx := flowCtx(t)
	n := openFlowNode(t, env{"CALLBUS_INBOUND": "answer"})
	alice := calltest.StartPhone(t, calltest.WithUser("alice"))
	id, c := callNode(t, n, alice, "bob")

	t.Run("to=phone", func(t *testing.T) {
		const digits = "12#"
		command(t, n, &events.CmdSendDtmf{SessionRef: sessionRef(id), Digits: digits, Method: events.DtmfMethodInfo})
		got, err := c.WaitDTMF(ctx, len(digits))
		if err != nil || got != digits {
			t.Fatalf("alice got DTMF %q, %v; want %q", got, err, digits)
		}
		// One INFO per digit, application/dtmf-relay, in the dialog.
		var infos []calltest.Message
		for _, m := range c.Received() {
			if m.IsRequest() && m.Method == "INFO" {
				infos = append(infos, m)
			}
		}
		if len(infos) != len(digits) {
			t.Fatalf("%d INFOs, want %d:\n%s", len(infos), len(digits), wire(c.Received()))
		}
		for i, m := range infos {
			want := fmt.Sprintf("Signal=%c\r\nDuration=160\r\n", digits[i])
			if m.Get("Content-Type") != "application/dtmf-relay" || m.Body != want {
				t.Errorf("INFO %d: %s %q, want application/dtmf-relay %q", i, m.Get("Content-Type"), m.Body, want)
			}
			wantDialog(t, c, m, true)
		}
		n.rec.wait(t, "the INFOs answered", func(recs []bus.Record) bool {
			return count200(recs, id, c.ID()) == len(digits) // the call is inbound: no other
		})
		// The command goes to the dialog (not to media: method info).
		recs := waitFlow(t, n, id, c.ID(),
			first("SendDtmf"),                       // 0: the command
			causedBy(0, "SendDtmf"),                 // 1: session_to_dialog
			causedBy(1, "SendSipMessage(INFO)"),     // 2
			causedBy(2, "SipResponseReceived(200)"), // 3
		)
		for _, r := range recs {
			if e, ok := r.Event.(*events.SendDtmf); ok && e.SessionID == id && e.Tones != digits {
				t.Errorf("session_to_dialog SendDtmf tones %q, want %q", e.Tones, digits)
			}
			if _, ok := r.Event.(*events.MediaSendDtmf); ok {
				t.Errorf("DTMF by INFO went to media too: %+v", r.Event)
			}
		}
	})

	t.Run("from=phone", func(t *testing.T) {
		const digits = "5*"
		if err := c.SendDTMF(ctx, digits); err != nil {
			t.Fatal(err)
		}
		recs := n.rec.wait(t, "DtmfReceived to the app", func(recs []bus.Record) bool {
			return count(appEvents(recs, id), "DtmfReceived") == len(digits)
		})
		var got string
		for _, ev := range appEvents(recs, id) {
			if e, ok := ev.(*events.CallDtmfReceived); ok {
				if e.Method != events.DtmfMethodInfo {
					t.Errorf("DtmfReceived %+v, want method info", e)
				}
				got += e.Digits
			}
		}
		if got != digits {
			t.Errorf("the app got DTMF %q, want %q", got, digits)
		}
		if n := c.CountReceived(calltest.Resp(200, "INFO")); n != len(digits) {
			t.Errorf("%d INFOs answered 200, want %d", n, len(digits))
		}
		waitFlow(t, n, id, c.ID(),
			first("SipMessageReceived(INFO)"),   // 0
			causedBy(0, "SendSipResponse(200)"), // 1
			causedBy(0, "DtmfReceived"),         // 2: dialog_to_session
			causedBy(2, "DtmfReceived"),         // 3: session_to_app
		)
	})

	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	ended(t, n, id)
}

// count200 counts the SipResponseReceived(200) of a call.
func count200(recs []bus.Record, id, callID string) int {
	k := 0
	for _, l := range labels(callRecords(recs, id, callID)) {
		if l == "SipResponseReceived(200)" {
			k++
		}
	}
	return k
}
