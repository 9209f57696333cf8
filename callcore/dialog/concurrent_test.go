package dialog

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/internal/bustest"
)

// Many calls at once, each with its AcceptCall (keyed by session) racing
// the far end's CANCEL (keyed by Call-ID): every call ends up either
// answered or cancelled, never both, and every dialog is gone at the end.
func TestConcurrentAcceptRacesCancel(t *testing.T) {
	const n = 40
	h := newHarness(t, nil)
	calls := make(map[string]*inbound, n)
	for i := 0; i < n; i++ {
		c := &inbound{callID: fmt.Sprintf("race-%d@10.0.0.2", i), tag: callcore.NewID("t"), cseq: 1}
		c.invite = sipReq("INVITE", c.callID, c.from(), ourTo, 1, offerSDP)
		calls[c.callID] = c
	}
	parallel := func(fn func(c *inbound)) {
		var wg sync.WaitGroup
		for _, c := range calls {
			wg.Add(1)
			go func() { defer wg.Done(); fn(c) }()
		}
		wg.Wait()
	}
	publish := func(ev events.Event) {
		if err := h.bus.Publish(context.Background(), ev); err != nil {
			t.Error(err)
		}
	}
	parallel(func(c *inbound) { publish(c.invite) })
	bySession := map[string]*inbound{}
	bustest.CheckFor(t, waitFor, func() error {
		for _, ev := range h.all() {
			switch e := ev.(type) {
			case *events.IncomingCall:
				calls[e.CallID].sid = e.SessionID
				bySession[e.SessionID] = calls[e.CallID]
			case *events.SendSipResponse:
				if e.StatusCode == 180 {
					calls[e.Headers.Get("Call-ID")].localTag = tagOf(e.Headers.Get("To"))
				}
			}
		}
		if len(bySession) != n {
			return fmt.Errorf("%d of %d calls ringing", len(bySession), n)
		}
		return nil
	})
	parallel(func(c *inbound) {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			publish(&events.AcceptCall{SessionRef: sref(c.sid), SDPAnswer: answerSDP})
		}()
		go func() {
			defer wg.Done()
			cancel := sipReq("CANCEL", c.callID, c.from(), ourTo, 1, "")
			cancel.TransactionID = c.invite.TransactionID
			publish(cancel)
		}()
		wg.Wait()
	})
	answered := map[string]bool{}
	cancelled := map[string]bool{}
	bustest.CheckFor(t, waitFor, func() error {
		for _, ev := range h.all() {
			switch e := ev.(type) {
			case *events.SendSipResponse:
				if e.StatusCode == 200 {
					answered[e.Headers.Get("Call-ID")] = true
				}
			case *events.CallTerminated:
				if e.Reason == "cancelled" {
					cancelled[bySession[e.SessionID].callID] = true
				}
			}
		}
		if len(answered)+len(cancelled) < n {
			return fmt.Errorf("%d answered, %d cancelled, of %d", len(answered), len(cancelled), n)
		}
		return nil
	})
	for id := range answered {
		if cancelled[id] {
			t.Fatalf("call %s both answered and cancelled", id)
		}
	}
	parallel(func(c *inbound) {
		if !answered[c.callID] {
			return
		}
		ack := sipReq("ACK", c.callID, c.from(), c.to(), 1, "")
		ack.TransactionID = c.invite.TransactionID
		publish(ack)
		publish(c.req("BYE", ""))
	})
	bustest.CheckFor(t, waitFor, func() error {
		hungUp := 0
		for _, ev := range h.all() {
			if e, ok := ev.(*events.CallTerminated); ok && e.Reason == "remote_hangup" {
				hungUp++
			}
		}
		if hungUp != len(answered) {
			return fmt.Errorf("%d of %d answered calls hung up", hungUp, len(answered))
		}
		return nil
	})
	h.checkGone()
	t.Logf("%d answered, %d cancelled", len(answered), len(cancelled))
}
