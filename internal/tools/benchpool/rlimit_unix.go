//go:build unix

package main

import (
	"fmt"
	"syscall"
	"time"
)

// raiseNoFile raises the RLIMIT_NOFILE soft limit to the hard limit, so
// that tens of thousands of connections fit; it returns a note when it
// cannot.
func raiseNoFile() string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Sprintf("cannot read RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur >= lim.Max {
		return ""
	}
	old := lim.Cur
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Sprintf("cannot raise RLIMIT_NOFILE from %d to %d: %v", old, lim.Max, err)
	}
	return ""
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
