package payout

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/store"
)

// Replace-by-fee: every payment transaction signals BIP 125, so a payment
// stuck at a low fee can be replaced. A payment may therefore have several
// transactions (payment_txs): its first, bumps (same inputs, same
// recipients, higher fee, less change) and abandons (the same inputs back
// to the wallet). They all spend the same inputs, so at most one of them
// confirms, and whichever does settles the payment. Each is stored before
// it is broadcast.

// txState is one transaction of a payment and what the wallet knows of it.
type txState struct {
	tx store.PaymentTx
	st TxStatus
}

func (p *Payer) statuses(ctx context.Context, pay *payment) ([]txState, error) {
	out := make([]txState, len(pay.Txs))
	for i, t := range pay.Txs {
		h, err := chainhash.NewHashFromStr(t.TxID)
		if err != nil {
			return nil, fmt.Errorf("stored txid %q: %w", t.TxID, ErrInvalid)
		}
		st, err := p.wallet.Status(ctx, *h)
		if err != nil {
			return nil, err
		}
		out[i] = txState{tx: t, st: st}
	}
	return out, nil
}

// settle looks at every transaction of a broadcast or abandoning payment:
//
//   - a paying one (payment, bump) with PaymentConfirmations: confirmed;
//   - its abandon with ConflictConfirmations: abandoned (its outputs count
//     as unpaid again); with fewer, wait;
//   - none confirmed but an input spent on chain: by none of its
//     transactions (see spentElsewhere);
//   - otherwise the newest is kept in the wallet and the mempool: if the
//     wallet lost it, it is sent again, the same bytes.
func (p *Payer) settle(ctx context.Context, lg LedgerRun, pay *payment, fail func(error) error) error {
	if len(pay.Txs) == 0 {
		return fmt.Errorf("payment %d is %s with no stored transaction: %w", pay.ID, pay.State, ErrConflict)
	}
	sts, err := p.statuses(ctx, pay)
	if err != nil {
		return fail(fmt.Errorf("payment %d: status: %w", pay.ID, err))
	}
	waiting := false
	for _, s := range sts {
		switch {
		case s.st.Confirmations < 1:
		case s.tx.Kind == store.TxAbandon && s.st.Confirmations < int64(p.o.ConflictConfirmations):
			waiting = true // a conflict that may still be reorganized away
		case s.tx.Kind == store.TxAbandon:
			return p.finish(ctx, lg, pay, store.PaymentAbandoned, s.tx.TxID, s.st.BlockHash,
				fmt.Sprintf("abandoned: %s confirmed", s.tx.TxID))
		case s.st.Confirmations >= PaymentConfirmations:
			return p.finish(ctx, lg, pay, store.PaymentConfirmed, s.tx.TxID, s.st.BlockHash, "")
		}
	}
	if waiting {
		return nil
	}
	spent, err := p.inputSpent(ctx, lg, pay)
	if err != nil {
		return fail(fmt.Errorf("payment %d: inputs: %w", pay.ID, err))
	}
	if spent {
		return p.spentElsewhere(ctx, lg, pay)
	}
	if pay.ConflictSeen != 0 { // a reorganization took that spend away
		if err := lg.NoteConflict(ctx, pay.ID, 0); err != nil {
			return fromStore(fmt.Sprintf("payment %d", pay.ID), err)
		}
		pay.ConflictSeen = 0
	}
	newest := sts[len(sts)-1]
	if newest.st.Known {
		return nil
	}
	// Lost from the wallet and the mempool (evicted, or a node restart):
	// the same bytes again, never a new transaction.
	tx, err := parseTx(newest.tx.RawTx)
	if err != nil {
		return fmt.Errorf("payment %d: %w", pay.ID, err)
	}
	if err := p.wallet.Send(ctx, tx); err != nil {
		return fail(fmt.Errorf("payment %d: rebroadcast %s: %w", pay.ID, newest.tx.TxID, err))
	}
	p.o.Logger.Info("payment rebroadcast", "id", pay.ID, "txid", newest.tx.TxID, "kind", newest.tx.Kind)
	return nil
}

// inputSpent reports whether an input of pay is spent in the node's best
// chain.
func (p *Payer) inputSpent(ctx context.Context, lg LedgerRun, pay *payment) (bool, error) {
	ins, err := lg.PaymentInputs(ctx, pay.ID)
	if err != nil {
		return false, fromStore("inputs", err)
	}
	ops, err := outPoints(ins)
	if err != nil {
		return false, err
	}
	for op := range ops {
		out, err := p.node.UnspentOutput(ctx, op)
		if err != nil {
			return false, err
		}
		if out == nil {
			return true, nil
		}
	}
	return false, nil
}

// spentElsewhere handles a payment an input of which is spent on chain
// while the wallet knows none of its transactions as confirmed: spent by
// another transaction (the wallet's own send after a restart lost the
// locks, an operator's), or by one of ours the wallet has not seen yet.
// The payment fails (its outputs count as unpaid again) only when that is
// proven: the spend has ConflictConfirmations confirmations (counted from
// the height the run first saw it, recorded), the wallet has processed
// the node's best block and still knows none of the payment's transactions
// as confirmed, and no output of any of them is unspent on chain.
func (p *Payer) spentElsewhere(ctx context.Context, lg LedgerRun, pay *payment) error {
	best, err := p.node.BestHeight(ctx)
	if err != nil {
		return fmt.Errorf("payment %d: %w", pay.ID, err)
	}
	if pay.ConflictSeen == 0 {
		if err := lg.NoteConflict(ctx, pay.ID, best); err != nil {
			return fromStore(fmt.Sprintf("payment %d", pay.ID), err)
		}
		pay.ConflictSeen = best
		p.o.Logger.Warn("an input of the payment is spent by none of its transactions; it fails once that spend is deep enough",
			"id", pay.ID, "height", best, "confirmations_needed", p.o.ConflictConfirmations)
		return p.step(StepConflictSeen)
	}
	if best-pay.ConflictSeen+1 < int64(p.o.ConflictConfirmations) {
		return nil
	}
	synced, err := p.wallet.SyncedHeight(ctx)
	if err != nil || synced < best {
		return err // the wallet is behind: ask again next run
	}
	sts, err := p.statuses(ctx, pay)
	if err != nil {
		return fmt.Errorf("payment %d: status: %w", pay.ID, err)
	}
	for _, s := range sts {
		if s.st.Confirmations > 0 {
			return nil // ours after all: the next run settles it
		}
		tx, err := parseTx(s.tx.RawTx)
		if err != nil {
			return fmt.Errorf("payment %d: %w", pay.ID, err)
		}
		h := tx.TxHash()
		for i := range tx.TxOut {
			out, err := p.node.UnspentOutput(ctx, wire.OutPoint{Hash: h, Index: uint32(i)})
			if err != nil {
				return fmt.Errorf("payment %d: %w", pay.ID, err)
			}
			if out != nil {
				return nil // ours is on chain; the wallet will tell
			}
		}
	}
	return p.finish(ctx, lg, pay, store.PaymentFailed, "", "",
		fmt.Sprintf("inputs spent on chain by a transaction that is none of this payment's (seen at height %d)", pay.ConflictSeen))
}

// finish settles pay (confirmed, abandoned or failed) and releases its
// inputs' wallet locks.
func (p *Payer) finish(ctx context.Context, lg LedgerRun, pay *payment, to, txid, blockHash, note string) error {
	if err := lg.SettlePayment(ctx, pay.ID, pay.State, to, txid, blockHash, note); err != nil {
		return fromStore(fmt.Sprintf("payment %d: %s", pay.ID, to), err)
	}
	pay.State, pay.Err = to, note
	if to == store.PaymentConfirmed {
		for _, t := range pay.Txs {
			if t.TxID == txid {
				pay.TxID, pay.Raw, pay.Fee = t.TxID, t.RawTx, t.Fee
			}
		}
	}
	step := map[string]string{store.PaymentConfirmed: StepConfirmed, store.PaymentAbandoned: StepAbandoned,
		store.PaymentFailed: StepFailed}[to]
	if to == store.PaymentConfirmed {
		p.o.Logger.Info("payment confirmed", "id", pay.ID, "txid", txid, "block", blockHash)
	} else {
		p.o.Logger.Warn("payment "+to+": its outputs count as unpaid again", "id", pay.ID, "txid", txid, "reason", note)
	}
	if err := p.step(step); err != nil {
		return err
	}
	return p.releaseInputs(ctx, lg, pay.ID)
}

// Bump replaces the transaction of payment id (signed or broadcast) by one
// spending the same inputs and paying the same recipients the same
// amounts at feeRate sat/vB, which must exceed the current transaction's
// rate; the extra fee comes out of the change (ErrInsufficientFunds when
// there is none or it is too small). The replacement is signed and stored
// before it is broadcast; from then on whichever of the payment's
// transactions confirms settles it. It runs under the payout lock
// (ErrLocked) and reconciles the wallet's locks first, like a run.
func (p *Payer) Bump(ctx context.Context, id int64, feeRate int64) (*PaymentReport, error) {
	if feeRate < 1 || feeRate > 10000 {
		return nil, fmt.Errorf("bump: fee rate %d sat/vB (1-10000): %w", feeRate, ErrInvalid)
	}
	return p.replace(ctx, id, func(pay *payment, prev []Unspent) (replacement, store.PaymentTx, string, error) {
		if pay.State != store.PaymentSigned && pay.State != store.PaymentBroadcast {
			return replacement{}, store.PaymentTx{}, "", fmt.Errorf("payment %d is %s: only a signed or broadcast payment can be bumped: %w",
				pay.ID, pay.State, ErrInvalid)
		}
		cur, err := parseTx(pay.Raw)
		if err != nil {
			return replacement{}, store.PaymentTx{}, "", err
		}
		if rate := feeRateOf(cur, pay.Fee); float64(feeRate) <= rate {
			return replacement{}, store.PaymentTx{}, "", fmt.Errorf("bump payment %d: %d sat/vB does not exceed its current %.2f sat/vB: %w",
				pay.ID, feeRate, rate, ErrInvalid)
		}
		var in int64
		for _, u := range prev {
			in += u.Amount
		}
		r, err := bumpTx(cur, len(pay.Outputs), in, pay.Fee, feeRate)
		return r, store.PaymentTx{Kind: store.TxBump, FeeRate: feeRate}, pay.State, err
	})
}

// Abandon gives payment id (signed, broadcast, or abandoning already) up
// safely: it stores and broadcasts a transaction that spends the
// payment's inputs back to the wallet at feeRate sat/vB, or just above
// the rate of the payment's newest transaction when that is higher, so
// that it replaces it in the mempool. The payment is abandoning: its
// outputs still count as pending. A later run makes it abandoned (its
// outputs unpaid again, paid anew by a later payment) once the abandon
// transaction has ConflictConfirmations confirmations, or confirmed if one
// of its paying transactions confirms first.
func (p *Payer) Abandon(ctx context.Context, id int64, feeRate int64) (*PaymentReport, error) {
	if feeRate < 1 || feeRate > 10000 {
		return nil, fmt.Errorf("abandon: fee rate %d sat/vB (1-10000): %w", feeRate, ErrInvalid)
	}
	return p.replace(ctx, id, func(pay *payment, prev []Unspent) (replacement, store.PaymentTx, string, error) {
		switch pay.State {
		case store.PaymentSigned, store.PaymentBroadcast, store.PaymentAbandoning:
		case store.PaymentPlanned:
			return replacement{}, store.PaymentTx{}, "", fmt.Errorf("payment %d is planned: nothing was signed or sent, the next run carries it out: %w",
				pay.ID, ErrInvalid)
		default:
			return replacement{}, store.PaymentTx{}, "", fmt.Errorf("payment %d is %s: nothing to abandon: %w", pay.ID, pay.State, ErrInvalid)
		}
		// Whatever of ours the mempool holds, the abandon must outbid it.
		var curFee int64
		var curRate float64
		for _, t := range pay.Txs {
			tx, err := parseTx(t.RawTx)
			if err != nil {
				return replacement{}, store.PaymentTx{}, "", err
			}
			curFee, curRate = max(curFee, t.Fee), max(curRate, feeRateOf(tx, t.Fee))
		}
		rate := max(feeRate, int64(math.Floor(curRate))+1)
		to, err := p.wallet.ChangeAddress(ctx)
		if err != nil {
			return replacement{}, store.PaymentTx{}, "", err
		}
		r, err := abandonTx(prev, to, curFee, rate)
		return r, store.PaymentTx{Kind: store.TxAbandon, FeeRate: rate}, store.PaymentAbandoning, err
	})
}

// replace is Bump's and Abandon's common part: lock, load, check that no
// transaction of the payment is in a block yet, look up the inputs on
// chain (their scripts, for the wallet to sign), build (with build, which
// returns the transaction, its ledger record and the payment's next
// state), sign, store, broadcast.
func (p *Payer) replace(ctx context.Context, id int64,
	build func(pay *payment, prev []Unspent) (replacement, store.PaymentTx, string, error)) (*PaymentReport, error) {
	lg, err := p.ledger.BeginRun(ctx, false)
	if err != nil {
		return nil, fromStore("payout: begin", err)
	}
	defer lg.End(ctx)
	if err := p.reconcileLocks(ctx, lg); err != nil {
		return nil, err
	}
	sp, err := lg.Payment(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("payment %d: no such payment: %w", id, ErrInvalid)
	}
	if err != nil {
		return nil, fromStore(fmt.Sprintf("payment %d", id), err)
	}
	pay := paymentFrom(sp)
	sts, err := p.statuses(ctx, &pay)
	if err != nil {
		return nil, fmt.Errorf("payment %d: status: %w", id, err)
	}
	for _, s := range sts {
		if s.st.Confirmations > 0 {
			return nil, fmt.Errorf("payment %d: its %s transaction %s is in a block; the next run settles it: %w",
				id, s.tx.Kind, s.tx.TxID, ErrInvalid)
		}
	}
	ins, err := lg.PaymentInputs(ctx, id)
	if err != nil {
		return nil, fromStore(fmt.Sprintf("payment %d: inputs", id), err)
	}
	prev := make([]Unspent, len(ins))
	for i, in := range ins {
		h, err := chainhash.NewHashFromStr(in.TxID)
		if err != nil {
			return nil, fmt.Errorf("payment %d: input %s: %w", id, in.TxID, ErrInvalid)
		}
		op := wire.OutPoint{Hash: *h, Index: in.Vout}
		out, err := p.node.UnspentOutput(ctx, op)
		if err != nil {
			return nil, fmt.Errorf("payment %d: input %s: %w", id, op, err)
		}
		if out == nil {
			return nil, fmt.Errorf("payment %d: input %s is spent on chain; the next run settles the payment: %w", id, op, ErrConflict)
		}
		if out.Value != in.Amount {
			return nil, fmt.Errorf("payment %d: input %s holds %d sat, the ledger says %d: %w", id, op, out.Value, in.Amount, ErrConflict)
		}
		prev[i] = Unspent{OutPoint: op, Amount: in.Amount, PkScript: out.PkScript, Confirmations: 1, Spendable: true}
	}
	r, ptx, to, err := build(&pay, prev)
	if err != nil {
		return nil, err
	}
	signed, err := p.wallet.Sign(ctx, r.tx, prev)
	if err == nil {
		err = sameSpend(r.tx, signed)
	}
	if err != nil {
		return nil, fmt.Errorf("payment %d: sign %s: %w", id, ptx.Kind, err)
	}
	raw, err := txBytes(signed)
	if err != nil {
		return nil, err
	}
	ptx.TxID, ptx.RawTx, ptx.Fee = signed.TxHash().String(), raw, r.fee
	if err := lg.AddPaymentTx(ctx, id, pay.State, to, ptx); err != nil {
		return nil, fromStore(fmt.Sprintf("payment %d: store %s", id, ptx.Kind), err)
	}
	from := pay.State
	pay.State, pay.Err = to, ""
	pay.Txs = append(pay.Txs, ptx)
	if ptx.Kind != store.TxAbandon {
		pay.TxID, pay.Raw, pay.Fee = ptx.TxID, raw, ptx.Fee
	}
	p.o.Logger.Info("payment "+ptx.Kind+" stored", "id", id, "txid", ptx.TxID, "fee", ptx.Fee, "fee_rate", ptx.FeeRate, "from", from)
	stored, sent := StepBumpStored, StepBumpSent
	if ptx.Kind == store.TxAbandon {
		stored, sent = StepAbandonStored, StepAbandonSent
	}
	if err := p.step(stored); err != nil {
		return nil, err
	}
	if err := p.wallet.Send(ctx, signed); err != nil {
		err = fmt.Errorf("payment %d: broadcast %s %s: %w", id, ptx.Kind, ptx.TxID, err)
		pay.Err = err.Error()
		rep := pay.report()
		return &rep, errors.Join(err, fromStore("payment: record error", lg.RecordPaymentError(context.WithoutCancel(ctx), id, pay.Err)))
	}
	p.o.Logger.Info("payment "+ptx.Kind+" broadcast", "id", id, "txid", ptx.TxID)
	if err := p.step(sent); err != nil {
		return nil, err
	}
	if pay.State == store.PaymentSigned {
		if err := p.setState(ctx, lg, &pay, store.PaymentSigned, store.PaymentBroadcast); err != nil {
			return nil, err
		}
		if err := p.step(StepBroadcast); err != nil {
			return nil, err
		}
	}
	rep := pay.report()
	return &rep, nil
}
