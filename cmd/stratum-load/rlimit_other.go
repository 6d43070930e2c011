//go:build !unix

package main

import "errors"

// raiseNoFile cannot raise the descriptor limit on this system.
func raiseNoFile(need uint64) NoFileReport {
	return NoFileReport{Note: "RLIMIT_NOFILE not supported on this system"}
}

var errNoEMFILE = errors.New("EMFILE")

// syscallEMFILE stands for the "too many open files" error.
func syscallEMFILE() error { return errNoEMFILE }
