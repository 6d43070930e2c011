package payout

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/mempool"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Size estimate of a transaction spending only P2PKH inputs (no witness, so
// its virtual size is its size):
//
//	4 version + 4 lock time + varint(#in) + varint(#out)
//	+ 149 per input: 36 outpoint + 1 script length + 108 scriptSig
//	  (a 73-byte DER signature with sighash byte and a 33-byte key, each
//	  pushed) + 4 sequence
//	+ per output: 8 value + varint(script length) + script
const (
	txOverhead = 4 + 4
	p2pkhInput = 36 + 1 + 108 + 4
)

// minRelayFee is the relay fee floor (1 sat/vB) dust is judged against.
const minRelayFee = btcutil.Amount(1000)

// rbfSequence is the input sequence of every payment transaction: below
// 0xfffffffe, so each signals replace-by-fee (BIP 125) and a stuck payment
// can be bumped or abandoned; with lock time 0 it has no other effect.
const rbfSequence = wire.MaxTxInSequenceNum - 2

// incrementalRelayFee is what a replacement must pay on its own size on
// top of the fees of what it replaces (BIP 125 rule 4; btcd's minimum
// relay fee), in sat/vB.
const incrementalRelayFee = 1

// estimateSize returns an upper bound of the size in bytes of a transaction
// with nIn P2PKH inputs and outputs of the given scripts.
func estimateSize(nIn int, outScripts [][]byte) int64 {
	n := int64(txOverhead + wire.VarIntSerializeSize(uint64(nIn)) + wire.VarIntSerializeSize(uint64(len(outScripts))))
	n += int64(nIn) * p2pkhInput
	for _, s := range outScripts {
		n += 8 + int64(wire.VarIntSerializeSize(uint64(len(s)))) + int64(len(s))
	}
	return n
}

// PayTo is one output of a payment.
type PayTo struct {
	Username string `json:"username"`
	Address  string `json:"address"`
	Amount   int64  `json:"amount"`
}

// built is an unsigned payment transaction.
type built struct {
	tx     *wire.MsgTx
	inputs []Unspent
	fee    int64
}

// usable reports whether the wallet can sign u with signrawtransaction:
// spendable, confirmed, paying to P2PKH.
func usable(u Unspent) bool {
	return u.Spendable && u.Confirmations >= 1 && u.Amount > 0 &&
		txscript.GetScriptClass(u.PkScript) == txscript.PubKeyHashTy
}

// buildTx builds the unsigned transaction paying outs (in order) from the
// wallet outputs utxos (largest first), with a change output to change when
// the change is not dust, at feeRate sat/vB. Outputs use
// txscript.PayToAddrScript, so P2PKH, P2SH, P2WPKH, P2WSH and P2TR
// addresses all work.
func buildTx(outs []PayTo, addrs []btcutil.Address, utxos []Unspent, change btcutil.Address, feeRate int64) (built, error) {
	if len(outs) == 0 || len(outs) != len(addrs) {
		return built{}, fmt.Errorf("build tx: %d outputs, %d addresses: %w", len(outs), len(addrs), ErrInvalid)
	}
	tx := wire.NewMsgTx(wire.TxVersion)
	scripts := make([][]byte, 0, len(outs)+1)
	var total int64
	for i, o := range outs {
		pk, err := txscript.PayToAddrScript(addrs[i])
		if err != nil {
			return built{}, fmt.Errorf("build tx: output script for %s: %w: %w", o.Address, ErrInvalid, err)
		}
		txo := wire.NewTxOut(o.Amount, pk)
		if o.Amount <= 0 || mempool.IsDust(txo, minRelayFee) {
			return built{}, fmt.Errorf("build tx: %d sat to %s is dust: %w", o.Amount, o.Address, ErrInvalid)
		}
		tx.AddTxOut(txo)
		scripts = append(scripts, pk)
		total += o.Amount
	}
	changeScript, err := txscript.PayToAddrScript(change)
	if err != nil {
		return built{}, fmt.Errorf("build tx: change script: %w: %w", ErrInvalid, err)
	}
	cands := make([]Unspent, 0, len(utxos))
	for _, u := range utxos {
		if usable(u) {
			cands = append(cands, u)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].Amount != cands[j].Amount {
			return cands[i].Amount > cands[j].Amount
		}
		if c := bytes.Compare(cands[i].OutPoint.Hash[:], cands[j].OutPoint.Hash[:]); c != 0 {
			return c < 0
		}
		return cands[i].OutPoint.Index < cands[j].OutPoint.Index
	})
	withChange := append(scripts[:len(scripts):len(scripts)], changeScript)
	var in int64
	for n, u := range cands {
		in += u.Amount
		nIn := n + 1
		feeNoChange := estimateSize(nIn, scripts) * feeRate
		if in < total+feeNoChange {
			continue
		}
		b := built{inputs: cands[:nIn:nIn]}
		for _, c := range b.inputs {
			in := wire.NewTxIn(&c.OutPoint, nil, nil)
			in.Sequence = rbfSequence
			tx.AddTxIn(in)
		}
		feeChange := estimateSize(nIn, withChange) * feeRate
		rest := in - total - feeChange
		if co := wire.NewTxOut(rest, changeScript); rest > 0 && !mempool.IsDust(co, minRelayFee) {
			tx.AddTxOut(co)
			b.fee = feeChange
		} else {
			b.fee = in - total // the sub-dust change goes to the miners
		}
		b.tx = tx
		return b, nil
	}
	return built{}, fmt.Errorf("build tx: %d sat + fee wanted, %d sat in %d usable outputs: %w",
		total, in, len(cands), ErrInsufficientFunds)
}

// txBytes serializes tx.
func txBytes(tx *wire.MsgTx) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(tx.SerializeSize())
	if err := tx.Serialize(&b); err != nil {
		return nil, fmt.Errorf("serialize tx: %w", err)
	}
	return b.Bytes(), nil
}

// parseTx deserializes stored transaction bytes.
func parseTx(raw []byte) (*wire.MsgTx, error) {
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("stored tx: %w: %w", ErrInvalid, err)
	}
	return &tx, nil
}

// replacement is an unsigned replacement of a payment's transaction.
type replacement struct {
	tx  *wire.MsgTx
	fee int64
}

// bumpTx rebuilds cur (a payment's current transaction: recipients first,
// then an optional change output) over the same inputs and recipients at
// feeRate sat/vB, taking the extra fee out of the change. The fee is at
// least feeRate × an upper bound of the size and at least cur's fee plus
// the incremental relay fee on that size (BIP 125); when what is left of
// the change would be dust, the change output is dropped and all of it
// goes to the fee. nRecipients is the number of recipient outputs; inAmount
// the sum of the inputs. ErrInsufficientFunds when the change cannot cover
// the new fee (or there is none).
func bumpTx(cur *wire.MsgTx, nRecipients int, inAmount, curFee, feeRate int64) (replacement, error) {
	if len(cur.TxOut) != nRecipients && len(cur.TxOut) != nRecipients+1 {
		return replacement{}, fmt.Errorf("bump: %d outputs for %d recipients: %w", len(cur.TxOut), nRecipients, ErrInvalid)
	}
	scripts := make([][]byte, len(cur.TxOut))
	for i, o := range cur.TxOut {
		scripts[i] = o.PkScript
	}
	size := estimateSize(len(cur.TxIn), scripts)
	fee := max(feeRate*size, curFee+incrementalRelayFee*size)
	if len(cur.TxOut) == nRecipients {
		return replacement{}, fmt.Errorf("bump: the transaction has no change output to pay a higher fee from: %w", ErrInsufficientFunds)
	}
	tx := unsignedCopy(cur)
	change := tx.TxOut[nRecipients]
	left := change.Value - (fee - curFee)
	switch {
	case left < 0:
		return replacement{}, fmt.Errorf("bump: change of %d sat cannot cover a fee of %d sat (now %d): %w",
			change.Value, fee, curFee, ErrInsufficientFunds)
	case left == 0 || mempool.IsDust(wire.NewTxOut(left, change.PkScript), minRelayFee):
		tx.TxOut = tx.TxOut[:nRecipients]
	default:
		change.Value = left
	}
	var out int64
	for _, o := range tx.TxOut {
		out += o.Value
	}
	return replacement{tx: tx, fee: inAmount - out}, nil
}

// abandonTx builds the transaction that spends inputs (with their amounts)
// back to the wallet's address to, at feeRate sat/vB and at least curFee
// plus the incremental relay fee on its size (BIP 125), so that it
// replaces a payment's transaction in the mempool.
func abandonTx(inputs []Unspent, to btcutil.Address, curFee, feeRate int64) (replacement, error) {
	pk, err := txscript.PayToAddrScript(to)
	if err != nil {
		return replacement{}, fmt.Errorf("abandon: output script: %w: %w", ErrInvalid, err)
	}
	size := estimateSize(len(inputs), [][]byte{pk})
	fee := max(feeRate*size, curFee+incrementalRelayFee*size)
	tx := wire.NewMsgTx(wire.TxVersion)
	var in int64
	for _, u := range inputs {
		txin := wire.NewTxIn(&u.OutPoint, nil, nil)
		txin.Sequence = rbfSequence
		tx.AddTxIn(txin)
		in += u.Amount
	}
	o := wire.NewTxOut(in-fee, pk)
	if o.Value <= 0 || mempool.IsDust(o, minRelayFee) {
		return replacement{}, fmt.Errorf("abandon: %d sat in, a fee of %d sat leaves dust: %w", in, fee, ErrInsufficientFunds)
	}
	tx.AddTxOut(o)
	return replacement{tx: tx, fee: fee}, nil
}

// unsignedCopy is tx without its signatures.
func unsignedCopy(tx *wire.MsgTx) *wire.MsgTx {
	c := tx.Copy()
	for _, in := range c.TxIn {
		in.SignatureScript, in.Witness = nil, nil
	}
	return c
}

// feeRateOf is tx's fee rate in sat/vB given its fee; tx spends only
// P2PKH inputs, so its virtual size is its size.
func feeRateOf(tx *wire.MsgTx, fee int64) float64 {
	return float64(fee) / float64(tx.SerializeSize())
}
