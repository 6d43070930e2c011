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
			tx.AddTxIn(wire.NewTxIn(&c.OutPoint, nil, nil))
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
