package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
)

// runCmd runs stratumd with args and returns its standard output.
func runCmd(ctx context.Context, args ...string) (string, error) {
	var out bytes.Buffer
	err := run(ctx, args, strings.NewReader(""), &out, io.Discard)
	return out.String(), err
}

// TestSubmitBlockRPC: `stratumd submit-block HASH` hands a stored block to
// every --rpc-url: a btcd that lacks it takes it (and has it in its best
// chain after), a node that is down is reported as such, and a second run
// gets btcd's duplicate answer. An unknown hash and a block stored without
// its bytes fail with a clear error.
func TestSubmitBlockRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("needs btcd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A block of another simnet node stands for one the pool found while
	// its node was down.
	other := btcdtest.Start(t, btcdtest.Options{Network: "simnet"})
	h := other.Generate(1)[0]
	blk, err := other.Client().GetBlock(h)
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	if err := blk.Serialize(&raw); err != nil {
		t.Fatal(err)
	}
	btcd := btcdtest.Start(t, btcdtest.Options{Network: "simnet"})
	db := pgtest.NewDatabase(t)
	st, err := store.Open(ctx, store.Config{URL: db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	insert := func(hash string, raw []byte) {
		t.Helper()
		if _, err := st.InsertBlock(ctx, store.Block{Height: 1, Hash: hash, PrevHash: blk.Header.PrevBlock.String(),
			FoundAt: now, Username: "u", Worker: "w", Reward: 1, NetworkDifficulty: 1, Raw: raw,
			StatusReason: "submit error: connection refused", LastShare: store.SharePos{Time: now}}); err != nil {
			t.Fatal(err)
		}
	}
	insert(h.String(), raw.Bytes())
	insert(strings.Repeat("ab", 32), nil)

	payout := btcdtest.MiningAddress(btcd.Params)
	args := []string{"--db", db, "--network", "simnet", "--node", "rpc", "--payout-address", payout,
		"--rpc-url", "http://" + btcd.RPCAddr(), "--rpc-url", fmt.Sprintf("http://127.0.0.1:%d", btcdtest.FreePort(t)),
		"--rpc-user", btcdtest.RPCUser, "--rpc-pass", btcdtest.RPCPass, "submit-block"}
	out, err := runCmd(ctx, append(args, h.String())...)
	if err != nil {
		t.Fatalf("submit-block: %v\n%s", err, out)
	}
	t.Logf("first run:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "height 1, status submitted") ||
		!strings.HasPrefix(lines[1], "http://"+btcd.RPCAddr()+": accepted; in its best chain: true (tip at height 1)") ||
		!strings.Contains(lines[2], ": not handed over: ") || !strings.HasSuffix(lines[2], "in its best chain: unknown") {
		t.Fatalf("output:\n%s", out)
	}
	if best, err := btcd.Client().GetBestBlockHash(); err != nil || *best != *h {
		t.Fatalf("btcd's tip %v (%v), want %v", best, err, h)
	}
	out, err = runCmd(ctx, append(args, h.String())...)
	if err != nil || !strings.Contains(out, ": duplicate (already have block") {
		t.Fatalf("second run: %v\n%s", err, out)
	}

	if out, err := runCmd(ctx, append(args, strings.Repeat("cd", 32))...); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown block: %v\n%s", err, out)
	}
	if out, err := runCmd(ctx, append(args, strings.Repeat("ab", 32))...); err == nil || !strings.Contains(err.Error(), "no raw block") {
		t.Fatalf("block without its bytes: %v\n%s", err, out)
	}
	if _, err := runCmd(ctx, append(args, "xyz")...); err == nil || !strings.Contains(err.Error(), "not a block hash") {
		t.Fatalf("bad hash: %v", err)
	}
}

// TestSubmitBlockEmbedded: with the embedded node, submit-block cannot open
// the node while the daemon runs (it says so and how to get the block's
// hex); once the daemon has stopped it opens the node and gets its answer.
func TestSubmitBlockEmbedded(t *testing.T) {
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	args := []string{"--network", "regtest", "--auth", "open", "--datadir", filepath.Join(dir, "node"),
		"--share-dir", filepath.Join(dir, "shares"), "--min-diff", "1e-9", "--max-diff", "1e-9"}
	r := startDaemon(t, db, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := miner.Dial(ctx, r.addr, miner.Options{User: regtestDevAddress})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var hash string
	for hash == "" {
		res, err := m.Mine(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Accepted && res[0].MeetsNetwork {
			hash = res[0].Hash.String()
		}
	}
	for {
		if rows := blockRows(t, db); len(rows) == 1 && rows[0].Hash == hash {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the block's row was not stored")
		case <-time.After(20 * time.Millisecond):
		}
	}
	cmd := append([]string{"--db", db}, append(args, "submit-block", hash)...)
	out, err := runCmd(ctx, cmd...)
	if err == nil || !strings.Contains(err.Error(), "cannot open the embedded node") ||
		!strings.Contains(err.Error(), "SELECT encode(raw, 'hex') FROM blocks WHERE hash = '"+hash+"'") {
		t.Fatalf("with the daemon running: %v\n%s", err, out)
	}
	t.Logf("with the daemon running: %v", err)
	m.Close()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(ctx, cmd...)
	if err != nil || !strings.Contains(out, "embedded: duplicate (duplicate); in its best chain: true (tip at height 1)") {
		t.Fatalf("with the daemon stopped: %v\n%s", err, out)
	}
}
