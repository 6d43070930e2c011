//go:build unix

package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stratumd/stratumd/internal/rlimit"
)

// childEnv carries the listener address to the child process.
const childEnv = "LOOPFLOOR_CHILD"

func main() {
	if addr := os.Getenv(childEnv); addr != "" {
		if err := child(addr, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "loopfloor child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loopfloor:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loopfloor", flag.ContinueOnError)
	conns := fs.Int("conns", 10000, "connections")
	size := fs.Int("size", 362, "bytes per line")
	workers := fs.Int("workers", 8, "writing goroutines")
	rounds := fs.Int("rounds", 10, "fan-outs")
	pause := fs.Duration("pause", time.Second, "pause between fan-outs")
	reader := fs.String("reader", "stopped", "far ends: stopped (SIGSTOP while writing) or read (a reading goroutine each)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *conns < 1 || *size < 1 || *workers < 1 || *rounds < 1 {
		return errors.New("-conns, -size, -workers and -rounds must be positive")
	}
	if *reader != "stopped" && *reader != "read" {
		return fmt.Errorf("-reader %q: want stopped or read", *reader)
	}
	if err := raiseNoFile(uint64(*conns + 64)); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"="+ln.Addr().String())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	fmt.Fprintf(stdin, "%d %s\n", *conns, *reader)

	socks := make([]*net.TCPConn, 0, *conns)
	for range *conns {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		socks = append(socks, c.(*net.TCPConn))
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		return fmt.Errorf("child not ready: %q, %w", line, err)
	}

	msg := make([]byte, *size)
	for i := range msg {
		msg[i] = 'x'
	}
	msg[len(msg)-1] = '\n'
	var took []time.Duration
	for r := range *rounds {
		time.Sleep(*pause)
		if *reader == "stopped" {
			if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				return err
			}
		}
		d, err := fanout(socks, msg, *workers)
		if *reader == "stopped" {
			if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
		took = append(took, d)
		fmt.Fprintf(out, "round %d: %d writes of %d bytes in %.2f ms (%.2f µs per write per worker-core)\n",
			r+1, len(socks), *size, ms(d), float64(d.Nanoseconds())/1e3/float64(len(socks)))
	}
	slices.Sort(took)
	fmt.Fprintf(out, "reader %s, %d workers: fan-out min %.2f ms, median %.2f ms, max %.2f ms over %d rounds\n",
		*reader, *workers, ms(took[0]), ms(took[len(took)/2]), ms(took[len(took)-1]), len(took))
	return nil
}

// fanout writes msg to every socket on workers goroutines and returns the
// time until the last write returned.
func fanout(socks []*net.TCPConn, msg []byte, workers int) (time.Duration, error) {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		first atomic.Pointer[error]
	)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(socks) {
					return
				}
				if _, err := socks[i].Write(msg); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	if p := first.Load(); p != nil {
		return 0, *p
	}
	return d, nil
}

// child dials the connections the parent asks for and, with "read", reads
// and discards on each; it says "ready" once all are open and waits for
// its stdin to close.
func child(addr string, in io.Reader, out io.Writer) error {
	br := bufio.NewReader(in)
	var n int
	var mode string
	if _, err := fmt.Fscanf(br, "%d %s\n", &n, &mode); err != nil {
		return err
	}
	if err := raiseNoFile(uint64(n + 64)); err != nil {
		return err
	}
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	if mode == "read" {
		for _, c := range conns {
			go func() {
				buf := make([]byte, 2048)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}
	if _, err := io.WriteString(out, "ready\n"); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, br) // until the parent goes
	return nil
}

// raiseNoFile raises the RLIMIT_NOFILE soft limit to need, failing when
// the hard limit is lower.
func raiseNoFile(need uint64) error {
	soft, hard, err := rlimit.RaiseNoFile(need)
	if err != nil {
		return err
	}
	if soft < need {
		return fmt.Errorf("RLIMIT_NOFILE hard limit %d is below the %d descriptors needed", hard, need)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
