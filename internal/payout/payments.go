package payout

import (
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/stratumd/stratumd/internal/store"
)

// Payments: planned from the balances, then moved on by advance, one
// recorded state at a time (see the package documentation).

// payment is one payment as a run moves it on.
type payment struct {
	ID      int64
	State   string
	Total   int64
	Fee     int64  // of the current paying transaction; 0 until signed
	TxID    string // the current paying transaction; "" until signed
	Raw     []byte // its signed bytes
	Outputs []PayTo
	Err     string
	// Txs are all its transactions, oldest first (payment, bumps,
	// abandons).
	Txs []store.PaymentTx
	// ConflictSeen: the best height at which an input was first seen
	// spent on chain by none of Txs; 0: not seen.
	ConflictSeen int64
}

func paymentFrom(sp store.OpenPayment) payment {
	pay := payment{ID: sp.ID, State: sp.State, Total: sp.Total, Fee: sp.Fee, TxID: sp.TxID, Raw: sp.RawTx, Err: sp.LastError,
		Txs: sp.Txs, ConflictSeen: sp.ConflictSeenHeight}
	pay.Outputs = make([]PayTo, len(sp.Outputs))
	for i, o := range sp.Outputs {
		pay.Outputs[i] = PayTo{Username: o.Username, Address: o.Address, Amount: o.Amount}
	}
	return pay
}

func (pay *payment) report() PaymentReport {
	r := PaymentReport{ID: pay.ID, State: pay.State, TxID: pay.TxID, Total: pay.Total, Fee: pay.Fee,
		Outputs: pay.Outputs, Error: pay.Err}
	if len(pay.Txs) > 1 {
		for _, t := range pay.Txs {
			r.Txs = append(r.Txs, PaymentTxReport{TxID: t.TxID, Kind: t.Kind, Fee: t.Fee, FeeRate: t.FeeRate})
		}
	}
	return r
}

func (p *Payer) openPayments(ctx context.Context, lg LedgerRun) ([]payment, error) {
	sps, err := lg.OpenPayments(ctx)
	if err != nil {
		return nil, fromStore("open payments", err)
	}
	pays := make([]payment, len(sps))
	for i, sp := range sps {
		pays[i] = paymentFrom(sp)
	}
	return pays, nil
}

// plan records, in one transaction, a planned payment (with its outputs)
// for every balance at or above the minimum that has a valid address, at
// most MaxOutputs per payment.
func (p *Payer) plan(ctx context.Context, lg LedgerRun, rep *Report) ([]payment, error) {
	dues, err := lg.DueBalances(ctx, p.o.MinPayout)
	if err != nil {
		return nil, fromStore("plan: balances", err)
	}
	var outs []store.PaymentOutput
	for _, d := range dues {
		addr, ok := p.payoutAddress(d.Username, d.PayoutAddress)
		if !ok {
			rep.Skipped = append(rep.Skipped, Skipped{Username: d.Username, Balance: d.Balance, Reason: p.noAddressReason()})
			continue
		}
		outs = append(outs, store.PaymentOutput{Username: d.Username, Address: addr, Amount: d.Balance})
	}
	var batches [][]store.PaymentOutput
	for len(outs) > 0 {
		n := min(len(outs), p.o.MaxOutputs)
		batches = append(batches, outs[:n:n])
		outs = outs[n:]
	}
	if len(batches) == 0 {
		return nil, nil
	}
	sps, err := lg.PlanPayments(ctx, p.o.FeeRate, batches)
	if err != nil {
		return nil, fromStore("plan", err)
	}
	planned := make([]payment, len(sps))
	for i, sp := range sps {
		planned[i] = paymentFrom(sp)
		p.o.Logger.Info("payment planned", "id", sp.ID, "outputs", len(sp.Outputs), "total", sp.Total)
	}
	if err := p.step(StepPlanned); err != nil {
		return nil, err
	}
	return planned, nil
}

// payoutAddress is where a user is paid: the account's payout address, or
// in open authorization the user name itself; ok is false when that is not
// a valid address for the network.
func (p *Payer) payoutAddress(user, stored string) (string, bool) {
	addr := stored
	if addr == "" {
		addr = user // open auth: the user name is the address
	}
	_, err := p.decode(addr)
	return addr, err == nil
}

func (p *Payer) noAddressReason() string { return "no valid payout address for " + p.o.Params.Name }

func (p *Payer) decode(addr string) (btcutil.Address, error) {
	a, err := btcutil.DecodeAddress(addr, p.o.Params)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w: %w", addr, ErrInvalid, err)
	}
	if !a.IsForNet(p.o.Params) {
		return nil, fmt.Errorf("address %q is not for %s: %w", addr, p.o.Params.Name, ErrInvalid)
	}
	return a, nil
}

// advance moves one payment as far as it goes: planned → signed →
// broadcast → confirmed (or abandoning → abandoned, or failed). Every state
// change is committed before the next wallet call, so a rerun continues
// from the recorded state: a planned payment has no stored transaction
// (nothing was sent) and is built afresh; a signed one is broadcast with
// the same bytes; a broadcast or abandoning one is settled by whichever of
// its transactions confirmed, or its newest transaction is rebroadcast
// with the same bytes if the wallet lost it (see settle).
func (p *Payer) advance(ctx context.Context, lg LedgerRun, pay *payment) error {
	fail := func(err error) error {
		pay.Err = err.Error()
		if e := lg.RecordPaymentError(context.WithoutCancel(ctx), pay.ID, pay.Err); e != nil {
			return errors.Join(err, fromStore("payment: record error", e))
		}
		return err
	}
	if pay.State == store.PaymentPlanned {
		if err := p.sign(ctx, lg, pay); err != nil {
			if errors.Is(err, ErrWallet) || errors.Is(err, ErrInsufficientFunds) || errors.Is(err, ErrInvalid) {
				return fail(fmt.Errorf("payment %d: %w", pay.ID, err))
			}
			return err
		}
	}
	if pay.State == store.PaymentSigned {
		tx, err := parseTx(pay.Raw)
		if err != nil {
			return fmt.Errorf("payment %d: %w", pay.ID, err)
		}
		if err := p.wallet.Send(ctx, tx); err != nil {
			return fail(fmt.Errorf("payment %d: broadcast: %w", pay.ID, err))
		}
		if err := p.step(StepSent); err != nil {
			return err
		}
		if err := p.setState(ctx, lg, pay, store.PaymentSigned, store.PaymentBroadcast); err != nil {
			return err
		}
		if err := p.step(StepBroadcast); err != nil {
			return err
		}
	}
	if pay.State == store.PaymentBroadcast || pay.State == store.PaymentAbandoning {
		if err := p.settle(ctx, lg, pay, fail); err != nil {
			return err
		}
	}
	return p.step(StepPaymentDone)
}

func (p *Payer) setState(ctx context.Context, lg LedgerRun, pay *payment, from, to string) error {
	if err := lg.MovePayment(ctx, pay.ID, from, to, ""); err != nil {
		return fromStore(fmt.Sprintf("payment %d: %s", pay.ID, to), err)
	}
	pay.State, pay.Err = to, ""
	p.o.Logger.Info("payment "+to, "id", pay.ID, "txid", pay.TxID)
	return nil
}
