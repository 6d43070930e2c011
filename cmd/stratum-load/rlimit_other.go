//go:build !unix

package main

import "errors"

var errNoEMFILE = errors.New("EMFILE")

// syscallEMFILE stands for the "too many open files" error.
func syscallEMFILE() error { return errNoEMFILE }
