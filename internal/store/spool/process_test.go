//go:build unix

package spool

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Environment of the helper process.
const (
	helperModeEnv = "SPOOL_TEST_HELPER"
	helperDirEnv  = "SPOOL_TEST_DIR"
)

// helperCmd returns a command re-running this test binary as the helper
// process in the given mode and spool directory.
func helperCmd(t *testing.T, mode, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperModeEnv+"="+mode, helperDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestHelperProcess is the child side of the process tests; it does nothing
// in a normal run.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	switch os.Getenv(helperModeEnv) {
	case "":
		t.Skip("helper process only")
	case "crash":
		helperAppendForever(t, dir)
	case "efbig":
		helperWriteFailure(t, dir)
	default:
		t.Fatalf("unknown helper mode")
	}
}

// helperAppendForever appends from several goroutines and prints every
// acknowledged record as "ack SEQ PAYLOAD" until it is killed.
func helperAppendForever(t *testing.T, dir string) {
	s, err := Open(Config{Dir: dir, SegmentSize: 32 << 10})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	go s.Run(context.Background())
	var mu sync.Mutex
	pid := os.Getpid()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				p := fmt.Appendf(nil, "p%d-g%d-i%d-%s", pid, g, i, strings.Repeat("z", i%50))
				seq, err := s.Append(context.Background(), p)
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				_, err = fmt.Fprintf(os.Stdout, "ack %d %s\n", seq, p)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	acked := map[uint64]string{}
	for round := range 3 {
		cmd := helperCmd(t, "crash", dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(out)
		seen := 0
		killed := false
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				// A line cut off by the kill has no newline: not counted.
				if !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				break
			}
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != "ack" {
				continue
			}
			seq, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatalf("bad line %q", line)
			}
			if prev, dup := acked[seq]; dup {
				t.Fatalf("seq %d acknowledged twice: %q and %q", seq, prev, f[2])
			}
			acked[seq] = f[2]
			seen++
			if seen == 3000+round*1000 && !killed {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !killed || !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("helper ended with %v after %d acks, want SIGKILL", err, seen)
		}

		s, err := Open(Config{Dir: dir, SegmentSize: 32 << 10})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		recs := readAll(t, s, 1)
		if uint64(len(recs)) != s.Durable() {
			t.Fatalf("round %d: read %d records, Durable %d", round, len(recs), s.Durable())
		}
		for seq, p := range acked {
			if seq > s.Durable() {
				t.Fatalf("round %d: acknowledged seq %d lost, Durable %d", round, seq, s.Durable())
			}
			if got := string(recs[seq-1].Data); got != p {
				t.Fatalf("round %d: seq %d holds %q, acknowledged %q", round, seq, got, p)
			}
		}
		t.Logf("round %d: %d acked in total, %d durable after SIGKILL", round, len(acked), s.Durable())
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// helperWriteFailure makes writes fail with EFBIG through RLIMIT_FSIZE and
// checks the rollback. It prints "helper ok" when all checks passed.
func helperWriteFailure(t *testing.T, dir string) {
	signal.Ignore(syscall.SIGXFSZ) // get EFBIG instead of being killed
	ctx := context.Background()
	s := start(t, Config{Dir: dir})
	appendN(t, s.Spool, 0, 10)
	path := s.lastSegment().path
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	size := fi.Size()

	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	// Room for part of one more record: the first write is short, the rest
	// fails with EFBIG, leaving a partial record to roll back.
	tight := lim
	tight.Cur = uint64(size) + 40
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &tight); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq, err := s.Append(ctx, bytes.Repeat([]byte{byte('a' + i)}, 100))
			if !errors.Is(err, ErrWrite) || !errors.Is(err, syscall.EFBIG) {
				t.Errorf("Append with full disk: seq %d, err %v; want ErrWrite and EFBIG", seq, err)
			}
		}()
	}
	wg.Wait()
	if fi, err := os.Stat(path); err != nil || fi.Size() != size {
		t.Fatalf("segment after failed batches: %v, %v; want %d bytes", fi.Size(), err, size)
	}
	if s.Durable() != 10 {
		t.Fatalf("Durable %d after failed batches", s.Durable())
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	appendN(t, s.Spool, 10, 20) // checks seqs continue at 11
	s.stop(t)
	s = start(t, Config{Dir: dir})
	checkRecords(t, readAll(t, s.Spool, 1), 1, 20, 0)
	if !t.Failed() {
		fmt.Println("helper ok")
	}
}

func TestWriteFailureRollback(t *testing.T) {
	cmd := helperCmd(t, "efbig", t.TempDir())
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "helper ok\n") {
		t.Fatalf("helper did not finish its checks:\n%s", out.String())
	}
}
