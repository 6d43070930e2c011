//go:build !linux

package main

// monotonicUsec is 0 off Linux: systemd, the only reader of RELOADING=1's
// MONOTONIC_USEC, runs on Linux alone.
func monotonicUsec() int64 { return 0 }
