package pwworker

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Renice sets the nice value of every thread of the process to nice. On
// Linux the nice value belongs to a thread and a new thread inherits its
// creator's, so every thread listed in /proc/self/task is changed, and the
// list is read again until it has no thread left unchanged (the Go runtime
// may start one meanwhile). Raising the value needs no privilege.
func Renice(nice int) error {
	done := map[int]bool{}
	for {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("pwworker: renice: %w", err)
		}
		changed := false
		for _, task := range tasks {
			tid, err := strconv.Atoi(task.Name())
			if err != nil || done[tid] {
				continue
			}
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil && err != syscall.ESRCH {
				return fmt.Errorf("pwworker: renice thread %d to %d: %w", tid, nice, err)
			}
			done[tid] = true
			changed = true
		}
		if !changed {
			return nil
		}
	}
}

// sysProcAttr makes the kernel kill the child when the parent's thread
// that started it exits, so the child never outlives the daemon.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
