package main

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/chain/p2p"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
)

// TestEmbeddedNodeWithPeers: stratumd's embedded node with a real btcd peer.
// The node syncs btcd's chain; a block found through stratumd is written to
// the peer (the time from the submit line to the first peer write is
// measured) and btcd accepts it; a longer competing chain from btcd
// reorganises stratumd: the miner gets a clean job on btcd's tip and the
// pool's block, confirmed once it was in the best chain, is marked
// orphaned.
func TestEmbeddedNodeWithPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("needs btcd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	btcd := btcdtest.Start(t, btcdtest.Options{})
	btcd.Generate(20)
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	r := startDaemon(t, db, "--network", "regtest", "--auth", "open", "--datadir", filepath.Join(dir, "node"),
		"--share-dir", filepath.Join(dir, "shares"), "--min-diff", "1e-9", "--max-diff", "1e-9",
		"--connect", btcd.P2PAddr())
	node := r.d.source.(*p2p.Node)
	for node.BestHeight() < 20 {
		select {
		case <-ctx.Done():
			t.Fatalf("embedded node at %d, btcd at 20", node.BestHeight())
		case <-time.After(20 * time.Millisecond):
		}
	}
	m, err := miner.Dial(ctx, r.addr, miner.Options{User: regtestDevAddress})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	// Found blocks reach btcd; submit line → first peer write, measured.
	var lat []time.Duration
	for len(lat) < 15 {
		sh, err := m.FindShare(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !sh.MeetsNetwork {
			continue
		}
		sent := time.Now()
		res, err := m.Submit(ctx, sh)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Accepted {
			continue // stale: a new tip came in between
		}
		// The peer write is asynchronous: it may follow the miner's reply.
		st := node.Stats()
		for deadline := time.Now().Add(5 * time.Second); st.LastAnnounced != sh.Hash || st.LastAnnounceWritten.Before(sent); st = node.Stats() {
			if time.Now().After(deadline) {
				t.Fatalf("block %v not written to the peer (stats %+v)", sh.Hash, st)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, st.LastAnnounceWritten.Sub(sent))
		if err := waitBest(ctx, btcd, sh.Hash.String()); err != nil {
			t.Fatalf("btcd did not take block %v: %v", sh.Hash, err)
		}
	}
	slices.Sort(lat)
	t.Logf("submit line sent → first peer write: min %v, median %v, max %v (%d blocks)", lat[0], lat[len(lat)/2], lat[len(lat)-1], len(lat))
	if lat[len(lat)/2] > 100*time.Millisecond {
		t.Fatalf("median submit → peer write %v", lat[len(lat)/2])
	}

	// A competing chain: stratumd finds a block btcd never sees (btcd is
	// stopped), btcd then builds a longer chain on its own.
	btcdHeight, _ := btcd.Client().GetBlockCount()
	btcd.Stop()
	var ours string
	for ours == "" {
		res, err := m.Mine(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Accepted && res[0].MeetsNetwork {
			ours = res[0].Hash.String()
		}
	}
	// The resubmitter sees our block in the node's best chain: confirmed.
	waitStatus(ctx, t, db, ours, "confirmed")
	// btcd restarts from genesis on regtest: give it a longer chain than ours.
	btcd2 := btcdtest.Start(t, btcdtest.Options{})
	long := btcd2.Generate(uint32(btcdHeight) + 5)
	if err := node.Connect(btcd2.P2PAddr()); err != nil {
		t.Fatal(err)
	}
	tip := *long[len(long)-1]
	if _, err := m.WaitEvent(ctx, func(e miner.Event) bool {
		return e.Job != nil && e.Job.Clean && e.Job.PrevHash == tip
	}); err != nil {
		t.Fatalf("no clean job on btcd's longer chain: %v", err)
	}
	// The watcher marks our block orphaned.
	waitStatus(ctx, t, db, ours, "orphaned")
}

// waitStatus waits until the blocks row of hash has status.
func waitStatus(ctx context.Context, t *testing.T, db, hash, status string) {
	t.Helper()
	for {
		rows := blockRows(t, db)
		i := slices.IndexFunc(rows, func(b blockRow) bool { return b.Hash == hash })
		if i >= 0 && rows[i].Status == status {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("block %s not %s: %+v", hash, status, rows)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
