package pwworker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stratumd/stratumd/internal/password"
	"github.com/stratumd/stratumd/internal/testutil"
)

// childArg, as the test binary's first argument, makes it a worker child:
// see runChild.
const childArg = "pwworker-test-child"

// TestMain lets the test binary be the worker child.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		if err := runChild(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "pwworker test child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cheap are the argon2id costs of most tests.
var cheap = password.Argon2id{Params: password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}

// runChild serves on stdin/stdout. Arguments: nice=N, conc=N,
// params=default (else cheap), blackhole-once=MARKER,FIFO,N (when MARKER
// does not exist yet: create it, read N requests, write "read" to the named
// pipe FIFO, and read stdin to its end without answering).
func runChild(args []string) error {
	nice, conc, h := 0, 2, cheap
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "nice":
			nice, _ = strconv.Atoi(v)
		case "conc":
			conc, _ = strconv.Atoi(v)
		case "params":
			if v == "default" {
				h = password.Argon2id{Params: password.DefaultParams()}
			}
		case "blackhole-once":
			marker, rest, _ := strings.Cut(v, ",")
			fifo, count, _ := strings.Cut(rest, ",")
			if f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
				f.Close()
				return blackhole(fifo, count)
			}
		default:
			return fmt.Errorf("unknown argument %q", a)
		}
	}
	if nice != 0 {
		if err := Renice(nice); err != nil {
			return err
		}
	}
	return Serve(context.Background(), os.Stdin, os.Stdout, h, conc)
}

// blackhole reads count request lines from stdin, says so on the named
// pipe fifo, then reads stdin to its end.
func blackhole(fifo, count string) error {
	n, err := strconv.Atoi(count)
	if err != nil {
		return err
	}
	br := bufio.NewReader(os.Stdin)
	for range n {
		if _, err := br.ReadString('\n'); err != nil {
			return err
		}
	}
	if err := os.WriteFile(fifo, []byte("read\n"), 0o600); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, br)
	return err
}

// harness is a Client over the test binary as child, with its events.
type harness struct {
	c       *Client
	logs    *testutil.SyncBuffer
	started chan int      // pids of children started
	sent    chan struct{} // one per request written
}

// startHarness starts a Client whose child is this test binary run with
// childArgs (or, when command is set, that command) and closes it at the
// end of the test.
func startHarness(t *testing.T, o Options, childArgs ...string) *harness {
	t.Helper()
	h := &harness{logs: &testutil.SyncBuffer{}, started: make(chan int, 16), sent: make(chan struct{}, 1024)}
	if o.Command == nil {
		o.Command = append([]string{os.Args[0], childArg}, childArgs...)
	}
	if o.Hasher.Params == (password.Params{}) {
		o.Hasher = cheap
	}
	o.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := start(context.Background(), o, hooks{
		started: func(pid int) { h.started <- pid },
		sent: func() {
			select {
			case h.sent <- struct{}{}:
			default: // nobody counts them past the buffer
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}
