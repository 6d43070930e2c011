//go:build unix

package main

import "syscall"

// syscallEMFILE is the "too many open files" error.
func syscallEMFILE() error { return syscall.EMFILE }
