//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// raiseNoFile raises the RLIMIT_NOFILE soft limit to need (up to the hard
// limit) and reports what it did.
func raiseNoFile(need uint64) NoFileReport {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return NoFileReport{Note: fmt.Sprintf("cannot read RLIMIT_NOFILE: %v", err)}
	}
	rep := NoFileReport{Soft: lim.Cur, Hard: lim.Max}
	if lim.Cur >= need {
		return rep
	}
	want := min(need, lim.Max)
	lim.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		rep.Note = fmt.Sprintf("cannot raise RLIMIT_NOFILE from %d to %d: %v", rep.Soft, want, err)
		return rep
	}
	rep.Soft = want
	if want < need {
		rep.Note = fmt.Sprintf("RLIMIT_NOFILE hard limit %d is below the %d descriptors needed; raise it (ulimit -Hn) as root", lim.Max, need)
	}
	return rep
}

// syscallEMFILE is the "too many open files" error.
func syscallEMFILE() error { return syscall.EMFILE }
