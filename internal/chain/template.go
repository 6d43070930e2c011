package chain

import (
	"math/big"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// Template is what a Source emits: everything needed to build a block on the
// current best tip. A Template is treated as immutable once emitted; NewJob
// reads (and btcutil lazily caches) the transactions' hashes, so one Template
// must not be handed to NewJob from several goroutines at once.
type Template struct {
	// Height is the height of the block to be built (tip height + 1).
	Height int32
	// PrevHash is the hash of the current tip, the new block's parent.
	PrevHash chainhash.Hash
	// Version is the block version to mine (BIP9 bits included).
	Version int32
	// Bits is the compact network target of the new block.
	Bits uint32
	// MinTime is the earliest allowed header time: median-time-past + 1s.
	MinTime time.Time
	// CurTime is the header time the source suggests (at least MinTime).
	CurTime time.Time
	// CoinbaseValue is the block subsidy plus all transaction fees, in
	// satoshis: what the coinbase may pay out.
	CoinbaseValue int64
	// Transactions are the non-coinbase transactions in block order, with
	// their witness data.
	Transactions []*btcutil.Tx
	// Fees optionally holds the fee of each transaction in Transactions, in
	// satoshis (same order); nil when the source does not know them.
	Fees []int64
	// SigOpCosts optionally holds the sigop cost of each transaction in
	// Transactions (same order); nil when the source does not know them.
	SigOpCosts []int64
	// RequireWitnessCommitment makes the coinbase carry a witness
	// commitment even when no transaction has witness data. Signet needs
	// it: BIP 325's block solution lives in the commitment output, and
	// Core's CheckSignetBlockSolution refuses a block without one
	// ("bad-signet-blksig"), even for the OP_TRUE challenge whose solution
	// is empty.
	RequireWitnessCommitment bool
}

// Target returns the network target encoded by t.Bits.
func (t *Template) Target() *big.Int {
	return blockchain.CompactToBig(t.Bits)
}

// HasWitness reports whether any transaction of the template carries
// witness data, in which case the coinbase needs a witness commitment.
func (t *Template) HasWitness() bool {
	for _, tx := range t.Transactions {
		if tx.HasWitness() {
			return true
		}
	}
	return false
}
