package stratum

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/stratum/wire"
	"github.com/stratumd/stratumd/internal/testutil"
)

// checkEnds checks that st counts exactly one ended session, for reason.
func checkEnds(t *testing.T, st Stats, reason string) {
	t.Helper()
	var sum uint64
	for _, n := range st.SessionsClosed {
		sum += n
	}
	if st.SessionsClosed[reason] != 1 || sum != 1 {
		t.Errorf("sessions closed %v, want one %s", st.SessionsClosed, reason)
	}
}

// Every way a session can end over a real connection, each counted once
// under its reason and, where it is logged above debug level, logged once.
func TestSessionEndCountedOnce(t *testing.T) {
	submitBad := func(c *client) { c.call(wire.MethodSubmit, "w", "1", "zz", "0", "0") }
	cases := []struct {
		name, reason string
		config       func(*Config)
		drive        func(t *testing.T, h *harness, c *client)
		log          string // the session's one line at info or above; "" none
	}{
		{"malformed", "malformed", nil, func(t *testing.T, h *harness, c *client) {
			c.sendLine("garbage")
			c.waitClosed()
		}, "malformed line"},
		{"line too long", "line-too-long", func(c *Config) { c.MaxLineLength = 256 }, func(t *testing.T, h *harness, c *client) {
			c.sendLine(`{"id":1,"method":"x","params":[]}` + strings.Repeat(" ", 300))
			c.waitClosed()
		}, "malformed line"},
		{"handshake timeout", "handshake-timeout", func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond }, func(t *testing.T, h *harness, c *client) {
			c.call(wire.MethodSubscribe)
			c.waitClosed()
		}, ""},
		{"idle timeout", "idle-timeout", func(c *Config) { c.IdleTimeout = 200 * time.Millisecond }, func(t *testing.T, h *harness, c *client) {
			c.handshake(regtestAddress(t, 1) + ".w")
			c.waitClosed()
		}, ""},
		{"panic", "panic", nil, func(t *testing.T, h *harness, c *client) {
			c.sendLine(`{"id":9,"method":"test.panic","params":[]}`)
			c.waitClosed()
		}, "session panicked"},
		{"not synced", "not-synced", nil, func(t *testing.T, h *harness, c *client) {
			h.srv.jobs.notSynced.Store(true)
			c.call(wire.MethodSubscribe)
			c.waitClosed()
		}, ""},
		{"invalid shares", "invalid-shares", func(c *Config) { c.BanMinSubmits = 2 }, func(t *testing.T, h *harness, c *client) {
			c.handshake(regtestAddress(t, 1) + ".w")
			submitBad(c)
			submitBad(c)
			c.waitClosed()
		}, "too many invalid submissions"},
		{"shutdown", "shutdown", nil, func(t *testing.T, h *harness, c *client) {
			c.handshake(regtestAddress(t, 1) + ".w")
			h.stop()
			c.waitClosed()
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs testutil.SyncBuffer
			h := startHarness(t, harnessOpts{config: func(c *Config) {
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				if tc.config != nil {
					tc.config(c)
				}
			}})
			h.srv.hookDispatch = func(method string) {
				if method == "test.panic" {
					panic("injected")
				}
			}
			tc.drive(t, h, h.dial())
			checkEnds(t, h.srv.Stats(), tc.reason)
			if tc.log != "" {
				if n := strings.Count(logs.String(), tc.log); n != 1 {
					t.Errorf("%d log lines with %q, want 1:\n%s", n, tc.log, logs.String())
				}
			}
		})
	}
}

// pipeSession is a session of a fresh server on one end of a net.Pipe,
// registered as accept would; the test holds the miner's end.
func pipeSession(t *testing.T, writeTimeout time.Duration) (*Server, *session, net.Conn, *testutil.SyncBuffer) {
	t.Helper()
	var logs testutil.SyncBuffer
	srv, err := New(Config{
		Source: acceptAll{chaintest.New(&chaincfg.RegressionNetParams)}, Network: &chaincfg.RegressionNetParams,
		Users: newFakeUsers(), Shares: nopSink{}, Blocks: nopSink{}, PayoutScript: payoutScript(t),
		WriteTimeout: writeTimeout,
		Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	t.Cleanup(func() { b.Close() })
	c := newSession(srv, &serveGroup{ctx: context.Background()}, a, "192.0.2.1")
	srv.mu.Lock()
	srv.sessions[c] = struct{}{}
	srv.mu.Unlock()
	return srv, c, b, &logs
}

// runSession runs c's reader and returns a channel closed when it is done.
func runSession(c *session) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.run()
	}()
	return done
}

func TestSessionEndHungUp(t *testing.T) {
	srv, c, miner, _ := pipeSession(t, time.Second)
	done := runSession(c)
	miner.Close()
	<-done
	checkEnds(t, srv.Stats(), "hung-up")
	if n := len(srv.snapshot(func(*session) bool { return true })); n != 0 {
		t.Errorf("%d sessions left", n)
	}
}

// A write that fails off the reader (here: the test's, as the fan-out's
// would) ends the session for its reason, not for the read error the
// closed connection then gives the reader.
func TestSessionEndWriteFailureStands(t *testing.T) {
	srv, c, _, logs := pipeSession(t, 50*time.Millisecond)
	done := runSession(c)
	if err := c.write([]byte("x\n"), 50*time.Millisecond); reasonOf(err) != closeWriteTimeout {
		t.Fatalf("write: %v", err)
	}
	if err := c.write([]byte("y\n"), time.Second); reasonOf(err) != closeWriteTimeout {
		t.Errorf("write after stop: %v, want the recorded reason", err)
	}
	<-done
	st := srv.Stats()
	checkEnds(t, st, "write-timeout")
	if st.WriteTimeouts != 1 {
		t.Errorf("write timeouts %d", st.WriteTimeouts)
	}
	if n := strings.Count(logs.String(), "write timed out"); n != 1 {
		t.Errorf("%d write-timeout log lines:\n%s", n, logs.String())
	}
}

// A reason the session decided on a line it read stands over the failure
// of its last reply: a malformed line whose error reply cannot be written
// is counted as malformed (and charged to the address), not as a write
// timeout.
func TestSessionEndDecidedStands(t *testing.T) {
	srv, c, miner, logs := pipeSession(t, 50*time.Millisecond)
	done := runSession(c)
	go miner.Write([]byte("garbage\n")) // then never reads the reply
	<-done
	st := srv.Stats()
	checkEnds(t, st, "malformed")
	if st.Malformed != 1 || st.WriteTimeouts != 0 {
		t.Errorf("malformed %d, write timeouts %d", st.Malformed, st.WriteTimeouts)
	}
	if n := strings.Count(logs.String(), "malformed line"); n != 1 {
		t.Errorf("%d malformed log lines:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "write timed out") {
		t.Errorf("write timeout logged:\n%s", logs.String())
	}
}
