//go:build unix

package media

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) the test process has
// used: benchmarks report it per packet, a figure a loaded machine
// inflates far less than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
