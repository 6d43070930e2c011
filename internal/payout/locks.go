package payout

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/store"
)

// Wallet locks follow the ledger. btcwallet keeps its locks in memory (a
// restart loses them) and never drops the lock of a spent output, so the
// locks are never trusted to carry state from one run to the next: at the
// start of every run the wallet's locks are made equal to the inputs of
// the open payments (signed or broadcast), recorded in payment_inputs:
// missing ones are locked again, every other one is released. Within a run
// a payment's chosen inputs are recorded (payment_inputs, the payment still
// planned) before they are locked, locked before they are signed, and
// released when signing fails and when the payment is confirmed.

// reconcileLocks makes the wallet's locks equal to the inputs of the open
// payments. Locks of outputs no payment ever recorded are released too
// unless Options.KeepForeignLocks is set (payout assumes by default that it
// is the wallet's only locker).
func (p *Payer) reconcileLocks(ctx context.Context, lg LedgerRun) error {
	open, err := lg.OpenInputs(ctx)
	if err != nil {
		return fromStore("reconcile locks", err)
	}
	want, err := outPoints(open)
	if err != nil {
		return err
	}
	held, err := p.wallet.ListLockUnspent(ctx)
	if err != nil {
		return fmt.Errorf("reconcile locks: %w", err)
	}
	isHeld := make(map[wire.OutPoint]bool, len(held))
	for _, op := range held {
		isHeld[op] = true
	}
	var lock []wire.OutPoint
	for op := range want {
		if !isHeld[op] {
			lock = append(lock, op)
		}
	}
	var ours map[wire.OutPoint]bool
	if p.o.KeepForeignLocks {
		rec, err := lg.RecordedInputs(ctx)
		if err != nil {
			return fromStore("reconcile locks", err)
		}
		if ours, err = outPoints(rec); err != nil {
			return err
		}
	}
	var unlock []wire.OutPoint
	for _, op := range held {
		if !want[op] && (ours == nil || ours[op]) {
			unlock = append(unlock, op)
		}
	}
	sortOutPoints(lock)
	sortOutPoints(unlock)
	if err := p.wallet.UnlockUnspent(ctx, unlock); err != nil {
		return fmt.Errorf("reconcile locks: %w", err)
	}
	if err := p.wallet.LockUnspent(ctx, lock); err != nil {
		return fmt.Errorf("reconcile locks: %w", err)
	}
	if len(lock)+len(unlock) > 0 {
		p.o.Logger.Info("wallet locks reconciled with the ledger", "locked", len(lock), "released", len(unlock), "held", len(want))
	}
	return p.step(StepLocksReconciled)
}

// outPoints converts the ledger's inputs to a set of wallet outpoints.
func outPoints(ins []store.PaymentInput) (map[wire.OutPoint]bool, error) {
	out := make(map[wire.OutPoint]bool, len(ins))
	for _, in := range ins {
		h, err := chainhash.NewHashFromStr(in.TxID)
		if err != nil {
			return nil, fmt.Errorf("payment input %s: %w: %w", in.TxID, ErrInvalid, err)
		}
		out[wire.OutPoint{Hash: *h, Index: in.Vout}] = true
	}
	return out, nil
}

// releaseInputs releases a settled payment's inputs in the wallet.
func (p *Payer) releaseInputs(ctx context.Context, lg LedgerRun, id int64) error {
	ins, err := lg.PaymentInputs(ctx, id)
	if err != nil {
		return fromStore(fmt.Sprintf("payment %d: inputs", id), err)
	}
	set, err := outPoints(ins)
	if err != nil {
		return err
	}
	ops := slices.Collect(maps.Keys(set))
	sortOutPoints(ops)
	p.release(ctx, id, ops)
	return p.step(StepUnlocked)
}

// release unlocks a payment's inputs after it settled or failed to sign.
// A failure is logged, not returned: the next run's reconciliation
// releases what is left.
func (p *Payer) release(ctx context.Context, id int64, ops []wire.OutPoint) {
	if len(ops) == 0 {
		return
	}
	if err := p.wallet.UnlockUnspent(ctx, ops); err != nil {
		p.o.Logger.Warn("payment inputs not unlocked; the next run releases them", "id", id, "err", err)
	}
}

func sortOutPoints(ops []wire.OutPoint) {
	slices.SortFunc(ops, func(a, b wire.OutPoint) int {
		if c := slices.Compare(a.Hash[:], b.Hash[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Index, b.Index)
	})
}
