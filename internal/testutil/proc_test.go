package testutil

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProc runs real processes: a ready check that succeeds once the
// process has printed, a process that ends before it is ready, and Halt
// on a running and on an ended process.
func TestProc(t *testing.T) {
	p, err := StartProc(exec.Command("sh", "-c", "echo started; exec sleep 60"))
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(10*time.Second, func() error {
		if !strings.Contains(p.Log(), "started") {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Halt(syscall.SIGTERM, 10*time.Second)
	select {
	case <-p.Exited():
	default:
		t.Fatal("Halt returned before the process ended")
	}
	p.Halt(syscall.SIGTERM, time.Second) // ended: returns at once

	q, err := StartProc(exec.Command("sh", "-c", "echo boom; exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	err = q.WaitReady(10*time.Second, func() error { return errors.New("never") })
	if err == nil || !strings.Contains(err.Error(), "exited at start") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("WaitReady on an ended process: %v", err)
	}
}
