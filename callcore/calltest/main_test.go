package calltest

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/goleak"

	"github.com/callbus/callbus/callcore"
)

var discardLog = slog.New(slog.DiscardHandler)

func TestMain(m *testing.M) {
	// sipgo logs through its package logger in a few places no option
	// reaches, e.g. "TCP ref went negative" for every TCP connection that
	// Close tears down; silence it for this test binary.
	sip.SetDefaultLogger(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}

// transports are the cases every call scenario runs over.
var transports = []string{"udp", "tcp"}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// uriOf returns the URI that reaches p as user over transport.
func uriOf(p *Phone, user, transport string) string {
	if transport == "tcp" {
		return p.TCPURI(user)
	}
	return p.URI(user)
}

// connect places a call from caller to callee (which must answer) and
// returns both ends once the callee has the ACK.
func connect(t *testing.T, ctx context.Context, caller, callee *Phone, transport string, opts ...CallOption) (out, in *Call) {
	t.Helper()
	out, err := caller.Call(ctx, uriOf(callee, callee.User(), transport), opts...)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	in, err = callee.Incoming(ctx)
	if err != nil {
		t.Fatalf("incoming: %v", err)
	}
	if err := in.WaitState(ctx, callcore.StateActive); err != nil {
		t.Fatalf("callee active: %v", err)
	}
	if in.ID() != out.ID() {
		t.Fatalf("callee got call %s, caller placed %s", in.ID(), out.ID())
	}
	return out, in
}

func mustSDP(t *testing.T, body string) SDP {
	t.Helper()
	s, err := ParseSDP(body)
	if err != nil {
		t.Fatalf("parse SDP %q: %v", body, err)
	}
	return s
}

func wantEnded(t *testing.T, ctx context.Context, c *Call, want callcore.EndReason) {
	t.Helper()
	got, err := c.WaitEnded(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("call %s ended by %q, want %q", c.Direction(), got, want)
	}
}

func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	if StatusOf(err) != status {
		t.Fatalf("error %v: status %d, want %d", err, StatusOf(err), status)
	}
}

func wantState(t *testing.T, c *Call, want callcore.CallState) {
	t.Helper()
	if got := c.State(); got != want {
		t.Fatalf("%s call in state %s, want %s", c.Direction(), got, want)
	}
}

func wantDirection(t *testing.T, body, want string) {
	t.Helper()
	if !strings.Contains(body, "a="+want+"\r\n") {
		t.Fatalf("SDP has not a=%s:\n%s", want, body)
	}
}
