package dialog

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
)

func TestDtmfSentAsInfo(t *testing.T) {
	h := newHarness(t, nil)
	c := h.ring()
	h.answer(c)
	h.publish(&events.SendDtmf{SessionRef: sref(c.sid), Tones: "1#"})
	info := h.expect("req INFO")[0].(*events.SendSipMessage)
	wantHeader(t, info.Headers, "Content-Type", "application/dtmf-relay")
	wantHeader(t, info.Headers, "CSeq", "1 INFO")
	if info.Body != "Signal=1\r\nDuration=160\r\n" || info.Destination != "sip:alice@10.0.0.2:5060" {
		t.Fatalf("INFO = %+v", info)
	}
	// One INFO at a time, so the tones arrive in order.
	h.syncSession(c.sid)
	h.publish(sipResp(info, 200, "", ""))
	info = h.expect("req INFO")[0].(*events.SendSipMessage)
	wantHeader(t, info.Headers, "CSeq", "2 INFO")
	if info.Body != "Signal=#\r\nDuration=160\r\n" {
		t.Fatalf("INFO body %q", info.Body)
	}
	h.publish(sipResp(info, 200, "", ""))
	h.syncCall(c.callID)

	// A failure drops the rest and is reported.
	h.publish(&events.SendDtmf{SessionRef: sref(c.sid), Tones: "98"})
	info = h.expect("req INFO")[0].(*events.SendSipMessage)
	h.publish(sipResp(info, 415, "", ""))
	if de := h.expect("DialogError")[0].(*events.DialogError); de.ErrorCode != 415 {
		t.Fatalf("DialogError = %+v", de)
	}
	h.syncCall(c.callID)
}

func TestDtmfReceivedAsInfo(t *testing.T) {
	for _, tc := range []struct {
		name, ct, body, want string
	}{
		{"type=dtmf-relay", "application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", "5"},
		{"type=dtmf-relay/signal=11", "application/dtmf-relay", "Signal= 11\r\nDuration= 100\r\n", "#"},
		{"type=dtmf", "application/dtmf", "*\r\n", "*"},
		{"type=other", "application/media_control+xml", "<x/>", ""},
		{"type=dtmf-relay/bad", "application/dtmf-relay", "Signal=X\r\n", "bad"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			c := h.dial()
			h.connect(c)
			info := c.req("INFO", tc.body, events.Header{Name: "Content-Type", Value: tc.ct})
			h.publish(info)
			switch tc.want {
			case "":
				h.expect("resp 200")
				h.syncCall(c.callID)
			case "bad":
				h.expect("resp 400")
			default:
				evs := h.expect("resp 200", "DtmfReceived")
				if evs[0].(*events.SendSipResponse).TransactionID != info.TransactionID {
					t.Fatalf("200 on the wrong transaction")
				}
				if got := evs[1].(*events.DtmfReceived); got.Tones != tc.want || got.SessionID != c.sid {
					t.Fatalf("DtmfReceived = %+v", got)
				}
			}
		})
	}
}

func TestUnknownDialogGets481(t *testing.T) {
	for _, method := range []string{"BYE", "INFO", "REFER", "NOTIFY", "INVITE", "OPTIONS"} {
		t.Run("method="+method, func(t *testing.T) {
			h := newHarness(t, nil)
			m := sipReq(method, "ghost@10.0.0.2", farFrom+";tag=a", ourTo+";tag=never", 5, "")
			h.publish(m)
			if r := h.expect("resp 481")[0].(*events.SendSipResponse); r.TransactionID != m.TransactionID {
				t.Fatalf("481 on the wrong transaction")
			}
		})
	}
	t.Run("to-tag=none", func(t *testing.T) {
		h := newHarness(t, nil)
		h.publish(sipReq("BYE", "ghost@10.0.0.2", farFrom+";tag=a", ourTo, 5, ""))
		h.expect("resp 481")
	})
	t.Run("from-tag=other", func(t *testing.T) {
		h := newHarness(t, nil)
		c := h.ring()
		h.answer(c)
		h.publish(sipReq("BYE", c.callID, farFrom+";tag=intruder", c.to(), 9, ""))
		h.expect("resp 481")
	})
}

func TestOptionsAndUnsupportedMethods(t *testing.T) {
	h := newHarness(t, nil)
	opt := sipReq("OPTIONS", "ping@10.0.0.2", farFrom+";tag=a", ourTo, 1, "")
	h.publish(opt)
	r := h.expect("resp 200")[0].(*events.SendSipResponse)
	wantHeader(t, r.Headers, "Allow", allowed)
	for _, method := range []string{"MESSAGE", "SUBSCRIBE", "UPDATE", "PUBLISH", "REGISTER"} {
		h.publish(sipReq(method, "x@10.0.0.2", farFrom+";tag=a", ourTo, 1, ""))
		r := h.expect("resp 405")[0].(*events.SendSipResponse)
		wantHeader(t, r.Headers, "Allow", allowed)
	}
	// An ACK matching nothing is dropped silently.
	h.publish(sipReq("ACK", "ping@10.0.0.2", farFrom+";tag=a", ourTo+";tag=b", 1, ""))
	h.syncCall("ping@10.0.0.2")
}

func TestRegistrationRelay(t *testing.T) {
	h := newHarness(t, nil)
	h.publish(&events.RegisterAccount{RegistrationID: "reg_1", Registrar: "sip:pbx.example.com",
		AOR: "sip:alice@example.com", Username: "alice", Password: "s3cret", Expires: 600})
	re := h.expect("RegisterEndpoint")[0].(*events.RegisterEndpoint)
	want := events.RegisterEndpoint{URI: "sip:alice@example.com", Expires: 600, Contact: "<sip:alice@127.0.0.1:5060>",
		Username: "alice", Password: "s3cret", Registrar: "sip:pbx.example.com", RegistrationID: "reg_1"}
	if *re != want {
		t.Fatalf("RegisterEndpoint = %+v, want %+v", *re, want)
	}
	h.publish(&events.RegistrationStatusUpdate{URI: "sip:alice@example.com", Status: "registered", Expires: 300, RegistrationID: "reg_1"})
	ru := h.expect("RegistrationUpdated")[0].(*events.RegistrationUpdated)
	if *ru != (events.RegistrationUpdated{RegistrationID: "reg_1", AOR: "sip:alice@example.com", Status: "registered", Expires: 300}) {
		t.Fatalf("RegistrationUpdated = %+v", *ru)
	}
	h.publish(&events.UnregisterAccount{RegistrationID: "reg_1"})
	if ue := h.expect("UnregisterEndpoint")[0].(*events.UnregisterEndpoint); ue.URI != "sip:alice@example.com" {
		t.Fatalf("UnregisterEndpoint = %+v", ue)
	}
	// The transport's update without an id is matched by AOR.
	h.publish(&events.RegistrationStatusUpdate{URI: "sip:alice@example.com", Status: "unregistered"})
	ru = h.expect("RegistrationUpdated")[0].(*events.RegistrationUpdated)
	if ru.RegistrationID != "reg_1" || ru.Status != "unregistered" {
		t.Fatalf("RegistrationUpdated = %+v", *ru)
	}
	// Forgotten now.
	h.publish(&events.UnregisterAccount{RegistrationID: "reg_1"})
	if ru := h.expect("RegistrationUpdated")[0].(*events.RegistrationUpdated); ru.Status != "failed" {
		t.Fatalf("RegistrationUpdated = %+v", *ru)
	}
	h.publish(&events.RegisterAccount{RegistrationID: "reg_2", AOR: "mailto:x"})
	if ru := h.expect("RegistrationUpdated")[0].(*events.RegistrationUpdated); ru.Status != "failed" || ru.RegistrationID != "reg_2" {
		t.Fatalf("RegistrationUpdated = %+v", *ru)
	}
}

func TestLifecycle(t *testing.T) {
	b, err := bus.New(bus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close(context.Background()) }()
	log := slog.New(slog.DiscardHandler)
	for _, cfg := range []Config{{}, {ContactAddr: "127.0.0.1"}, {ContactAddr: "127.0.0.1:5060", Transport: "sctp"}} {
		if _, err := New(cfg, b, log); !errors.Is(err, ErrConfig) {
			t.Fatalf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
	if _, err := New(Config{ContactAddr: "127.0.0.1:5060"}, nil, log); !errors.Is(err, ErrConfig) {
		t.Fatalf("New with no bus = %v", err)
	}
	d, err := New(Config{ContactAddr: "[::1]:5070", Transport: "TCP"}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.contact != "<sip:callbus@[::1]:5070;transport=tcp>" {
		t.Fatalf("contact %q", d.contact)
	}
	if err := d.Close(t.Context()); err != nil { // before Open: nothing to stop
		t.Fatal(err)
	}
	if err := d.Open(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Open after Close = %v", err)
	}
	d, err = New(Config{ContactAddr: "127.0.0.1:5060"}, b, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Open(context.Background()); !errors.Is(err, ErrOpen) {
		t.Fatalf("second Open = %v", err)
	}
	if err := d.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(t.Context()); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestStatusForCode(t *testing.T) {
	for code, want := range map[callcore.Code]int{
		callcore.CodeBadRequest: 400, callcore.CodeValidationFailed: 400, callcore.CodeUnauthorized: 403,
		callcore.CodeNotFound: 404, callcore.CodeInvalidState: 491, callcore.CodeTooLarge: 413,
		callcore.CodeRateLimited: 503, callcore.CodeUnavailable: 503, callcore.CodeInternal: 500, "": 500,
	} {
		if got := StatusForCode(code); got != want {
			t.Errorf("StatusForCode(%q) = %d, want %d", code, got, want)
		}
	}
}

func TestCloseStopsTimers(t *testing.T) {
	h := newHarness(t, nil) // T1 = 1 min: the 200 waits for its ACK
	c := h.ring()
	h.publish(&events.AcceptCall{SessionRef: sref(c.sid), SDPAnswer: answerSDP})
	h.expect("resp 200")
	if n := h.d.timers.count(); n != 2 {
		t.Fatalf("%d timers, want retransmit and give-up", n)
	}
	if err := h.d.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := h.d.timers.count(); n != 0 {
		t.Fatalf("%d timers after Close", n)
	}
}

// A timer callback that does not return holds Close only until its
// deadline; Close then names it, and returns that again when called again.
func TestCloseAtTheDeadline(t *testing.T) {
	b, err := bus.New(bus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close(context.Background()) }()
	d, err := New(Config{ContactAddr: "127.0.0.1:5060"}, b, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	running, release := make(chan struct{}), make(chan struct{})
	d.timers.after(0, func(context.Context) { close(running); <-release })
	<-running
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = d.Close(ctx)
	close(release)
	var re *callcore.RunningError
	if !errors.As(err, &re) || !slices.Equal(re.Running, []string{"timer"}) {
		t.Fatalf("Close = %v, want a RunningError naming the timer", err)
	}
	if again := d.Close(t.Context()); again != err {
		t.Fatalf("second Close = %v, want the first's result", again)
	}
}
