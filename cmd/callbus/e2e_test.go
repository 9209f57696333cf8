package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2E builds the real binary and runs it as an operator would. It runs
// when CALLBUS_E2E=1 (.ci/run sets it).
func TestE2E(t *testing.T) {
	if os.Getenv("CALLBUS_E2E") != "1" {
		t.Skip("set CALLBUS_E2E=1 to build and run the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool not found: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "callbus")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("signal=SIGTERM", func(t *testing.T) { testE2ESignal(t, bin) })
	t.Run("env=bad", func(t *testing.T) { testE2EBadEnv(t, bin) })
}

// minimalEnv is a hermetic environment: no CALLBUS_* of the caller leaks in.
func minimalEnv(vars ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, vars...)
}

var listeningLine = regexp.MustCompile(`msg="callbus listening" http=(\S+)`)

func testE2ESignal(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = minimalEnv("CALLBUS_HTTP_ADDR=127.0.0.1:0", "CALLBUS_NODE_ID=e2e", "CALLBUS_DRAIN_TIMEOUT=10s",
		"CALLBUS_SIP_ADDR=127.0.0.1:0", "CALLBUS_RTP_PORTS="+testRTPPorts, "CALLBUS_DATA_DIR="+t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	waited := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-waited:
		default:
			_ = cmd.Process.Kill()
			<-waited
		}
	})

	// Read stderr to its end, handing over the bound address once seen.
	addrc := make(chan string, 1)
	logc := make(chan string, 1)
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		logc <- all.String()
		exited <- cmd.Wait() // Wait only after the pipe is read to its end
		close(waited)
	}()

	var addr string
	select {
	case addr = <-addrc:
	case err := <-exited:
		t.Fatalf("callbus exited before listening: %v\n%s", err, <-logc)
	case <-ctx.Done():
		t.Fatal("no \"callbus listening\" line on stderr")
	}

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("GET /healthz = %d %s", resp.StatusCode, body)
	}
	tr.CloseIdleConnections()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var log string
	select {
	case log = <-logc:
	case <-time.After(30 * time.Second):
		t.Fatal("callbus did not exit within 30s of SIGTERM")
	}
	err = <-exited
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("exit code %d after SIGTERM, want 0\n%s", ee.ExitCode(), log)
		}
		t.Fatalf("wait: %v", err)
	}
	for _, want := range []string{"shutting down", "callbus stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func testE2EBadEnv(t *testing.T, bin string) {
	for _, bad := range []string{
		"CALLBUS_LOG_LEVEL=loud", // caught by our checks
		"CALLBUS_MAX_CALLS=abc",  // caught by envconfig, reported in our words
	} {
		t.Run(bad, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = minimalEnv("CALLBUS_HTTP_ADDR=127.0.0.1:0", bad)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitConfig {
				t.Fatalf("run with %s: %v, want exit code %d; stderr %q", bad, err, exitConfig, stderr.String())
			}
			name, _, _ := strings.Cut(bad, "=")
			out := stderr.String()
			if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") || !strings.HasPrefix(out, "callbus: "+name+": ") {
				t.Errorf("stderr = %q, want one line naming %s", out, name)
			}
		})
	}
}
