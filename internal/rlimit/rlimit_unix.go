//go:build unix

package rlimit

import (
	"fmt"
	"syscall"
)

// RaiseNoFile raises the RLIMIT_NOFILE soft limit to want, or to the hard
// limit when that is lower, and returns the soft and hard limits it leaves.
// On an error they are the limits as they were (zero when unreadable).
func RaiseNoFile(want uint64) (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("cannot read RLIMIT_NOFILE: %w", err)
	}
	target := min(want, lim.Max)
	if lim.Cur >= target {
		return lim.Cur, lim.Max, nil
	}
	old := lim.Cur
	lim.Cur = target
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return old, lim.Max, fmt.Errorf("cannot raise RLIMIT_NOFILE from %d to %d: %w", old, target, err)
	}
	return target, lim.Max, nil
}
