// Command callbus is the call-control server: it reads its configuration
// from CALLBUS_* variables, wires the event bus to the HTTP API, serves
// until SIGTERM or SIGINT, then drains and exits.
//
// Exit codes: 0 after a clean shutdown, 2 for a configuration error (one
// line on stderr naming the variable), 1 for any other failure.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitConfig = 2
)

func main() {
	os.Exit(run(os.Stderr))
}

// run is main without os.Exit and os.Stderr, so that tests can see its exit
// code and output; it reads the configuration from the environment.
func run(stderr io.Writer) int {
	cfg, err := Load()
	if err != nil {
		fmt.Fprintf(stderr, "callbus: %v\n", err)
		return exitConfig
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	m := NewMain(cfg)
	m.LogOutput = stderr
	if err := m.Open(ctx); err != nil {
		fmt.Fprintf(stderr, "callbus: %v\n", err)
		return exitFailed
	}

	code := exitOK
	select {
	case <-ctx.Done():
		m.Logger().Info("shutting down", "drain_timeout", cfg.DrainTimeout)
	case err := <-m.Err():
		m.Logger().Error("server failed; shutting down", "err", err)
		code = exitFailed
	}
	// From here a second signal kills the process at once, for an operator
	// who will not wait for the drain.
	stop()

	// Close logs what it could not drain.
	if err := m.Close(context.Background()); err != nil {
		code = exitFailed
	}
	return code
}
