package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Proc is a child process a test runs (a node, a wallet): its standard
// output and error collected in one log, its end observable. Safe for
// concurrent use.
type Proc struct {
	cmd    *exec.Cmd
	log    SyncBuffer
	exited chan struct{}
}

// StartProc starts cmd, sending its standard output and error to the
// Proc's log, and reaps it when it ends.
func StartProc(cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.log, &p.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testutil: start %s: %w", filepath.Base(cmd.Path), err)
	}
	go func() {
		cmd.Wait() // the exit status is not needed: tests read the log
		close(p.exited)
	}()
	return p, nil
}

// Log returns what the process printed so far.
func (p *Proc) Log() string { return p.log.String() }

// Exited is closed once the process has ended.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// WaitReady calls ready every 50 ms until it returns nil. It fails, with the
// process's log, when the process ends first or timeout passes.
func (p *Proc) WaitReady(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	name := filepath.Base(p.cmd.Path)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("testutil: %s exited at start: %s", name, p.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testutil: %s not ready after %v: %w\n%s", name, timeout, err, p.Log())
		}
	}
}

// Halt sends sig and waits for the process to end, killing it if it is
// still running after grace. Halting an ended process returns at once.
func (p *Proc) Halt(sig os.Signal, grace time.Duration) {
	p.cmd.Process.Signal(sig) // fails only when the process has ended
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.exited
	}
}
