package main

import (
	"math"

	"github.com/stratumd/stratumd/internal/rlimit"
)

// raiseNoFile raises the RLIMIT_NOFILE soft limit to the hard limit, so
// that tens of thousands of connections fit; it returns a note when it
// cannot.
func raiseNoFile() string {
	if _, _, err := rlimit.RaiseNoFile(math.MaxUint64); err != nil {
		return err.Error()
	}
	return ""
}
