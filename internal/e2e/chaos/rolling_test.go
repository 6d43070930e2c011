//go:build chaos

package chaos

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/e2e/daemontest"
	"github.com/stratumd/stratumd/internal/pgtest"
)

// migrateReq is Linux's switch that hands the connections queued on a
// closing SO_REUSEPORT listener to another listener of its group.
const migrateReq = "/proc/sys/net/ipv4/tcp_migrate_req"

// needMigrateReq sets net.ipv4.tcp_migrate_req to 1 for the test (the
// README's rolling restart asks operators to), and puts back what it was.
func needMigrateReq(t *testing.T) {
	b, err := os.ReadFile(migrateReq)
	if err != nil {
		t.Fatalf("rolling restart needs Linux 5.14+ (%s): %v", migrateReq, err)
	}
	was := strings.TrimSpace(string(b))
	if was == "1" {
		return
	}
	if err := os.WriteFile(migrateReq, []byte("1\n"), 0o644); err != nil {
		t.Fatalf("cannot set %s to 1 (the suite runs as root in CI): %v", migrateReq, err)
	}
	t.Cleanup(func() { os.WriteFile(migrateReq, []byte(was+"\n"), 0o644) })
}

// TestRollingRestart (issue 19, point 4): two stratumd processes, instance
// ids 1 and 2, each with its own data directory and spool, share one port
// through --reuse-port, in RPC mode on one btcd. Under load from a fleet of
// miners: start B beside A, SIGTERM A (its miners get client.reconnect and
// land on B), start A again, SIGTERM B. No miner's dial fails at any
// point, every miner mines after each step, and every share a miner saw
// acknowledged is in PostgreSQL once, in acceptance order per spool.
func TestRollingRestart(t *testing.T) {
	needMigrateReq(t)
	btcd := btcdtest.Start(t, btcdtest.Options{Network: "simnet"})
	btcd.Generate(1)
	db := pgtest.NewDatabase(t)
	addr := daemontest.FreeAddr(t)
	payout := btcdtest.MiningAddress(btcd.Params)
	instance := func(id string) daemontest.Options {
		dir := t.TempDir()
		return daemontest.Options{Args: rpcArgs(btcd, db, addr, dir, payout, "--job-interval", "1s",
			"--reuse-port", "--instance-id", id, "--conn-rate-per-ip", "0", "--spool-dir", filepath.Join(dir, "spool"))}
	}
	a := daemontest.Start(t, stratumdBin, instance("1"))
	const miners = 32
	f := startFleet(t, fleetConfig{addr: addr, users: []string{payout}, miners: miners, blockEvery: 50, versionRolling: true})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := f.waitAcks(ctx, 300); err != nil {
		t.Fatalf("%v (%+v)", err, f.stats())
	}

	var b *daemontest.Process
	for round, step := range []struct {
		name     string
		old, new func() *daemontest.Process
	}{
		{"A→B", func() *daemontest.Process { return a }, func() *daemontest.Process {
			b = daemontest.Start(t, stratumdBin, instance("2"))
			return b
		}},
		{"B→A", func() *daemontest.Process { return b }, func() *daemontest.Process { a.Restart(); return a }},
	} {
		old := step.old()
		started := time.Now()
		step.new()
		// Load on both for a moment: the kernel spreads new connections
		// over the two; the miners stay where they are.
		if err := f.waitAcks(ctx, 200); err != nil {
			t.Fatalf("%s: %v (%+v)", step.name, err, f.stats())
		}
		stopAt := time.Now()
		if err := old.Stop(); err != nil {
			t.Fatalf("%s: SIGTERM: %v", step.name, err)
		}
		stopped := time.Since(stopAt)
		if err := f.waitEveryMinerAcked(ctx, time.Now()); err != nil {
			t.Fatalf("%s: %v (%+v)", step.name, err, f.stats())
		}
		st := f.stats()
		t.Logf("round %d %s: both processes serving for %v; old stopped %v after SIGTERM; every miner mining again %v after SIGTERM; %d dials, %d failed, %d disconnects so far",
			round+1, step.name, stopAt.Sub(started).Round(time.Millisecond), stopped.Round(time.Millisecond),
			time.Since(stopAt).Round(time.Millisecond), st.dials, st.dialFails, st.disconnect)
	}
	if err := f.waitAcks(ctx, 300); err != nil {
		t.Fatalf("%v (%+v)", err, f.stats())
	}
	f.stop()
	st := f.stats()
	t.Logf("miners: %d connections, %d failed dials, %d disconnects, rejects %v", st.dials, st.dialFails, st.disconnect, st.rejectMsgs)
	if st.dialFails != 0 {
		t.Errorf("%d miner dials failed during the rolling restarts (last: %v)", st.dialFails, st.lastErr)
	}
	au := waitStored(t, db, st.acks, 2*time.Minute)
	reportAudit(t, au)
	if len(au.spools) != 2 {
		t.Errorf("shares from %d spools, want 2 (one per instance)", len(au.spools))
	}
	t.Run("blocks_recorded", func(t *testing.T) { checkBlocks(t, db, st.acks) })
	if err := a.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}
