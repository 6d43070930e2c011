package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/payout"
	"github.com/stratumd/stratumd/internal/pgtest"
)

// TestMinedAndPaid is the whole pool on simnet with real btcd and btcwallet:
// stratumd (--node rpc) pays its coinbases to the wallet's P2PKH address;
// the in-repo miner mines for three users (P2PKH, P2WPKH and taproot
// addresses, open authorization); the blocks mature; payout run credits
// the PPLNS splits and pays; each recipient's output is on chain with
// exactly the ledger's amount; a further run pays nothing.
func TestMinedAndPaid(t *testing.T) {
	if testing.Short() {
		t.Skip("needs btcd and btcwallet")
	}
	params := &chaincfg.SimNetParams
	btcd := btcdtest.Start(t, btcdtest.Options{Network: "simnet"})
	wallet := btcdtest.StartWallet(t, btcd)
	btcd.Generate(1)
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	poolAddr := wallet.NewAddress()
	r := startDaemon(t, db, "--network", "simnet", "--node", "rpc",
		"--rpc-url", "http://"+btcd.RPCAddr(), "--rpc-user", btcdtest.RPCUser, "--rpc-pass", btcdtest.RPCPass,
		"--payout-address", poolAddr.EncodeAddress(), "--auth", "open", "--datadir", filepath.Join(dir, "node"),
		"--share-dir", filepath.Join(dir, "shares"),
		// About one share in 47 is a block: rounds hold shares of every user.
		"--min-diff", "1e-11", "--max-diff", "1e-11")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	seed := bytes.Repeat([]byte{0x5a}, 32)
	a1, _ := btcutil.NewAddressPubKeyHash(seed[:20], params)
	a2, _ := btcutil.NewAddressWitnessPubKeyHash(seed[3:23], params)
	a3, _ := btcutil.NewAddressTaproot(seed, params)
	users := []string{a1.EncodeAddress(), a2.EncodeAddress(), a3.EncodeAddress()}

	const wantBlocks = 4
	var mu sync.Mutex
	blocks := 0
	// Every miner is connected and authorized before any mines: on a busy
	// machine the first one could otherwise find every block alone.
	miners := make([]*miner.Miner, len(users))
	for i, u := range users {
		m, err := miner.Dial(ctx, r.addr, miner.Options{User: u, Workers: []string{"rig"}, VersionRolling: i%2 == 0})
		if err != nil {
			t.Fatalf("dial %s: %v", u, err)
		}
		defer m.Close()
		miners[i] = m
	}
	var wg sync.WaitGroup
	for _, m := range miners {
		wg.Go(func() {
			for ctx.Err() == nil {
				mu.Lock()
				done := blocks >= wantBlocks
				mu.Unlock()
				if done {
					return
				}
				res, err := m.Mine(ctx, 1)
				if err != nil {
					t.Errorf("mine: %v", err)
					return
				}
				if res[0].Accepted && res[0].MeetsNetwork {
					mu.Lock()
					blocks++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Wait until every block row is written, then stop mining for good.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	var inTable int
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM blocks`).Scan(&inTable); err != nil || inTable < wantBlocks {
		t.Fatalf("%d block rows (%v)", inTable, err)
	}

	cfg := payout.Config{
		DB:               db,
		Wallet:           payout.RPCConfig{URL: "http://" + wallet.RPCAddr(), User: btcdtest.WalletUser, Pass: btcdtest.WalletPass},
		WalletPassphrase: btcdtest.WalletPassphrase,
		Node:             payout.RPCConfig{URL: "http://" + btcd.RPCAddr(), User: btcdtest.RPCUser, Pass: btcdtest.RPCPass},
		Options: payout.Options{Params: params, PPLNSFactor: 2, FeeBPS: 150, MinPayout: 10000, FeeRate: 2,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
	}
	// Mature every block, then run until nothing is left to do: credits,
	// payments, their confirmation.
	btcd.Generate(101)
	for range 4 {
		best, _ := btcd.Client().GetBlockCount()
		if err := wallet.WaitSynced(ctx, best); err != nil {
			t.Fatal(err)
		}
		if _, err := payout.Run(ctx, cfg); err != nil {
			t.Fatalf("payout run: %v\n%s", err, wallet.Log())
		}
		btcd.Generate(1)
	}
	var credited, mined, orphaned int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'credited'), count(*) FILTER (WHERE status = 'orphaned'),
		(SELECT COALESCE(sum(amount), 0) FROM credits) FROM blocks`).Scan(&mined, &orphaned, &credited); err != nil {
		t.Fatal(err)
	}
	if mined+orphaned != int64(inTable) || mined < 1 || credited <= 0 {
		t.Fatalf("blocks: %d credited, %d orphaned of %d; credits %d", mined, orphaned, inTable, credited)
	}
	// The ledger: every credited user paid in full, by confirmed payments.
	type out struct {
		Txid, Address string
		Amount        int64
	}
	rows, _ := conn.Query(ctx, `SELECT p.txid, o.address, o.amount FROM payments p JOIN payment_outputs o ON o.payment_id = p.id WHERE p.state = 'confirmed'`)
	outs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[out])
	if err != nil {
		t.Fatal(err)
	}
	ledger := map[string]int64{}
	txids := map[string]bool{}
	var paid int64
	for _, o := range outs {
		ledger[o.Address] += o.Amount
		txids[o.Txid] = true
		paid += o.Amount
	}
	// Every credited user, and only they, paid exactly their credits. A
	// user can have none: a block found early has a short PPLNS window,
	// which may hold no share of a miner that had just connected.
	rows, _ = conn.Query(ctx, `SELECT username, sum(amount)::bigint FROM credits GROUP BY username`)
	type credit struct {
		User   string
		Amount int64
	}
	credits, err := pgx.CollectRows(rows, pgx.RowToStructByPos[credit])
	if err != nil {
		t.Fatal(err)
	}
	if paid != credited || len(ledger) != len(credits) || len(credits) < 2 {
		t.Fatalf("paid %d to %v, credited %d to %v", paid, ledger, credited, credits)
	}
	for _, c := range credits {
		if !slices.Contains(users, c.User) || ledger[c.User] != c.Amount {
			t.Fatalf("%s credited %d, paid %d", c.User, c.Amount, ledger[c.User])
		}
	}
	onChain := map[string]int64{}
	for txid := range txids {
		h, _ := chainhash.NewHashFromStr(txid)
		raw, err := btcd.Client().RawRequest("getrawtransaction", []json.RawMessage{json.RawMessage(`"` + h.String() + `"`), json.RawMessage(`0`)})
		if err != nil {
			t.Fatal(err)
		}
		b, err := hex.DecodeString(strings.Trim(string(raw), `"`))
		if err != nil {
			t.Fatal(err)
		}
		var tx wire.MsgTx
		if err := tx.Deserialize(bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		for _, o := range tx.TxOut {
			_, addrs, _, err := txscript.ExtractPkScriptAddrs(o.PkScript, params)
			if err == nil && len(addrs) == 1 {
				if a := addrs[0].EncodeAddress(); ledger[a] != 0 {
					onChain[a] += o.Value
				}
			}
		}
	}
	for u, amount := range ledger {
		if onChain[u] != amount {
			t.Fatalf("%s: on chain %d, ledger %d", u, onChain[u], amount)
		}
	}
	// Nothing more to pay.
	rep, err := payout.Run(ctx, cfg)
	if err != nil || len(rep.Payments) != 0 || len(rep.Credited) != 0 {
		t.Fatalf("last run: %+v, %v", rep, err)
	}
	t.Logf("%d blocks (%d credited, %d orphaned), %d sat paid to %d users in %d transactions", inTable, mined, orphaned, paid, len(ledger), len(txids))
}
