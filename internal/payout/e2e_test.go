package payout

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/jackc/pgx/v5"

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
	return openInputs(t, rp.st)
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

// emptyBlocks mines n blocks that carry only a coinbase (paying an address
// the wallet does not hold), so that what is in the mempool stays there,
// and waits for the wallet to see them.
func (rp *realPool) emptyBlocks(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	a, err := btcutil.DecodeAddress(btcdtest.MiningAddress(rp.params), rp.params)
	if err != nil {
		t.Fatal(err)
	}
	rp.node.GenerateTo(a, n)
	rp.synced(t, ctx)
}

// mempool returns the node's mempool txids.
func (rp *realPool) mempool(t *testing.T) map[string]bool {
	t.Helper()
	hs, err := rp.node.Client().GetRawMempool()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, h := range hs {
		out[h.String()] = true
	}
	return out
}

// onChain reports whether the node's chain holds txid (btcdtest runs
// btcd with --txindex) and the block's hash.
func (rp *realPool) onChain(t *testing.T, txid string) bool {
	t.Helper()
	h, _ := chainhash.NewHashFromStr(txid)
	res, err := rp.node.Client().GetRawTransactionVerbose(h)
	return err == nil && res.BlockHash != ""
}

// balances reads the balances view.
func (rp *realPool) balances(t *testing.T, ctx context.Context) map[string][3]int64 {
	t.Helper()
	rows, err := rp.st.Pool().Query(ctx, `SELECT username, paid, pending, balance FROM balances`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][3]int64{}
	var u string
	var paid, pending, bal int64
	if _, err := pgx.ForEachRow(rows, []any{&u, &paid, &pending, &bal}, func() error {
		out[u] = [3]int64{paid, pending, bal}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// paidOnChain sums, per recipient address, the outputs of txid on chain.
func (rp *realPool) paidOnChain(t *testing.T, txid string, into map[string]int64) {
	t.Helper()
	h, _ := chainhash.NewHashFromStr(txid)
	tx, err := rp.node.Client().GetRawTransaction(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range tx.MsgTx().TxOut {
		_, addrs, _, err := txscript.ExtractPkScriptAddrs(o.PkScript, rp.params)
		if err != nil || len(addrs) != 1 {
			t.Fatalf("output script: %v", err)
		}
		if a := addrs[0].EncodeAddress(); slices.Contains(rp.users, a) {
			into[a] += o.Value
		}
	}
}

// TestStuckPaymentBumpedRealWallet: a payment broadcast at 1 sat/vB is
// kept out of blocks (blocks with a coinbase only); payout bump replaces
// it at 5 sat/vB (every input signals RBF; btcd accepts the replacement and
// evicts the original); both transactions are recorded; the replacement
// confirms and settles the payment; the original never confirms; each
// recipient is paid exactly its balance once.
func TestStuckPaymentBumpedRealWallet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rp := newRealPool(t, ctx)
	rp.mine(t, ctx, 99) // two blocks mature (margin 1)
	cfg := rp.cfg
	cfg.Options.FeeRate = 1
	rep, err := Run(ctx, cfg)
	if err != nil || len(rep.Payments) != 1 || rep.Payments[0].State != "broadcast" {
		t.Fatalf("run: %+v %v", rep, err)
	}
	pay := rep.Payments[0]
	orig := pay.TxID
	h, _ := chainhash.NewHashFromStr(orig)
	raw, err := rp.node.Client().GetRawTransaction(h)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range raw.MsgTx().TxIn {
		if in.Sequence != 0xfffffffd {
			t.Fatalf("input %d sequence %x: no RBF signal", i, in.Sequence)
		}
	}
	// From now on the third block stays unmatured: one payment in play.
	cfg.Options.MaturityMargin = 50
	rp.emptyBlocks(t, ctx, 2)
	if rep, err = Run(ctx, cfg); err != nil || rep.Payments[0].State != "broadcast" || !rp.mempool(t)[orig] {
		t.Fatalf("stuck run: %+v %v", rep, err)
	}

	cfg.Options.FeeRate = 1 // not above the payment's own rate
	if _, err := Bump(ctx, cfg, pay.ID); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bump at the same rate: %v", err)
	}
	cfg.Options.FeeRate = 5
	bumped, err := Bump(ctx, cfg, pay.ID)
	if err != nil {
		t.Fatalf("bump: %v\n%s", err, rp.wallet.Log())
	}
	repl := bumped.TxID
	if repl == orig || len(bumped.Txs) != 2 || bumped.Txs[1].Kind != "bump" || bumped.Fee <= pay.Fee {
		t.Fatalf("bump report %+v (was %+v)", bumped, pay)
	}
	if mp := rp.mempool(t); !mp[repl] || mp[orig] {
		t.Fatalf("mempool %v: want the replacement %s, not %s", mp, repl, orig)
	}
	var n int
	if err := rp.st.Pool().QueryRow(ctx, `SELECT count(*) FROM payment_txs WHERE payment_id = $1`, pay.ID).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d transactions recorded (%v)", n, err)
	}
	if got, want := rp.locks(t), rp.openInputs(t, ctx); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("locks %v, open payments' inputs %v", got, want)
	}

	rp.mine(t, ctx, 1) // takes the mempool: the replacement
	rep, err = Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var settled PaymentReport
	for _, p := range rep.Payments {
		if p.ID == pay.ID {
			settled = p
		}
	}
	if settled.State != "confirmed" || settled.TxID != repl {
		t.Fatalf("after the replacement confirmed: %+v", settled)
	}
	if !rp.onChain(t, repl) || rp.onChain(t, orig) {
		t.Fatalf("on chain: replacement %v, original %v", rp.onChain(t, repl), rp.onChain(t, orig))
	}
	var dbTxid, confirmedBy string
	if err := rp.st.Pool().QueryRow(ctx, `SELECT p.txid, t.txid FROM payments p JOIN payment_txs t ON t.payment_id = p.id
		WHERE p.id = $1 AND t.block_hash IS NOT NULL`, pay.ID).Scan(&dbTxid, &confirmedBy); err != nil || dbTxid != repl || confirmedBy != repl {
		t.Fatalf("ledger says paid by %s, settled by %s (%v); want %s", dbTxid, confirmedBy, err, repl)
	}
	onChain := map[string]int64{}
	rp.paidOnChain(t, repl, onChain)
	bal := rp.balances(t, ctx)
	for _, o := range pay.Outputs {
		if onChain[o.Address] != o.Amount || bal[o.Username][0] != o.Amount {
			t.Fatalf("%s: on chain %d, ledger paid %d, want %d", o.Username, onChain[o.Address], bal[o.Username][0], o.Amount)
		}
	}
}

// TestAbandonRealWallet: a payment stuck at 1 sat/vB is abandoned: a
// conflicting transaction spending its inputs back to the wallet replaces
// it in the mempool; until that conflict has ConflictConfirmations
// confirmations the payment's outputs stay pending (nothing is paid anew);
// then the payment is abandoned, its outputs count as unpaid, and the same
// run pays them with a new payment, which confirms: each recipient is paid
// its balance exactly once, the abandoned transaction never confirmed.
func TestAbandonRealWallet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rp := newRealPool(t, ctx)
	rp.mine(t, ctx, 99)
	cfg := rp.cfg
	cfg.Options.FeeRate = 1
	cfg.Options.ConflictConfirmations = 3
	rep, err := Run(ctx, cfg)
	if err != nil || len(rep.Payments) != 1 || rep.Payments[0].State != "broadcast" {
		t.Fatalf("run: %+v %v", rep, err)
	}
	pay := rep.Payments[0]
	cfg.Options.MaturityMargin = 50 // the third block stays unmatured: one payment in play
	rp.emptyBlocks(t, ctx, 1)
	before := rp.balances(t, ctx)

	ab, err := Abandon(ctx, cfg, pay.ID)
	if err != nil {
		t.Fatalf("abandon: %v\n%s", err, rp.wallet.Log())
	}
	if ab.State != "abandoning" || len(ab.Txs) != 2 || ab.Txs[1].Kind != "abandon" {
		t.Fatalf("abandon report %+v", ab)
	}
	conflict := ab.Txs[1].TxID
	if mp := rp.mempool(t); !mp[conflict] || mp[pay.TxID] {
		t.Fatalf("mempool %v: want the abandon %s, not %s", mp, conflict, pay.TxID)
	}
	check := func(what string, wantState string, pending bool) {
		t.Helper()
		rep, err := Run(ctx, cfg)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var got PaymentReport
		for _, p := range rep.Payments {
			if p.ID == pay.ID {
				got = p
			}
		}
		if got.State != wantState {
			t.Fatalf("%s: payment %+v, want %s", what, got, wantState)
		}
		bal := rp.balances(t, ctx)
		for _, o := range pay.Outputs {
			if pending && bal[o.Username] != before[o.Username] {
				t.Fatalf("%s: %s balance %v, want still pending %v", what, o.Username, bal[o.Username], before[o.Username])
			}
		}
		if pending && len(rep.Payments) != 1 {
			t.Fatalf("%s: a new payment while the old one is pending: %+v", what, rep.Payments)
		}
	}
	check("conflict in the mempool", "abandoning", true)
	rp.mine(t, ctx, 1) // the abandon transaction confirms
	check("conflict with 1 confirmation", "abandoning", true)
	rp.emptyBlocks(t, ctx, 1)
	check("conflict with 2 confirmations", "abandoning", true)
	rp.emptyBlocks(t, ctx, 1)
	rep, err = Run(ctx, cfg) // 3 confirmations: abandoned, and paid anew
	if err != nil {
		t.Fatal(err)
	}
	var newPay PaymentReport
	for _, p := range rep.Payments {
		switch {
		case p.ID == pay.ID && p.State != "abandoned":
			t.Fatalf("after 3 confirmations: %+v", p)
		case p.ID != pay.ID:
			newPay = p
		}
	}
	if newPay.State != "broadcast" || newPay.Total != pay.Total {
		t.Fatalf("new payment %+v, want %d broadcast (report %+v)", newPay, pay.Total, rep)
	}
	if n := len(rp.locks(t)); n != len(rp.openInputs(t, ctx)) {
		t.Fatalf("%d locks, %d open inputs", n, len(rp.openInputs(t, ctx)))
	}
	rp.mine(t, ctx, 1)
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if rp.onChain(t, pay.TxID) || !rp.onChain(t, conflict) || !rp.onChain(t, newPay.TxID) {
		t.Fatalf("on chain: abandoned %v, conflict %v, new %v", rp.onChain(t, pay.TxID), rp.onChain(t, conflict), rp.onChain(t, newPay.TxID))
	}
	onChain := map[string]int64{}
	rp.paidOnChain(t, newPay.TxID, onChain)
	bal := rp.balances(t, ctx)
	for _, o := range pay.Outputs {
		if onChain[o.Address] != o.Amount || bal[o.Username][0] != o.Amount || bal[o.Username][1] != 0 {
			t.Fatalf("%s: on chain %d, ledger %v, want paid %d once", o.Username, onChain[o.Address], bal[o.Username], o.Amount)
		}
	}
}
