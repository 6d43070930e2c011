package payout

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/testutil"
)

// TestEndToEndRealWallet: real btcd and btcwallet (simnet, see
// btcdtest.StartWallet). Three blocks pay their coinbase to the wallet's
// P2PKH address; they are recorded with their shares as stratumd records
// them; 100 more blocks mature them; payout.Run credits and pays P2PKH,
// P2WPKH and P2TR recipients; each output is on chain with exactly the
// ledger's amount; a further run pays nothing.
// realPool is a pool on simnet with real btcd and btcwallet: three blocks
// whose coinbases pay the wallet's P2PKH address, recorded with their
// shares as stratumd records them, mined by three users (P2PKH, P2WPKH and
// P2TR addresses); none is mature yet.
type realPool struct {
	params *chaincfg.Params
	node   *btcdtest.Node
	wallet *btcdtest.Wallet
	st     *store.Store
	cfg    Config
	users  []string
}

func newRealPool(t *testing.T, ctx context.Context) *realPool {
	t.Helper()
	params := &chaincfg.SimNetParams
	node := btcdtest.Start(t, btcdtest.Options{Network: "simnet"})
	wallet := btcdtest.StartWallet(t, node)
	st, dbURL := pgtest.NewStore(t)

	// Recipients: one of each address type (keys nobody holds; fine for paying).
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(0x40 + i)
	}
	a1, _ := btcutil.NewAddressPubKeyHash(seed[:20], params)
	a2, _ := btcutil.NewAddressWitnessPubKeyHash(seed[5:25], params)
	a3, _ := btcutil.NewAddressTaproot(seed, params)
	users := []string{a1.EncodeAddress(), a2.EncodeAddress(), a3.EncodeAddress()}

	poolAddr := wallet.NewAddress()
	node.Generate(1) // leave genesis, so that getblocktemplate's chain is current
	blocks := node.GenerateTo(poolAddr, 3)

	// Shares: users[i] submits i+1 shares of difficulty 1 per round, the
	// last one of each round being the block's share.
	now := time.Now().UTC().Truncate(time.Second)
	var seq uint64
	var rows []shareRow
	for b, blk := range blocks {
		round := now.Add(time.Duration(b) * time.Minute)
		var last shareRow
		k := 0
		for i, u := range users {
			for range i + 1 {
				seq++
				last = shareRow{round.Add(time.Duration(k) * time.Second), 0, seq, u, 1}
				rows = append(rows, last)
				k++
			}
		}
		insertShares(t, st, rows[len(rows)-k:])
		height, err := node.Client().GetBlockCount()
		if err != nil {
			t.Fatal(err)
		}
		h := blk.BlockHash()
		// network_difficulty 3: N = 2 × 3 = 6 = one whole round (1+2+3 shares)
		if _, err := st.InsertBlock(ctx, store.Block{Height: int32(height - int64(len(blocks)-1-b)), Hash: h.String(),
			PrevHash: blk.Header.PrevBlock.String(), FoundAt: last.at, Username: last.user, Worker: "w",
			Reward: blk.Transactions[0].TxOut[0].Value, NetworkDifficulty: 3,
			LastShare: store.SharePos{Time: last.at, Instance: last.inst, Seq: last.seq}}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{
		DB:               dbURL,
		Wallet:           RPCConfig{URL: "http://" + wallet.RPCAddr(), User: btcdtest.WalletUser, Pass: btcdtest.WalletPass},
		WalletPassphrase: btcdtest.WalletPassphrase,
		Node:             RPCConfig{URL: "http://" + node.RPCAddr(), User: btcdtest.RPCUser, Pass: btcdtest.RPCPass},
		Options: Options{Params: params, PPLNSFactor: 2, FeeBPS: 100, MinPayout: 10000, FeeRate: 3, MaturityMargin: 1,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
	}
	return &realPool{params: params, node: node, wallet: wallet, st: st, cfg: cfg, users: users}
}

// mine generates n blocks with btcd's generate (which takes the mempool)
// and waits for the wallet to see them.
func (rp *realPool) mine(t *testing.T, ctx context.Context, n uint32) {
	t.Helper()
	rp.node.Generate(n)
	rp.synced(t, ctx)
}

// synced waits until the wallet has seen the node's tip.
func (rp *realPool) synced(t *testing.T, ctx context.Context) {
	t.Helper()
	best, err := rp.node.Client().GetBlockCount()
	if err != nil {
		t.Fatal(err)
	}
	if err := rp.wallet.WaitSynced(ctx, best); err != nil {
		t.Fatal(err)
	}
}

// locks returns btcwallet's listlockunspent.
func (rp *realPool) locks(t *testing.T) map[wire.OutPoint]bool {
	t.Helper()
	ops, err := rp.wallet.Client().ListLockUnspent()
	if err != nil {
		t.Fatal(err)
	}
	out := map[wire.OutPoint]bool{}
	for _, op := range ops {
		out[*op] = true
	}
	return out
}

// openInputs returns the inputs of the ledger's open payments.
func (rp *realPool) openInputs(t *testing.T, ctx context.Context) map[wire.OutPoint]bool {
	t.Helper()
	in, err := inputsOf(ctx, rp.st.Pool(), openInputsSQL)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestEndToEndRealWallet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rp := newRealPool(t, ctx)
	params, node, wallet, st, cfg := rp.params, rp.node, rp.wallet, rp.st, rp.cfg

	// Not mature yet: blocks are only confirmed.
	rep, err := Run(ctx, cfg)
	if err != nil || len(rep.Credited) != 0 || len(rep.Payments) != 0 || len(rep.Blocks) != 3 || rep.Blocks[0].To != "confirmed" {
		t.Fatalf("early run: %+v %v", rep, err)
	}
	node.Generate(99)
	best, _ := node.Client().GetBlockCount()
	if err := wallet.WaitSynced(ctx, best); err != nil {
		t.Fatal(err)
	}
	_ = params
	rep, err = Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, wallet.Log())
	}
	// The newest block has 100 confirmations < 100 + margin 1: two credited.
	if len(rep.Credited) != 2 || len(rep.Payments) != 1 || rep.Payments[0].State != "broadcast" {
		t.Fatalf("report %+v", rep)
	}
	node.Generate(1)
	best++
	if err := wallet.WaitSynced(ctx, best); err != nil {
		t.Fatal(err)
	}
	rep, err = Run(ctx, cfg)
	if err != nil || len(rep.Credited) != 1 {
		t.Fatalf("third run: %+v %v", rep, err)
	}
	var states []string
	for _, p := range rep.Payments {
		states = append(states, p.State)
	}
	if fmt.Sprint(states) != "[confirmed broadcast]" {
		t.Fatalf("payment states %v", states)
	}
	node.Generate(1)
	best++
	if err := wallet.WaitSynced(ctx, best); err != nil {
		t.Fatal(err)
	}
	if rep, err = Run(ctx, cfg); err != nil || len(rep.Payments) != 1 || rep.Payments[0].State != "confirmed" {
		t.Fatalf("fourth run: %+v %v", rep, err)
	}

	// Every recipient's outputs on chain (per btcd) equal the ledger.
	rowsq, err := st.Pool().Query(ctx, `SELECT p.txid, o.address, o.amount FROM payments p JOIN payment_outputs o ON o.payment_id = p.id
		WHERE p.state = 'confirmed' ORDER BY p.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rowsq.Close()
	perAddr := map[string]int64{}
	txids := map[string]bool{}
	for rowsq.Next() {
		var txid, addr string
		var amt int64
		if err := rowsq.Scan(&txid, &addr, &amt); err != nil {
			t.Fatal(err)
		}
		perAddr[addr] += amt
		txids[txid] = true
	}
	rowsq.Close()
	if len(perAddr) != 3 || len(txids) != 2 {
		t.Fatalf("ledger paid %v in %d transactions", perAddr, len(txids))
	}
	onChain := map[string]int64{}
	for txid := range txids {
		raw, err := node.Client().RawRequest("getrawtransaction", []json.RawMessage{json.RawMessage(`"` + txid + `"`), json.RawMessage(`0`)})
		if err != nil {
			t.Fatal(err)
		}
		b, err := hex.DecodeString(strings.Trim(string(raw), `"`))
		if err != nil {
			t.Fatal(err)
		}
		tx, err := parseTx(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range tx.TxOut {
			_, addrs, _, err := txscript.ExtractPkScriptAddrs(o.PkScript, params)
			if err != nil || len(addrs) != 1 {
				t.Fatalf("output script: %v", err)
			}
			if a := addrs[0].EncodeAddress(); perAddr[a] != 0 {
				onChain[a] += o.Value
			}
		}
	}
	if fmt.Sprint(onChain) != fmt.Sprint(perAddr) {
		t.Fatalf("on chain %v, ledger %v", onChain, perAddr)
	}
	var credited int64
	if err := st.Pool().QueryRow(ctx, `SELECT sum(amount) FROM credits`).Scan(&credited); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, v := range perAddr {
		total += v
	}
	if total != credited {
		t.Fatalf("paid %d, credited %d", total, credited)
	}

	// A further run pays nothing.
	node.Generate(1)
	rep, err = Run(ctx, cfg)
	if err != nil || len(rep.Payments) != 0 || len(rep.Credited) != 0 {
		t.Fatalf("last run: %+v %v", rep, err)
	}
}

// TestLocksRealWallet: with the real btcwallet, a run interrupted after
// locking and before signing leaves a lock (and the output hidden from
// listunspent); the next run releases it and pays; after every complete
// run listlockunspent is exactly the inputs of the open payments, and
// empty once they confirmed. The "payment broadcast" log line names the
// txid.
func TestLocksRealWallet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rp := newRealPool(t, ctx)
	rp.mine(t, ctx, 99) // two blocks mature (margin 1)
	if n := len(rp.locks(t)); n != 0 {
		t.Fatalf("%d locks before any run", n)
	}
	cfg := rp.cfg
	cfg.Options.StepHook = func(s string) error {
		if s == StepBuilt {
			return errors.New("killed")
		}
		return nil
	}
	if _, err := Run(ctx, cfg); !errors.Is(err, errInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	leaked := rp.locks(t)
	if len(leaked) == 0 {
		t.Fatal("no lock after a run stopped between lock and sign")
	}
	unspent, err := rp.wallet.Client().ListUnspent()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range unspent {
		h, _ := chainhash.NewHashFromStr(u.TxID)
		if leaked[wire.OutPoint{Hash: *h, Index: u.Vout}] {
			t.Fatalf("btcwallet lists locked output %s:%d", u.TxID, u.Vout)
		}
	}

	var logs testutil.SyncBuffer
	cfg = rp.cfg
	cfg.Options.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	rep, err := Run(ctx, cfg)
	if err != nil || len(rep.Payments) != 1 || rep.Payments[0].State != "broadcast" {
		t.Fatalf("run after the interruption: %+v %v\n%s", rep, err, rp.wallet.Log())
	}
	if got, want := rp.locks(t), rp.openInputs(t, ctx); fmt.Sprint(got) != fmt.Sprint(want) || len(want) == 0 {
		t.Fatalf("locks %v, open payments' inputs %v", got, want)
	}
	if !strings.Contains(logs.String(), "msg=\"payment broadcast\" id=1 txid="+rep.Payments[0].TxID) {
		t.Fatalf("no broadcast log line with the txid:\n%s", logs.String())
	}

	rp.mine(t, ctx, 1) // confirms the payment, matures the third block
	rep, err = Run(ctx, rp.cfg)
	if err != nil || len(rep.Payments) != 2 || rep.Payments[0].State != "confirmed" {
		t.Fatalf("third run: %+v %v", rep, err)
	}
	if got, want := rp.locks(t), rp.openInputs(t, ctx); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("locks %v, open payments' inputs %v", got, want)
	}
	rp.mine(t, ctx, 1)
	if _, err := Run(ctx, rp.cfg); err != nil {
		t.Fatal(err)
	}
	if n := len(rp.locks(t)); n != 0 {
		t.Fatalf("%d locks left after every payment confirmed", n)
	}
}
