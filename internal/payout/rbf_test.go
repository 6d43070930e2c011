package payout

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// stuck runs once with blocks frozen (coinbase only): one payment is
// broadcast and stays in the mempool. It returns its id and txid.
func (f *fixture) stuck(t *testing.T) (int64, chainhash.Hash) {
	t.Helper()
	f.wallet.frozen = true
	rep, err := f.payer(t).Run(context.Background(), false)
	if err != nil || len(rep.Payments) != 1 || rep.Payments[0].State != "broadcast" {
		t.Fatalf("run: %+v %v", rep, err)
	}
	f.wallet.mine()
	h, _ := chainhash.NewHashFromStr(rep.Payments[0].TxID)
	return rep.Payments[0].ID, *h
}

// state reads a payment's state and current txid.
func (f *fixture) state(t *testing.T, id int64) (string, string) {
	t.Helper()
	var state, txid string
	if err := f.st.Pool().QueryRow(context.Background(), `SELECT state, coalesce(txid, '') FROM payments WHERE id = $1`, id).
		Scan(&state, &txid); err != nil {
		t.Fatal(err)
	}
	return state, txid
}

// pending is the sum of the balances view's pending column.
func (f *fixture) pending(t *testing.T) int64 {
	t.Helper()
	var n int64
	if err := f.st.Pool().QueryRow(context.Background(), `SELECT coalesce(sum(pending), 0) FROM balances`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRunSignalsRBF(t *testing.T) {
	f := newFixture(t)
	_, h := f.stuck(t)
	f.wallet.mu.Lock()
	tx := f.wallet.txs[h].tx
	f.wallet.mu.Unlock()
	for i, in := range tx.TxIn {
		if in.Sequence != 0xfffffffd {
			t.Fatalf("input %d: sequence %x", i, in.Sequence)
		}
	}
}

// TestBumpThenReplacementConfirms: a stuck payment is bumped; the bump is
// stored before it is broadcast (a bump stopped there is sent by the next
// run); the replacement confirms and settles the payment.
func TestBumpThenReplacementConfirms(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, orig := f.stuck(t)
	p := f.payer(t)
	if _, err := p.Bump(ctx, id, 2); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bump at the payment's own rate: %v", err)
	}
	if _, err := p.Bump(ctx, id+100, 9); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bump of no payment: %v", err)
	}
	p.o.StepHook = func(s string) error {
		if s == StepBumpStored {
			return errors.New("killed")
		}
		return nil
	}
	if _, err := p.Bump(ctx, id, 9); !errors.Is(err, errInterrupted) {
		t.Fatalf("bump: %v", err)
	}
	state, cur := f.state(t, id)
	h, _ := chainhash.NewHashFromStr(cur)
	if state != "broadcast" || *h == orig {
		t.Fatalf("after the stored bump: %s %s", state, cur)
	}
	if st, _ := f.wallet.Status(ctx, *h); st.Known {
		t.Fatal("the bump was sent before the hook stopped it")
	}
	// The next run keeps the newest transaction in the mempool.
	if _, err := f.payer(t).Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	if !f.wallet.live(*h) || f.wallet.live(orig) {
		t.Fatalf("live: bump %v, original %v", f.wallet.live(*h), f.wallet.live(orig))
	}
	f.check(t, false)
	f.checkLocks(t)
	f.wallet.frozen = false
	f.finish(t)
	f.check(t, true)
	if state, txid := f.state(t, id); state != "confirmed" || txid != cur {
		t.Fatalf("settled %s by %s, want confirmed by %s", state, txid, cur)
	}
	if n := len(f.wallet.lockedSet()); n != 0 {
		t.Fatalf("%d locks left", n)
	}
}

// TestBumpThenOriginalConfirms: the original transaction confirms after
// all (a miner never saw the replacement): it settles the payment.
func TestBumpThenOriginalConfirms(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, orig := f.stuck(t)
	rep, err := f.payer(t).Bump(ctx, id, 7)
	if err != nil || rep.TxID == orig.String() || len(rep.Txs) != 2 {
		t.Fatalf("bump: %+v %v", rep, err)
	}
	f.wallet.mineTx(orig)
	if _, err := f.payer(t).Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	if state, txid := f.state(t, id); state != "confirmed" || txid != orig.String() {
		t.Fatalf("settled %s by %s, want confirmed by the original %s", state, txid, orig)
	}
	f.check(t, false)
	f.wallet.frozen = false
	f.finish(t)
	f.check(t, true)
}

// TestAbandonOutputsUnpaidOnlyAfterConflictConfirms: an abandoned payment's
// outputs stay pending while the conflict is in the mempool and until it
// has ConflictConfirmations confirmations; then they are paid anew, once.
func TestAbandonOutputsUnpaidOnlyAfterConflictConfirms(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, orig := f.stuck(t)
	pending := f.pending(t)
	rep, err := f.payer(t).Abandon(ctx, id, 1) // raised above the payment's own rate
	if err != nil || rep.State != "abandoning" || len(rep.Txs) != 2 || rep.Txs[1].FeeRate <= 2 {
		t.Fatalf("abandon: %+v %v", rep, err)
	}
	conflict, _ := chainhash.NewHashFromStr(rep.Txs[1].TxID)
	if !f.wallet.live(*conflict) || f.wallet.live(orig) {
		t.Fatal("the abandon transaction did not replace the payment")
	}
	if _, err := f.payer(t).Bump(ctx, id, 50); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bump of an abandoning payment: %v", err)
	}
	f.wallet.frozen = false
	for confs := 0; confs < 6; confs++ {
		rep, err := f.payer(t).Run(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if state, _ := f.state(t, id); state != "abandoning" || f.pending(t) != pending || len(rep.Payments) != 1 {
			t.Fatalf("conflict with %d confirmations: %s, pending %d (want %d), %d payments", confs, state, f.pending(t), pending, len(rep.Payments))
		}
		f.checkLocks(t)
		f.wallet.mine()
	}
	rep2, err := f.payer(t).Run(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if state, _ := f.state(t, id); state != "abandoned" || len(rep2.Payments) != 2 || rep2.Payments[1].State != "broadcast" {
		t.Fatalf("after 6 confirmations: %s, %+v", state, rep2.Payments)
	}
	f.check(t, false)
	f.finish(t)
	f.check(t, true)
}

// TestAbandonThenPaymentConfirms: the payment's own transaction confirms
// before the abandon: it is simply confirmed, nothing is paid anew.
func TestAbandonThenPaymentConfirms(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, orig := f.stuck(t)
	if _, err := f.payer(t).Abandon(ctx, id, 5); err != nil {
		t.Fatal(err)
	}
	f.wallet.mineTx(orig)
	if _, err := f.payer(t).Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	if state, txid := f.state(t, id); state != "confirmed" || txid != orig.String() {
		t.Fatalf("%s by %s, want confirmed by %s", state, txid, orig)
	}
	if _, err := f.payer(t).Abandon(ctx, id, 5); !errors.Is(err, ErrInvalid) {
		t.Fatalf("abandon of a confirmed payment: %v", err)
	}
	f.wallet.frozen = false
	f.finish(t)
	f.check(t, true)
}

// TestInputsSpentElsewhere: an input of a stuck payment is spent on chain
// by a transaction that is none of its own (the wallet's own send after a
// restart lost the locks): the payment fails, its outputs counting as
// unpaid again, only once that spend has ConflictConfirmations
// confirmations; it is not rebroadcast meanwhile.
func TestInputsSpentElsewhere(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, orig := f.stuck(t)
	f.wallet.mu.Lock()
	in := f.wallet.txs[orig].tx.TxIn[0].PreviousOutPoint
	f.wallet.mu.Unlock()
	f.wallet.spendElsewhere(in)
	pending := f.pending(t)
	for n := range 5 { // the spend has n+1 confirmations
		sends := f.wallet.sends
		if _, err := f.payer(t).Run(ctx, false); err != nil {
			t.Fatal(err)
		}
		if state, _ := f.state(t, id); state != "broadcast" || f.pending(t) != pending || f.wallet.sends != sends {
			t.Fatalf("spend with %d confirmations: %s, pending %d, sends %d → %d", n+1, state, f.pending(t), sends, f.wallet.sends)
		}
		f.wallet.mine()
	}
	f.wallet.frozen = false
	if _, err := f.payer(t).Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	if state, _ := f.state(t, id); state != "failed" {
		t.Fatalf("after 6 confirmations of the foreign spend: %s", state)
	}
	f.check(t, false)
	f.finish(t)
	f.check(t, true)
}

// TestBumpAbandonInterrupted stops a bump and an abandon at each of their
// steps; reruns then settle everything with nothing paid twice.
func TestBumpAbandonInterrupted(t *testing.T) {
	for _, op := range []string{"bump", "abandon"} {
		steps := []string{StepLocksReconciled, StepBumpStored, StepBumpSent}
		if op == "abandon" {
			steps = []string{StepLocksReconciled, StepAbandonStored, StepAbandonSent}
		}
		for _, step := range steps {
			t.Run(op+"/"+step, func(t *testing.T) {
				f := newFixture(t)
				ctx := context.Background()
				id, _ := f.stuck(t)
				p := f.payer(t)
				p.o.StepHook = func(s string) error {
					if s == step {
						return errors.New("killed")
					}
					return nil
				}
				var err error
				if op == "bump" {
					_, err = p.Bump(ctx, id, 8)
				} else {
					_, err = p.Abandon(ctx, id, 8)
				}
				if !errors.Is(err, errInterrupted) {
					t.Fatalf("%s: %v", op, err)
				}
				f.wallet.frozen = false
				for range 8 {
					f.finish(t)
				}
				f.check(t, true)
				if n := len(f.wallet.lockedSet()); n != 0 {
					t.Fatalf("%d locks left", n)
				}
			})
		}
	}
}

// TestBumpTx: the replacement keeps inputs and recipients; its fee is the
// asked rate and at least the old fee plus 1 sat/vB, taken from the
// change; dust change goes to the fee; no or too little change is
// ErrInsufficientFunds.
func TestBumpTx(t *testing.T) {
	p2pkh, p2wpkh, _ := regtestAddrs(t)
	script := func(s string) []byte {
		a, err := btcutil.DecodeAddress(s, &chaincfg.RegressionNetParams)
		if err != nil {
			t.Fatal(err)
		}
		pk, _ := txscript.PayToAddrScript(a)
		return pk
	}
	mk := func(change int64) *wire.MsgTx {
		tx := wire.NewMsgTx(wire.TxVersion)
		in := wire.NewTxIn(&wire.OutPoint{Index: 1}, []byte{1, 2}, nil)
		in.Sequence = rbfSequence
		tx.AddTxIn(in)
		tx.AddTxOut(wire.NewTxOut(50_000, script(p2wpkh)))
		if change > 0 {
			tx.AddTxOut(wire.NewTxOut(change, script(p2pkh)))
		}
		return tx
	}
	size := estimateSize(1, [][]byte{script(p2wpkh), script(p2pkh)})
	cur := mk(40_000) // in 100_000, fee 10_000
	r, err := bumpTx(cur, 1, 100_000, 10_000, 200)
	if err != nil {
		t.Fatal(err)
	}
	want := max(200*size, 10_000+size)
	if r.fee != want || len(r.tx.TxOut) != 2 || r.tx.TxOut[0].Value != 50_000 || r.tx.TxOut[1].Value != 40_000-(want-10_000) ||
		r.tx.TxIn[0].PreviousOutPoint != cur.TxIn[0].PreviousOutPoint || r.tx.TxIn[0].SignatureScript != nil || r.tx.TxIn[0].Sequence != rbfSequence {
		t.Fatalf("bump: fee %d (want %d) %s", r.fee, want, fmt.Sprint(r.tx.TxOut))
	}
	// A little more than the fee: the rest is dust, all of it to the fee.
	r, err = bumpTx(mk(200*size-10_000+100), 1, 50_000+200*size-10_000+100+10_000, 10_000, 200)
	if err != nil || len(r.tx.TxOut) != 1 || r.fee != 200*size+100 {
		t.Fatalf("dust change: %v %v fee %d", r.tx.TxOut, err, r.fee)
	}
	if _, err := bumpTx(mk(1000), 1, 61_000, 10_000, 500); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("small change: %v", err)
	}
	if _, err := bumpTx(mk(0), 1, 60_000, 10_000, 500); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("no change: %v", err)
	}
}

// TestStepSequence pins the step boundaries a run, a bump and an abandon
// report (what PAYOUT_TEST_KILL_STEP counts).
func TestStepSequence(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var got []string
	p := f.payer(t)
	p.o.StepHook = func(s string) error { got = append(got, s); return nil }
	expect := func(what string, want ...string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: steps %q\nwant %q", what, got, want)
		}
		got = nil
	}
	f.wallet.frozen = true
	if _, err := p.Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	expect("first run", StepClassified, StepCredited, StepCredited, StepCredited, StepLocksReconciled, StepPlanned,
		StepInputsRecorded, StepBuilt, StepSignedOnly, StepStored, StepSent, StepBroadcast, StepPaymentDone)
	if _, err := p.Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	expect("stuck", StepClassified, StepLocksReconciled, StepPaymentDone)
	if _, err := p.Bump(ctx, 1, 9); err != nil {
		t.Fatal(err)
	}
	expect("bump", StepLocksReconciled, StepBumpStored, StepBumpSent)
	if _, err := p.Abandon(ctx, 1, 1); err != nil {
		t.Fatal(err)
	}
	expect("abandon", StepLocksReconciled, StepAbandonStored, StepAbandonSent)
	f.wallet.frozen = false
	for range 6 {
		f.wallet.mine()
	}
	if _, err := p.Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	expect("abandoned and paid anew", StepClassified, StepLocksReconciled, StepAbandoned, StepUnlocked, StepPaymentDone,
		StepPlanned, StepInputsRecorded, StepBuilt, StepSignedOnly, StepStored, StepSent, StepBroadcast, StepPaymentDone)
	f.wallet.mine()
	if _, err := p.Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	expect("confirmed", StepClassified, StepLocksReconciled, StepConfirmed, StepUnlocked, StepPaymentDone)
}
