package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/stratumd/stratumd/internal/bcointest"
	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
)

// TestRPCModeAgainstBcoin: stratumd on a real bcoin (--node rpc, regtest;
// bcoin is driven as a Core-compatible node, by getblocktemplate long
// polling). The in-repo miner gets jobs; blocks it finds are accepted by
// bcoin (bcoin's best block is each one in turn) and recorded; a block
// from bcoin's own miner reaches the miner as a clean job on its hash.
func TestRPCModeAgainstBcoin(t *testing.T) {
	if testing.Short() {
		t.Skip("needs bcoin")
	}
	node := bcointest.Start(t)
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	payout := btcdtest.MiningAddress(&chaincfg.RegressionNetParams)
	r := startDaemon(t, db, "--network", "regtest", "--node", "rpc",
		"--rpc-url", "http://"+node.RPCAddr(), "--rpc-user", bcointest.RPCUser, "--rpc-pass", bcointest.APIKey,
		"--payout-address", payout, "--auth", "open", "--datadir", filepath.Join(dir, "node"),
		"--share-dir", filepath.Join(dir, "shares"), "--min-diff", "1e-9", "--max-diff", "1e-9")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m, err := miner.Dial(ctx, r.addr, miner.Options{User: payout, VersionRolling: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	// Blocks found through stratumd reach bcoin.
	const want = 3
	var found []string
	for len(found) < want {
		res, err := m.Mine(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Accepted && res[0].MeetsNetwork {
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			err := node.WaitBest(wctx, res[0].Hash)
			wcancel()
			if err != nil {
				t.Fatalf("block %d: %v\n%s", len(found)+1, err, node.Log())
			}
			found = append(found, res[0].Hash.String())
		}
	}
	if h, err := node.Height(); err != nil || h != want {
		t.Fatalf("bcoin at height %d (%v), want %d", h, err, want)
	}

	// A block from bcoin's own miner: a clean job on its hash.
	start := time.Now()
	hashes := node.Generate(1)
	ev, err := m.WaitEvent(ctx, func(e miner.Event) bool {
		return e.Job != nil && e.Job.Clean && e.Job.PrevHash == hashes[0]
	})
	if err != nil {
		t.Fatalf("no clean job for bcoin's block: %v", err)
	}
	t.Logf("bcoin generate → clean job at the miner: %v (long poll)", ev.Job.Received.Sub(start))

	// The blocks stratumd found are recorded.
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows := blockRows(t, db)
		got := map[string]bool{}
		for _, b := range rows {
			got[b.Hash] = true
		}
		all := true
		for _, h := range found {
			all = all && got[h]
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("blocks table %+v, found %v", rows, found)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
