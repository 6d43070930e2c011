//go:build unix

package rlimit

import (
	"syscall"
	"testing"
)

func TestRaiseNoFile(t *testing.T) {
	var before syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &before) })

	// Asking for less than the soft limit changes nothing.
	soft, hard, err := RaiseNoFile(1)
	if err != nil || soft != before.Cur || hard != before.Max {
		t.Fatalf("RaiseNoFile(1) = %d, %d, %v; limits were %d, %d", soft, hard, err, before.Cur, before.Max)
	}
	// Asking for more than the hard limit stops at the hard limit.
	soft, hard, err = RaiseNoFile(^uint64(0))
	if err != nil || soft != before.Max || hard != before.Max {
		t.Fatalf("RaiseNoFile(max) = %d, %d, %v; hard limit %d", soft, hard, err, before.Max)
	}
	var now syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &now); err != nil || now.Cur != before.Max {
		t.Fatalf("soft limit now %d, want %d (%v)", now.Cur, before.Max, err)
	}
}
