package main

import (
	"fmt"

	"github.com/stratumd/stratumd/internal/rlimit"
)

// raiseNoFile raises the RLIMIT_NOFILE soft limit to need (up to the hard
// limit) and reports what it did.
func raiseNoFile(need uint64) NoFileReport {
	soft, hard, err := rlimit.RaiseNoFile(need)
	rep := NoFileReport{Soft: soft, Hard: hard}
	switch {
	case err != nil:
		rep.Note = err.Error()
	case soft < need:
		rep.Note = fmt.Sprintf("RLIMIT_NOFILE hard limit %d is below the %d descriptors needed; raise it (ulimit -Hn) as root", hard, need)
	}
	return rep
}
