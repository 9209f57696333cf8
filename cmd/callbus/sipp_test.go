package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
)

// Interop with sipp (Debian's sip-tester), a SIP peer we did not write.

// sippResult is what a finished sipp run reported.
type sippResult struct {
	ok, failed int
	out        string
}

var sippCounter = regexp.MustCompile(`(?m)^\s*(Successful call|Failed call)\s*\|\s*\d+\s*\|\s*(\d+)`)

// runSipp runs sipp with args until it exits (it stops after -m calls) and
// returns its final counters. Scenario files are passed as absolute paths
// since sipp runs in a temporary directory, where it writes its logs.
func runSipp(t *testing.T, ctx context.Context, args ...string) sippResult {
	t.Helper()
	res, err := sipp(ctx, requireTool(t, "sipp"), t.TempDir(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// sipp is runSipp for goroutines other than the test's: it returns errors.
func sipp(ctx context.Context, path, dir string, args ...string) (sippResult, error) {
	args = append([]string{"-nostdin", "-timeout", "60s", "-timeout_error"}, args...)
	for i, a := range args {
		if strings.HasSuffix(a, ".xml") {
			if abs, err := filepath.Abs(a); err == nil {
				args[i] = abs
			}
		}
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	res := sippResult{out: out.String()}
	for _, m := range sippCounter.FindAllStringSubmatch(res.out, -1) {
		n, _ := strconv.Atoi(m[2])
		if m[1] == "Successful call" {
			res.ok = n
		} else {
			res.failed = n
		}
	}
	if err != nil && res.failed == 0 {
		return res, fmt.Errorf("sipp %s: %v\n%s", strings.Join(args, " "), err, tail(res.out, 40))
	}
	return res, nil
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// sipp's built-in uac scenario against callbus answering every call:
// hundreds of calls, none failed, each ended as a remote hang-up.
func TestSippUACCallsAnswered(t *testing.T) {
	requireTool(t, "sipp")
	n := openNode(t, env{"CALLBUS_INBOUND": "answer"})
	const calls = 300
	res := runSipp(t, t.Context(), "-sn", "uac", n.sipTarget("udp"),
		"-i", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t)),
		"-m", strconv.Itoa(calls), "-r", "100", "-l", "100", "-d", "100")
	if res.ok != calls || res.failed != 0 {
		t.Fatalf("sipp: %d successful, %d failed of %d\n%s", res.ok, res.failed, calls, tail(res.out, 30))
	}
	recs := n.rec.wait(t, fmt.Sprintf("%d CallEnded", calls), func(recs []bus.Record) bool {
		return count(appEvents(recs, ""), "CallEnded") == calls
	})
	for _, ev := range appEvents(recs, "") {
		if e, ok := ev.(*events.CallEnded); ok && e.Reason != string(callcore.EndRemoteHangup) {
			t.Fatalf("call %s ended %q, want remote_hangup", e.SessionID, e.Reason)
		}
	}
	if n.rec.gaps != 0 {
		t.Fatalf("the recorder missed events (%d gaps)", n.rec.gaps)
	}
}

// sipp puts the call on hold and resumes it with re-INVITEs; callbus
// answers recvonly then sendrecv (the scenario checks the SDP) and reports
// both to the app.
func TestSippHoldResumeFromFarEnd(t *testing.T) {
	requireTool(t, "sipp")
	n := openNode(t, env{"CALLBUS_INBOUND": "answer"})
	const calls = 5
	res := runSipp(t, t.Context(), "-sf", "testdata/sipp/hold_resume_uac.xml", n.sipTarget("udp"),
		"-i", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t)), "-m", strconv.Itoa(calls), "-r", "5")
	if res.ok != calls || res.failed != 0 {
		t.Fatalf("sipp: %d successful, %d failed of %d\n%s", res.ok, res.failed, calls, tail(res.out, 30))
	}
	recs := n.rec.wait(t, "every call held, resumed and ended", func(recs []bus.Record) bool {
		evs := appEvents(recs, "")
		return count(evs, "CallHeld") == calls && count(evs, "CallResumed") == calls && count(evs, "CallEnded") == calls
	})
	for _, ev := range appEvents(recs, "") {
		if e, ok := ev.(*events.CallHeld); ok && e.By != events.ByRemote {
			t.Fatalf("CallHeld by %q, want remote", e.By)
		}
	}
}

// callbus places a call that sipp's built-in uas scenario answers, then
// hangs it up.
func TestSippUASAnswersOutboundCall(t *testing.T) {
	requireTool(t, "sipp")
	n := openNode(t, nil)
	port := freeUDPPort(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := startSipp(t, ctx, "-sn", "uas", "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-m", "1")
	id := makeCall(t, n, fmt.Sprintf("sip:service@127.0.0.1:%d", port))
	n.rec.wait(t, "CallAnswered", func(recs []bus.Record) bool { return count(appEvents(recs, id), "CallAnswered") == 1 })
	if _, err := n.Bus().Request(ctx, &events.CmdHangupCall{SessionRef: events.SessionRef{SessionID: id}}); err != nil {
		t.Fatal(err)
	}
	recs := n.rec.wait(t, "CallEnded", func(recs []bus.Record) bool { return count(appEvents(recs, id), "CallEnded") == 1 })
	if e := lastOf[*events.CallEnded](appEvents(recs, id)); e.Reason != string(callcore.EndLocalHangup) {
		t.Fatalf("ended %q, want local_hangup", e.Reason)
	}
	if res := <-done; res.ok != 1 {
		t.Fatalf("sipp uas: %d successful, %d failed\n%s", res.ok, res.failed, tail(res.out, 30))
	}
}

// sipp answers a call that callbus places and hangs up first: the far-end
// BYE is answered and reported as remote_hangup.
func TestSippFarEndBye(t *testing.T) {
	requireTool(t, "sipp")
	n := openNode(t, nil)
	port := freeUDPPort(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := startSipp(t, ctx, "-sf", "testdata/sipp/uas_bye.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-m", "1")
	id := makeCall(t, n, fmt.Sprintf("sip:service@127.0.0.1:%d", port))
	recs := n.rec.wait(t, "CallEnded", func(recs []bus.Record) bool { return count(appEvents(recs, id), "CallEnded") == 1 })
	if e := lastOf[*events.CallEnded](appEvents(recs, id)); e.Reason != string(callcore.EndRemoteHangup) {
		t.Fatalf("ended %q, want remote_hangup", e.Reason)
	}
	if res := <-done; res.ok != 1 {
		t.Fatalf("sipp: %d successful, %d failed\n%s", res.ok, res.failed, tail(res.out, 30))
	}
}

// startSipp runs sipp in the background (as the far end of a call the
// test places) and delivers its result when it exits.
func startSipp(t *testing.T, ctx context.Context, args ...string) <-chan sippResult {
	path, dir := requireTool(t, "sipp"), t.TempDir()
	done := make(chan sippResult, 1)
	go func() {
		res, err := sipp(ctx, path, dir, args...)
		if err != nil {
			res.out += err.Error()
		}
		done <- res
	}()
	return done
}

// makeCall places a call to target and returns its session id. A peer
// started just before may not listen yet: the INVITE's UDP retransmission
// covers that.
func makeCall(t *testing.T, n *node, target string) string {
	t.Helper()
	id := callcore.NewSessionID(n.Config.NodeID)
	_, err := n.Bus().Request(t.Context(), &events.CmdMakeCall{SessionRef: events.SessionRef{SessionID: id},
		To: target, From: "sip:callbus@127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func lastOf[T events.Event](evs []events.Event) T {
	var zero T
	for i := len(evs) - 1; i >= 0; i-- {
		if e, ok := evs[i].(T); ok {
			return e
		}
	}
	return zero
}
