package bus

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callbus/callbus/callcore/events"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newBus returns a bus closed at the end of the test, failing the test if
// Close reports anything left undelivered.
func newBus(t *testing.T, cfg Config) *Memory {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// checkFor is bustest.CheckFor, which these tests cannot call: they are
// package bus, and bustest imports bus (an import cycle). It polls fn
// until it returns nil, failing the test once total has passed.
func checkFor(t *testing.T, total time.Duration, fn func() error) {
	t.Helper()
	for deadline := time.Now().Add(total); ; time.Sleep(time.Millisecond) {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", total, err)
		}
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func stateEv(session, state string) *events.CallStateChanged {
	return &events.CallStateChanged{SessionRef: events.SessionRef{SessionID: session}, NewState: state}
}

func rtpEv(session string, ts uint32) *events.RtpPacketReceived {
	return &events.RtpPacketReceived{SessionRef: events.SessionRef{SessionID: session}, Timestamp: ts}
}
