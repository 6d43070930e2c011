package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain/embedded"
	"github.com/stratumd/stratumd/internal/chain/p2p"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/testutil"
)

// running is a stratumd daemon run in-process by a test.
type running struct {
	d    *daemon
	addr string
	stop func() error
	logs *testutil.SyncBuffer
}

// startDaemon runs stratumd with args (plus --db and a free --listen) and
// waits until it listens.
func startDaemon(t *testing.T, db string, args ...string) *running {
	t.Helper()
	r, _ := startDaemonAll(t, db, 1, append([]string{"--listen", "127.0.0.1:0"}, args...)...)
	return r
}

// otherRegtestAddress is a P2WSH regtest address (of an arbitrary script).
func otherRegtestAddress(t *testing.T) string {
	h := chainhash.HashB([]byte("stratumd test"))
	a, err := btcutil.NewAddressWitnessScriptHash(h, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return a.EncodeAddress()
}

type blockRow struct {
	Height int32
	Hash   string
	Status string
	User   string
}

func blockRows(t *testing.T, db string) []blockRow {
	t.Helper()
	return dbRows[blockRow](t, db, `SELECT height, hash, status, username FROM blocks ORDER BY height`)
}

// TestMineRegtestBlocks: the in-repo miner finds at least 500 regtest blocks
// through stratumd with the embedded node; the blocks table and the JSON
// dumps agree with the chain; a restart resumes at the tip.
func TestMineRegtestBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("long end-to-end test")
	}
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	args := []string{"--network", "regtest", "--auth", "open", "--datadir", filepath.Join(dir, "node"),
		"--share-dir", filepath.Join(dir, "shares"), "--min-diff", "1e-9", "--max-diff", "1e-9"}
	r := startDaemon(t, db, args...)
	node := r.d.source.(*p2p.Node)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	users := []string{regtestDevAddress, otherRegtestAddress(t)}
	const want = 500
	var mu sync.Mutex
	found := map[string]string{} // hash → user
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			m, err := miner.Dial(ctx, r.addr, miner.Options{User: u, Workers: []string{fmt.Sprintf("rig%d", i)}, VersionRolling: i == 1})
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer m.Close()
			for ctx.Err() == nil && node.BestHeight() < want {
				res, err := m.Mine(ctx, 1)
				if err != nil {
					t.Errorf("mine: %v", err)
					return
				}
				for _, x := range res {
					if x.Accepted && x.MeetsNetwork {
						mu.Lock()
						found[x.Hash.String()] = u
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if node.BestHeight() < want {
		t.Fatalf("chain at %d after mining, want %d", node.BestHeight(), want)
	}
	tip := node.BestHeight()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	rows := blockRows(t, db)
	if len(rows) != len(found) {
		t.Fatalf("%d block rows, %d blocks found by the miners", len(rows), len(found))
	}
	// Reopen the node's database to check the rows against the chain.
	n2, err := embedded.New(embedded.Config{Network: &chaincfg.RegressionNetParams, DataDir: filepath.Join(dir, "node")})
	if err != nil {
		t.Fatal(err)
	}
	main := 0
	for _, b := range rows {
		h, err := n2.Chain().BlockHashByHeight(b.Height)
		if err != nil {
			t.Fatalf("block row %+v: no block at that height: %v", b, err)
		}
		if h.String() == b.Hash {
			main++
			// The resubmitter confirms it within a second of the find; the
			// daemon may have stopped before it looked.
			if b.Status != "confirmed" && b.Status != "submitted" {
				t.Fatalf("block row %+v: a block of the best chain with status %q", b, b.Status)
			}
		} else {
			// The resubmitter gives it up once the chain is 6 blocks past
			// it; the daemon may have stopped before it looked.
			if b.Status != "orphaned" && b.Status != "submitted" {
				t.Fatalf("block row %+v: a stale block with status %q", b, b.Status)
			}
			// Two miners solved the same height at once: the later one
			// is a stale side-chain block the node keeps (payout marks it
			// orphaned).
			bh, _ := chainhash.NewHashFromStr(b.Hash)
			if have, err := n2.Chain().HaveBlock(bh); err != nil || !have {
				t.Fatalf("block row %+v: not known to the node (%v)", b, err)
			}
		}
		if u, ok := found[b.Hash]; !ok || u != b.User {
			t.Fatalf("block row %+v: the miners found it as %q (%v)", b, u, ok)
		}
	}
	// Every block of the chain was found through stratumd.
	if main != int(tip) {
		t.Fatalf("%d of the chain's %d blocks are in the blocks table", main, tip)
	}
	if int(n2.BestHeight()) != int(tip) {
		t.Fatalf("reopened node at %d, daemon stopped at %d", n2.BestHeight(), tip)
	}
	n2.Close()

	// Restart stratumd on the same datadir: the chain resumes at its tip.
	r2 := startDaemon(t, db, args...)
	if got := r2.d.source.(*p2p.Node).BestHeight(); got != tip {
		t.Fatalf("after restart the tip is %d, was %d", got, tip)
	}
	m, err := miner.Dial(ctx, r2.addr, miner.Options{User: users[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tipHash := r2.d.source.(*p2p.Node).BestHash()
	if j := m.CurrentJob(); j == nil || j.PrevHash != tipHash {
		t.Fatalf("after restart the job builds on %v, want the tip %v", j, tipHash)
	}
	// Dumps the recorder had not written when the daemon stopped (it
	// writes for a bounded grace) are written after the restart.
	for len(dbRows[blockRow](t, db, `SELECT height, hash, status, username FROM blocks WHERE dumped_at IS NULL`)) > 0 {
		if ctx.Err() != nil {
			t.Fatal("share dumps not written after the restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, b := range rows {
		var dump struct {
			Height int32  `json:"height"`
			Hash   string `json:"hash"`
			Finder struct {
				User string `json:"user"`
			} `json:"finder"`
			Round struct {
				Users []struct {
					Username string `json:"username"`
					Shares   int64  `json:"shares"`
				} `json:"users"`
			} `json:"round"`
		}
		raw, err := os.ReadFile(filepath.Join(dir, "shares", fmt.Sprintf("%d-%s.json", b.Height, b.Hash)))
		if err != nil {
			t.Fatalf("dump of %d: %v", b.Height, err)
		}
		if err := json.Unmarshal(raw, &dump); err != nil || dump.Height != b.Height || dump.Hash != b.Hash || dump.Finder.User != b.User {
			t.Fatalf("dump %s: %+v, %v", raw, dump, err)
		}
		var finderShares int64
		for _, u := range dump.Round.Users {
			if u.Username == b.User {
				finderShares = u.Shares
			}
		}
		if finderShares < 1 {
			t.Fatalf("dump of %d: the finder's own share is not in its round: %s", b.Height, raw)
		}
	}
	t.Logf("%d blocks found through stratumd: the chain's %d and %d stale (same height solved twice)", len(found), main, len(found)-main)
}

// TestSegwitSpendMinedThroughStratum: a segwit spend placed in the mempool is
// mined through stratum and the block is accepted by the chain.
func TestSegwitSpendMinedThroughStratum(t *testing.T) {
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	r := startDaemon(t, db, "--network", "regtest", "--auth", "open", "--datadir", filepath.Join(dir, "node"),
		"--share-dir", filepath.Join(dir, "shares"), "--min-diff", "1e-9", "--max-diff", "1e-9",
		"--regtest-premine", "440", "--job-interval", "1s")
	node := r.d.source.(*p2p.Node)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The premined coinbases pay the development address, whose key is 1.
	priv, _ := btcec.PrivKeyFromBytes([]byte{31: 1})
	h1, err := node.Chain().BlockByHeight(1)
	if err != nil {
		t.Fatal(err)
	}
	cb := h1.Transactions()[0].MsgTx()
	prevOut := cb.TxOut[0]
	tx := wire.NewMsgTx(2)
	cbHash := cb.TxHash()
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&cbHash, 0), nil, nil))
	dest, err := btcutil.DecodeAddress(otherRegtestAddress(t), &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	destScript, err := txscript.PayToAddrScript(dest)
	if err != nil {
		t.Fatal(err)
	}
	tx.AddTxOut(wire.NewTxOut(prevOut.Value-10000, destScript))
	fetcher := txscript.NewCannedPrevOutputFetcher(prevOut.PkScript, prevOut.Value)
	wit, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), 0, prevOut.Value, prevOut.PkScript, txscript.SigHashAll, priv, true)
	if err != nil {
		t.Fatal(err)
	}
	tx.TxIn[0].Witness = wit
	if err := node.SubmitTx(ctx, tx); err != nil {
		t.Fatalf("segwit spend refused by the mempool: %v", err)
	}
	txid := tx.TxHash()

	m, err := miner.Dial(ctx, r.addr, miner.Options{User: regtestDevAddress, VersionRolling: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for ctx.Err() == nil {
		res, err := m.Mine(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !res[0].Accepted || !res[0].MeetsNetwork {
			continue
		}
		blk, err := node.Chain().BlockByHash(&res[0].Hash)
		if err != nil {
			t.Fatalf("accepted block %v not in the chain: %v", res[0].Hash, err)
		}
		for _, x := range blk.Transactions() {
			if *x.Hash() == txid {
				if !x.HasWitness() {
					t.Fatal("the mined spend lost its witness")
				}
				t.Logf("segwit spend %v mined at height %d in %v", txid, blk.Height(), res[0].Hash)
				return
			}
		}
	}
	t.Fatalf("spend %v not mined: %v", txid, ctx.Err())
}
