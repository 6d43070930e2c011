package main

import "golang.org/x/sys/unix"

// monotonicUsec reads CLOCK_MONOTONIC, as systemd's RELOADING=1 wants it.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
