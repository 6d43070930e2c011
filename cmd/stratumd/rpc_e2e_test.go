package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
)

// TestRPCModeAgainstBtcd: stratumd on an external btcd (--node rpc). Blocks
// found through stratumd are accepted by btcd; a block from btcd's generate
// gives miners a clean job quickly; btcd killed and restarted under load:
// stratumd survives and miners get work again.
func TestRPCModeAgainstBtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs btcd")
	}
	btcd := btcdtest.Start(t, btcdtest.Options{Network: "simnet"})
	btcd.Generate(1) // btcd's template needs a chain past genesis to be current
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	payout := btcdtest.MiningAddress(btcd.Params)
	r := startDaemon(t, db, "--network", "simnet", "--node", "rpc",
		"--rpc-url", "http://"+btcd.RPCAddr(), "--rpc-user", btcdtest.RPCUser, "--rpc-pass", btcdtest.RPCPass,
		"--payout-address", payout, "--auth", "open", "--datadir", filepath.Join(dir, "node"),
		"--share-dir", filepath.Join(dir, "shares"), "--min-diff", "1e-9", "--max-diff", "1e-9")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m, err := miner.Dial(ctx, r.addr, miner.Options{User: payout, VersionRolling: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	// Blocks found through stratumd reach btcd.
	mined := 0
	for mined < 5 {
		res, err := m.Mine(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Accepted && res[0].MeetsNetwork {
			mined++
			if err := waitBest(ctx, btcd, res[0].Hash.String()); err != nil {
				t.Fatalf("block %d: %v", mined, err)
			}
		}
	}

	// A block from btcd's generate: a clean job for its tip.
	start := time.Now()
	hashes := btcd.Generate(1)
	ev, err := m.WaitEvent(ctx, func(e miner.Event) bool {
		return e.Job != nil && e.Job.Clean && e.Job.PrevHash == *hashes[0]
	})
	if err != nil {
		t.Fatalf("no clean job for btcd's block: %v", err)
	}
	delay := ev.Job.Received.Sub(start)
	t.Logf("btcd generate → clean job at the miner: %v (includes btcd building the block)", delay)
	if delay > 2*time.Second {
		t.Fatalf("clean job after %v", delay)
	}

	// btcd killed under load, then restarted: stratumd survives.
	btcd.Kill()
	time.Sleep(300 * time.Millisecond) // an outage, not a blip
	btcd.Restart()
	btcd.Generate(1)
	// A block found on a template fetched before btcd's own block loses
	// the race and stays a side block; keep mining until btcd's tip is ours.
	for {
		res, err := m.Mine(ctx, 1)
		if err != nil {
			t.Fatalf("after btcd restart: %v", err)
		}
		if !res[0].Accepted || !res[0].MeetsNetwork {
			continue
		}
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		err = waitBest(wctx, btcd, res[0].Hash.String())
		wcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no block of stratumd became btcd's tip after the restart")
		}
	}
}

func waitBest(ctx context.Context, n *btcdtest.Node, hash string) error {
	for {
		best, err := n.Client().GetBestBlockHash()
		if err == nil && best.String() == hash {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
