//go:build chaos

package chaos

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/e2e/daemontest"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
)

func msgIs(m string) func(daemontest.Line) bool {
	return func(l daemontest.Line) bool { return l.Msg() == m }
}

// nodeDown matches the line stratumd logs in RPC mode once it sees its
// node gone.
func nodeDown(l daemontest.Line) bool {
	return strings.HasPrefix(l.Msg(), "rpcsource: NODE DOWN") || l.Msg() == "rpcsource: cannot connect to node; retrying"
}

// rpcArgs are stratumd's arguments for RPC mode on btcd (simnet, open
// authorization, coinbase to payout, share difficulty shareDiff), with its
// data under dir; extra are appended.
func rpcArgs(btcd *btcdtest.Node, db, addr, dir, payout string, extra ...string) []string {
	return append([]string{"--db", db, "--listen", addr,
		"--network", "simnet", "--node", "rpc", "--rpc-url", "http://" + btcd.RPCAddr(),
		"--rpc-user", btcdtest.RPCUser, "--rpc-pass", btcdtest.RPCPass, "--payout-address", payout,
		"--auth", "open", "--datadir", filepath.Join(dir, "node"), "--share-dir", filepath.Join(dir, "shares"),
		"--min-diff", shareDiff, "--max-diff", shareDiff}, extra...)
}

// TestPostgresOutage: PostgreSQL stopped for 60 s under load. Miners keep
// getting shares accepted (the spool holds them); when PostgreSQL is back
// every acknowledged share is stored once, in acceptance order.
func TestPostgresOutage(t *testing.T) {
	const outage = 60 * time.Second
	cluster := pgtest.StartCluster(t)
	dir := t.TempDir()
	addr := daemontest.FreeAddr(t)
	p := daemontest.Start(t, stratumdBin, daemontest.Options{Args: regtestArgs(dir, cluster.URL(), addr)})
	// One block share in 100 submitted: about 2,000 regtest blocks in the
	// run, whose timestamps stay well inside the node's two-hour window.
	f := startFleet(t, fleetConfig{addr: addr, users: regtestUsers(t), miners: 8, blockEvery: 100, versionRolling: true})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	start := time.Now()
	if err := f.waitAcks(ctx, 300); err != nil {
		t.Fatalf("%v (%+v)", err, f.stats())
	}
	if err := hold(ctx, 5*time.Second-time.Since(start)); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	cluster.Stop()
	if _, err := p.WaitLog(ctx, msgIs("database write failing; shares stay in the spool and are retried")); err != nil {
		t.Fatalf("drainer did not notice the outage: %v", err)
	}
	if err := hold(ctx, outage-time.Since(downAt)); err != nil {
		t.Fatal(err)
	}
	midStats := f.stats()
	cluster.Start()
	upAt := time.Now()
	if _, err := p.WaitLog(ctx, msgIs("database reachable again")); err != nil {
		t.Fatalf("drainer did not recover: %v", err)
	}
	recovered := time.Since(upAt)
	if err := f.waitAcks(ctx, 300); err != nil {
		t.Fatal(err)
	}
	if err := hold(ctx, 5*time.Second-time.Since(upAt)); err != nil {
		t.Fatal(err)
	}
	f.stop()
	st := f.stats()
	endAt := time.Now()
	during := acksBetween(st.acks, downAt, upAt)
	t.Logf("before the outage: %s", rate(acksBetween(st.acks, start, downAt), downAt.Sub(start)))
	t.Logf("PostgreSQL down:   %s", rate(during, upAt.Sub(downAt)))
	t.Logf("after:             %s; drainer reconnected %v after the restart", rate(acksBetween(st.acks, upAt, endAt), endAt.Sub(upAt)), recovered.Round(time.Millisecond))
	t.Logf("miners: %d connections, %d disconnects, rejects %v, block shares withheld %d", st.dials, st.disconnect, st.rejectMsgs, st.withheld)
	if during == 0 {
		t.Error("no share was accepted while PostgreSQL was down")
	}
	if midStats.disconnect != 0 {
		t.Errorf("%d miner disconnects during the outage (%v)", midStats.disconnect, midStats.lastErr)
	}
	a := waitStored(t, cluster.URL(), st.acks, 2*time.Minute)
	reportAudit(t, a)
	t.Run("blocks_recorded", func(t *testing.T) { checkBlocks(t, cluster.URL(), st.acks) })
	if !p.Running() {
		t.Fatal("stratumd exited")
	}
	if err := p.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// TestKillRestart: stratumd killed with SIGKILL under load, twice, and
// restarted on the same datadir and spool. Miners reconnect by themselves;
// no acknowledged share is lost or stored twice.
func TestKillRestart(t *testing.T) {
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	addr := daemontest.FreeAddr(t)
	p := daemontest.Start(t, stratumdBin, daemontest.Options{Args: regtestArgs(dir, db, addr)})
	const miners = 8
	f := startFleet(t, fleetConfig{addr: addr, users: regtestUsers(t), miners: miners, blockEvery: 10, versionRolling: true})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	for kill := 1; kill <= 2; kill++ {
		// Load for a few seconds (at least 500 shares) before each kill.
		loadFrom := time.Now()
		if err := f.waitAcks(ctx, 500); err != nil {
			t.Fatalf("%v (%+v)", err, f.stats())
		}
		if err := hold(ctx, 5*time.Second-time.Since(loadFrom)); err != nil {
			t.Fatal(err)
		}
		tipBefore := lastTip(p)
		killedAt := time.Now()
		p.Kill()
		p.Restart()
		restartedAt := time.Now()
		if err := f.waitEveryMinerAcked(ctx, restartedAt); err != nil {
			t.Fatalf("after kill %d: %v (%+v)", kill, err, f.stats())
		}
		t.Logf("kill %d: stratumd back %v after SIGKILL; all %d miners reconnected and mining %v after the restart",
			kill, restartedAt.Sub(killedAt).Round(time.Millisecond), miners, time.Since(restartedAt).Round(time.Millisecond))
		if loaded := loadedTip(p); loaded < tipBefore {
			t.Logf("kill %d: the node's chain was at height %d before SIGKILL and loaded at %d after it: %d accepted blocks lost by the node",
				kill, tipBefore, loaded, tipBefore-loaded)
		}
	}
	if err := f.waitAcks(ctx, 300); err != nil {
		t.Fatal(err)
	}
	f.stop()
	st := f.stats()
	t.Logf("miners: %d shares acknowledged, %d connections, %d disconnects, %d failed dials, rejects %v",
		len(st.acks), st.dials, st.disconnect, st.dialFails, st.rejectMsgs)
	if replays := p.Count(msgIs("replaying spool")); replays == 0 {
		t.Log("no spool replay was needed at restart (the drainer had kept up)")
	}
	a := waitStored(t, db, st.acks, 2*time.Minute)
	reportAudit(t, a)
	t.Run("blocks_recorded", func(t *testing.T) { checkBlocks(t, db, st.acks) })
	if err := p.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// lastTip is the height of the last block the embedded node logged as
// accepted.
func lastTip(p *daemontest.Process) int {
	h := 0
	for _, l := range p.Lines() {
		if l.Msg() == "submitted block accepted" || l.Msg() == "chain loaded" {
			h, _ = strconv.Atoi(l.Str("height"))
		}
	}
	return h
}

// loadedTip is the height the embedded node loaded at its last start.
func loadedTip(p *daemontest.Process) int {
	h := -1
	for _, l := range p.Lines() {
		if l.Msg() == "chain loaded" {
			h, _ = strconv.Atoi(l.Str("height"))
		}
	}
	return h
}

// TestNodeOutage: stratumd in RPC mode against btcd (simnet); btcd killed
// under load and restarted. Sessions stay up on the last job, shares keep
// being accepted, and a new tip after the restart reaches every miner.
func TestNodeOutage(t *testing.T) {
	const outage = 10 * time.Second
	btcd := btcdtest.Start(t, btcdtest.Options{Network: "simnet"})
	btcd.Generate(1)
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	addr := daemontest.FreeAddr(t)
	payout := btcdtest.MiningAddress(btcd.Params)
	p := daemontest.Start(t, stratumdBin, daemontest.Options{Args: rpcArgs(btcd, db, addr, dir, payout, "--job-interval", "1s")})
	const miners = 4
	f := startFleet(t, fleetConfig{addr: addr, users: []string{payout}, miners: miners, blockEvery: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := f.waitAcks(ctx, 300); err != nil {
		t.Fatalf("%v (%+v)", err, f.stats())
	}

	// The node dies while stratumd's job is on its tip: a block accepted
	// just before the kill would leave only stale work for the outage.
	if err := f.holdBlocks(ctx); err != nil {
		t.Fatalf("%v (%+v)", err, f.stats())
	}
	downAt := time.Now()
	btcd.Kill()
	if _, err := p.WaitLog(ctx, nodeDown); err != nil {
		t.Fatalf("stratumd did not notice the node outage: %v", err)
	}
	f.releaseBlocks() // blocks found now cannot be handed over, and are logged so
	if err := hold(ctx, outage-time.Since(downAt)); err != nil {
		t.Fatal(err)
	}
	mid := f.stats()
	btcd.Restart()
	upAt := time.Now()
	if during := acksBetween(mid.acks, downAt, upAt); during == 0 {
		t.Error("no share accepted while the node was down")
	} else {
		t.Logf("node down %v: %s accepted on the last job", upAt.Sub(downAt).Round(time.Millisecond), rate(during, upAt.Sub(downAt)))
	}
	if mid.disconnect != 0 || mid.connected != miners {
		t.Errorf("sessions did not stay up during the node outage: %d disconnects, %d of %d connected (%v)",
			mid.disconnect, mid.connected, miners, mid.lastErr)
	}

	// Recovery: a block from btcd after the restart reaches every miner as
	// a clean job (or a later tip does, when a miner's own block follows).
	hashes := btcd.Generate(1)
	genAt := time.Now()
	f.mu.Lock()
	ms := append([]*miner.Miner(nil), f.miners...)
	f.mu.Unlock()
	var slowest time.Duration
	for i, m := range ms {
		if m == nil {
			t.Fatalf("miner %d not connected after the node restart", i)
		}
		ev, err := m.WaitEvent(ctx, func(e miner.Event) bool {
			return e.Job != nil && e.Job.Clean && e.Time.After(upAt)
		})
		if err != nil {
			t.Fatalf("miner %d: no new tip after the node restart: %v", i, err)
		}
		slowest = max(slowest, ev.Time.Sub(genAt))
		if ev.Job.PrevHash != *hashes[0] {
			t.Logf("miner %d: first clean job after the restart builds on %v (btcd generated %v)", i, ev.Job.PrevHash, hashes[0])
		}
	}
	t.Logf("btcd restarted; its new block reached all %d miners as a clean job %v after generate", miners, slowest.Round(time.Millisecond))
	if err := f.waitEveryMinerAcked(ctx, genAt); err != nil {
		t.Fatal(err)
	}
	f.stop()
	st := f.stats()
	if st.disconnect != 0 {
		t.Errorf("%d miner disconnects (%v)", st.disconnect, st.lastErr)
	}
	t.Logf("miners: %d shares acknowledged, rejects %v; stratumd logged %d blocks it could not hand over; "+
		"the resubmitter saw %d blocks in btcd's best chain, gave %d up, made %d resubmissions",
		len(st.acks), st.rejectMsgs, p.Count(msgIs("stratum: BLOCK FOUND BUT NOT HANDED OVER")),
		p.Count(msgIs("stratum: found block is in a node's best chain")),
		p.Count(msgIs("stratum: found block given up: another block holds its height")),
		p.Count(func(l daemontest.Line) bool { return strings.HasPrefix(l.Msg(), "stratum: found block resubmitted") }))
	reportAudit(t, waitStored(t, db, st.acks, time.Minute))
	if err := p.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// TestSpoolDiskFull: the spool on a filesystem that fills up. Miners get
// error 20 "share not recorded", never a silent true; stratumd logs it
// clearly, keeps serving, and every acknowledged share is stored. With a
// tmpfs, growing it lets shares be recorded again.
func TestSpoolDiskFull(t *testing.T) {
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	fs := filepath.Join(dir, "spoolfs")
	var wrapper []string
	mounted := false
	if err := exec.Command("mkdir", "-p", fs).Run(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", fs).CombinedOutput(); err == nil {
		mounted = true
		t.Cleanup(func() {
			if out, err := exec.Command("umount", "-l", fs).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v %s", fs, err, out)
			}
		})
		t.Logf("spool on a 256 KiB tmpfs")
	} else if path, perr := exec.LookPath("prlimit"); perr == nil {
		// No mount: every file stratumd writes is limited to 256 KiB;
		// the spool segment hits it first (EFBIG; Go ignores SIGXFSZ).
		wrapper = []string{path, "--fsize=262144", "--"}
		t.Logf("cannot mount a tmpfs (%v: %s); running stratumd under RLIMIT_FSIZE 256 KiB", err, strings.TrimSpace(string(out)))
	} else {
		t.Skipf("neither a tmpfs mount (%v) nor prlimit (%v) is available", err, perr)
	}
	addr := daemontest.FreeAddr(t)
	args := append(regtestArgs(dir, db, addr), "--spool-dir", filepath.Join(fs, "spool"))
	p := daemontest.Start(t, stratumdBin, daemontest.Options{Args: args, Wrapper: wrapper})
	const miners = 4
	f := startFleet(t, fleetConfig{addr: addr, users: regtestUsers(t), miners: miners})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const notRecorded = "20 share not recorded"
	if err := f.waitFor(ctx, "a share-not-recorded reply", func(f *fleet) bool { return f.rejectMsgs[notRecorded] > 0 }); err != nil {
		t.Fatalf("%v (%+v)", err, f.stats())
	}
	fullAt := time.Now()
	l, err := p.WaitLog(ctx, msgIs("stratum: SHARE NOT RECORDED; miner told so"))
	if err != nil {
		t.Fatalf("no log line for the unrecorded share: %v", err)
	}
	t.Logf("log line: %s: %s", l.Msg(), l.Str("err"))
	if e := l.Str("err"); !strings.Contains(e, "no space left on device") && !strings.Contains(e, "file too large") {
		t.Errorf("the log line does not name the cause: %q", e)
	}
	// Keep mining against the full disk for a while: every reply is an
	// error or (for a share that still fits) true.
	if err := f.waitFor(ctx, "more refused shares", func(f *fleet) bool { return f.rejectMsgs[notRecorded] >= 200 }); err != nil {
		t.Fatal(err)
	}
	mid := f.stats()
	if mid.disconnect != 0 {
		t.Errorf("%d miners disconnected on the full disk (%v)", mid.disconnect, mid.lastErr)
	}
	if mounted {
		if out, err := exec.Command("mount", "-o", "remount,size=8m", fs).CombinedOutput(); err != nil {
			t.Fatalf("grow tmpfs: %v %s", err, out)
		}
		grownAt := time.Now()
		if err := f.waitAcks(ctx, 200); err != nil {
			t.Fatalf("no share recorded after space came back: %v", err)
		}
		t.Logf("space back: shares acknowledged again %v after the remount", time.Since(grownAt).Round(time.Millisecond))
	}
	f.stop()
	st := f.stats()
	t.Logf("miners: %d acknowledged (%d before the disk filled), %d answered %q, rejects %v, disconnects %d",
		len(st.acks), acksBetween(st.acks, time.Time{}, fullAt), st.rejectMsgs[notRecorded], notRecorded, st.rejectMsgs, st.disconnect)
	if !p.Running() {
		t.Fatal("stratumd exited on the full disk")
	}
	reportAudit(t, waitStored(t, db, st.acks, time.Minute))
	if err := p.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if s, err := p.ServerStats(); err == nil {
		t.Logf("server counters: accepted %d, not-recorded %d", s.Counters["SharesAccepted"], s.Rejected["not-recorded"])
	}
}
