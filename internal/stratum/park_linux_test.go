//go:build linux

package stratum

import (
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/stratum/wire"
)

// readersInLoop counts goroutines inside a session's read loop.
func readersInLoop(t *testing.T) int {
	t.Helper()
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		t.Fatal(err)
	}
	return strings.Count(b.String(), "stratum.(*session).readLoop")
}

// waitParked waits until the server's only session is parked with no
// reader goroutine, and returns it.
func waitParked(t *testing.T, h *harness) *session {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list := h.srv.snapshot(func(*session) bool { return true })
		if len(list) == 1 && list[0].park.state.Load() == parkParked && readersInLoop(t) == 0 {
			return list[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("session not parked: %d sessions, %d readers", len(list), readersInLoop(t))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An idle subscribed miner has no reader goroutine and no line buffer;
// a line, a share and a new tip all reach it as before, and it parks
// again once quiet.
func TestParkedSession(t *testing.T) {
	h := startHarness(t, harnessOpts{bits: hardBits})
	h.srv.parker.quiet.Store(int64(50 * time.Millisecond))
	c := h.dial()
	worker := regtestAddress(t, 3) + ".rig"
	c.handshake(worker)

	s := waitParked(t, h)
	if s.lr.Release() {
		t.Error("a parked session still held its line buffer")
	}

	// A line wakes it.
	if r := c.call(wire.MethodExtranonceSubscribe); string(r.Result) != "true" {
		t.Fatalf("extranonce.subscribe: %s", r.raw)
	}
	waitParked(t, h)

	// A share from a parked session is taken.
	e := h.srv.currentJob()
	sol := h.mine(c, e, c.diff, false, 0, 0)
	if r := c.call(wire.MethodSubmit, submitArgs(worker, c.jobID, sol.en2, sol.ntime, sol.nonce)...); string(r.Result) != "true" {
		t.Fatalf("submit: %s", r.raw)
	}
	waitParked(t, h)

	// A new tip reaches it without waking it.
	h.src.Advance()
	h.waitJob()
	for c.expect(wire.MethodNotify); !c.clean; c.expect(wire.MethodNotify) {
	}
	if st := s.park.state.Load(); st != parkParked {
		t.Errorf("state %d after a notify, want parked", st)
	}
	if n := h.srv.Stats().SharesAccepted; n != 1 {
		t.Errorf("accepted %d shares, want 1", n)
	}
}

// A parked session that says nothing is closed at its idle deadline, and
// one stopped while parked (shutdown) ends at once: each counted once.
func TestParkedSessionEnds(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		h := startHarness(t, harnessOpts{config: func(c *Config) { c.IdleTimeout = 400 * time.Millisecond }})
		c := h.dial()
		c.handshake(regtestAddress(t, 1) + ".w")
		waitParked(t, h)
		start := time.Now()
		c.waitClosed()
		if time.Since(start) > 5*time.Second {
			t.Errorf("closed after %v", time.Since(start))
		}
		checkEnds(t, h.srv.Stats(), "idle-timeout")
	})
	t.Run("shutdown", func(t *testing.T) {
		h := startHarness(t, harnessOpts{})
		c := h.dial()
		c.handshake(regtestAddress(t, 1) + ".w")
		waitParked(t, h)
		h.stop()
		msgs := c.waitClosed()
		if len(msgs) == 0 || msgs[len(msgs)-1].Method != wire.MethodReconnect {
			t.Errorf("no client.reconnect before the close: %v", msgs)
		}
		checkEnds(t, h.srv.Stats(), "shutdown")
	})
}
