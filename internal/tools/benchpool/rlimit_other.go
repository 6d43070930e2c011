//go:build !unix

package main

import "time"

// raiseNoFile cannot raise the descriptor limit on this system.
func raiseNoFile() string { return "RLIMIT_NOFILE not supported on this system" }

// cpuTime is not available on this system.
func cpuTime() time.Duration { return 0 }
