//go:build !unix

package rlimit

import "errors"

// RaiseNoFile cannot raise the descriptor limit on this system.
func RaiseNoFile(want uint64) (soft, hard uint64, err error) {
	return 0, 0, errors.New("RLIMIT_NOFILE not supported on this system")
}
