package payout

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/store"
)

// sign builds the transaction of a planned payment from the wallet's
// unspent outputs (never an input of an open payment), records the chosen
// inputs, locks them, has the wallet sign the transaction and stores the
// signed bytes, txid and fee with the move to signed.
func (p *Payer) sign(ctx context.Context, lg LedgerRun, pay *payment) error {
	addrs := make([]btcutil.Address, len(pay.Outputs))
	for i, o := range pay.Outputs {
		a, err := p.decode(o.Address)
		if err != nil {
			return err
		}
		addrs[i] = a
	}
	// Never an input of an open payment (the wallet hides them too, as
	// they are locked, unless it lost its locks).
	open, err := lg.OpenInputs(ctx)
	if err != nil {
		return fromStore("payment inputs in use", err)
	}
	taken, err := outPoints(open)
	if err != nil {
		return err
	}
	utxos, err := p.wallet.ListUnspent(ctx)
	if err != nil {
		return err
	}
	free := utxos[:0:0]
	for _, u := range utxos {
		if !taken[u.OutPoint] {
			free = append(free, u)
		}
	}
	change, err := p.wallet.ChangeAddress(ctx)
	if err != nil {
		return err
	}
	b, err := buildTx(pay.Outputs, addrs, free, change, p.o.FeeRate)
	if err != nil {
		return err
	}
	ops := make([]wire.OutPoint, len(b.inputs))
	ins := make([]store.PaymentInput, len(b.inputs))
	for i, u := range b.inputs {
		ops[i] = u.OutPoint
		ins[i] = store.PaymentInput{OutPoint: store.OutPoint{TxID: u.OutPoint.Hash.String(), Vout: u.OutPoint.Index}, Amount: u.Amount}
	}
	// The durable record first: the inputs this planned payment is about
	// to lock (replacing what an earlier, interrupted attempt chose).
	if err := lg.ReserveInputs(ctx, pay.ID, ins); err != nil {
		return fromStore(fmt.Sprintf("payment %d: record inputs", pay.ID), err)
	}
	if err := p.step(StepInputsRecorded); err != nil {
		return err
	}
	if err := p.wallet.LockUnspent(ctx, ops); err != nil {
		return err
	}
	if err := p.step(StepBuilt); err != nil {
		return err
	}
	signed, err := p.wallet.Sign(ctx, b.tx, b.inputs)
	if err == nil {
		err = sameSpend(b.tx, signed)
	}
	if err != nil {
		p.release(ctx, pay.ID, ops)
		return err
	}
	if err := p.step(StepSignedOnly); err != nil {
		return err
	}
	raw, err := txBytes(signed)
	if err != nil {
		return err
	}
	id := signed.TxHash().String()
	if size := int64(signed.SerializeSize()); size*p.o.FeeRate > b.fee {
		p.o.Logger.Warn("payment fee below rate", "id", pay.ID, "size", size, "fee", b.fee)
	}
	ptx := store.PaymentTx{TxID: id, RawTx: raw, Fee: b.fee, FeeRate: p.o.FeeRate, Kind: store.TxPayment}
	if err := lg.StoreSigned(ctx, pay.ID, ptx); err != nil {
		return fromStore(fmt.Sprintf("payment %d: store signed", pay.ID), err)
	}
	pay.State, pay.Raw, pay.TxID, pay.Fee, pay.Err = store.PaymentSigned, raw, id, b.fee, ""
	pay.Txs = append(pay.Txs, ptx)
	p.o.Logger.Info("payment signed", "id", pay.ID, "txid", id, "fee", b.fee, "inputs", len(b.inputs))
	return p.step(StepStored)
}

// sameSpend checks that the wallet signed what it was given: the same
// inputs and outputs.
func sameSpend(unsigned, signed *wire.MsgTx) error {
	if len(unsigned.TxIn) != len(signed.TxIn) || len(unsigned.TxOut) != len(signed.TxOut) {
		return fmt.Errorf("signed transaction differs in shape: %w", ErrWallet)
	}
	for i := range unsigned.TxIn {
		if unsigned.TxIn[i].PreviousOutPoint != signed.TxIn[i].PreviousOutPoint ||
			unsigned.TxIn[i].Sequence != signed.TxIn[i].Sequence {
			return fmt.Errorf("signed transaction input %d differs: %w", i, ErrWallet)
		}
		if len(signed.TxIn[i].Witness) != 0 {
			return fmt.Errorf("signed transaction input %d has a witness: %w", i, ErrWallet)
		}
	}
	for i := range unsigned.TxOut {
		if unsigned.TxOut[i].Value != signed.TxOut[i].Value ||
			hex.EncodeToString(unsigned.TxOut[i].PkScript) != hex.EncodeToString(signed.TxOut[i].PkScript) {
			return fmt.Errorf("signed transaction output %d differs: %w", i, ErrWallet)
		}
	}
	return nil
}
