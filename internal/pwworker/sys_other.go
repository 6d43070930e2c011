//go:build !linux

package pwworker

import (
	"errors"
	"fmt"
	"syscall"
)

// Renice is implemented on Linux only (per-thread nice values); elsewhere
// any value but 0 is errors.ErrUnsupported.
func Renice(nice int) error {
	if nice != 0 {
		return fmt.Errorf("pwworker: renice: %w", errors.ErrUnsupported)
	}
	return nil
}

// sysProcAttr: outside Linux there is no parent-death signal; the child
// exits when its stdin reaches EOF.
func sysProcAttr() *syscall.SysProcAttr { return nil }
