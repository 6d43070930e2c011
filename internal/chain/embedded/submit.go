package embedded

import (
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/mempool"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
)

// Reasons SubmitBlock gives for blocks that are not rejected outright:
// the BIP 22 answers Bitcoin Core's submitblock gives in the same case, so
// that chain.BIP22Result classifies both node kinds' answers alike.
const (
	// ReasonOrphan: the block's parent is unknown; the chain keeps it as
	// an orphan (Core: its parent is missing, "prev-blk-not-found").
	ReasonOrphan = chain.BIP22PrevBlkNotFound
	// ReasonSideChain: the block is valid so far but extends a side chain
	// (Core: stored, not connected, "inconclusive").
	ReasonSideChain = chain.BIP22Inconclusive
	// ReasonDuplicate: the block is already in the best chain.
	ReasonDuplicate = chain.BIP22Duplicate
	// ReasonDuplicateNotBest: the block is known but not in the best chain
	// (a side chain, an orphan, or a block found invalid before).
	ReasonDuplicateNotBest = chain.BIP22DuplicateInconclusive
)

// SubmitBlock implements chain.Source. It hands b to Config.BeforeValidate
// (the relay hook) and then to blockchain.ProcessBlock (or
// Config.ProcessBlock), and names the
// outcome with the BIP 22 answer Bitcoin Core's submitblock gives in the
// same case (null, "inconclusive" for a side-chain block,
// "prev-blk-not-found" for an orphan, "duplicate" or
// "duplicate-inconclusive", RejectReason for a broken rule), classified by
// chain.BIP22Result: the table a Core node's answers go through. A
// rejection's Reason is the BIP 22 reason and btcd's description
// ("bad-txnmrklroot: ...") and is logged at error level. ctx is not
// consulted: a found block is always processed once handed over. An error
// (the outcome is unknown) wraps ErrMalformed, chain.ErrClosed or the
// chain's failure.
func (n *Node) SubmitBlock(_ context.Context, b *wire.MsgBlock) (chain.SubmitResult, error) {
	if err := checkBlock(b); err != nil {
		return chain.SubmitResult{}, err
	}
	if err := n.acquire(); err != nil {
		return chain.SubmitResult{}, err
	}
	defer n.closeMu.RUnlock()

	block := btcutil.NewBlock(b)
	if n.cfg.BeforeValidate != nil {
		n.cfg.BeforeValidate(block)
	}
	hash := block.Hash()
	log := n.log.With("hash", hash, "prev", b.Header.PrevBlock, "txs", len(b.Transactions))

	process := n.chain.ProcessBlock
	if n.cfg.ProcessBlock != nil {
		process = n.cfg.ProcessBlock
	}
	isMain, isOrphan, err := process(block, blockchain.BFNone)
	var rerr blockchain.RuleError
	var reason, detail string
	switch {
	case err == nil && isOrphan:
		reason = ReasonOrphan
	case err == nil && !isMain:
		reason = ReasonSideChain
	case err == nil:
		reason = chain.BIP22Accepted
	case errors.As(err, &rerr):
		reason, detail = RejectReason(rerr.ErrorCode), rerr.Description
		if reason == ReasonDuplicate && !n.chain.MainChainHasBlock(hash) {
			reason = ReasonDuplicateNotBest
		}
	default:
		log.Error("submitted block could not be processed", "err", err)
		return chain.SubmitResult{}, fmt.Errorf("embedded: process block %s: %w", hash, err)
	}
	res := chain.BIP22Result(reason)
	switch res.Status {
	case chain.Accepted:
		log.Info("submitted block accepted", "height", block.Height())
	case chain.Rejected:
		// The BIP 22 reason, then btcd's description of the violation.
		res.Reason = reason + ": " + detail
		log.Error("SUBMITTED BLOCK REJECTED", "code", rerr.ErrorCode, "reason", res.Reason)
	default:
		log.Warn("submitted block not connected", "status", res.Status, "reason", reason, "detail", detail)
	}
	return res, nil
}

// checkBlock refuses what btcd would dereference: a nil block or nil
// transactions, inputs or outputs.
func checkBlock(b *wire.MsgBlock) error {
	if b == nil {
		return fmt.Errorf("%w: nil block", ErrMalformed)
	}
	for i, tx := range b.Transactions {
		if err := checkTx(tx); err != nil {
			return fmt.Errorf("transaction %d: %w", i, err)
		}
	}
	return nil
}

// checkTx refuses a nil transaction or one with nil inputs or outputs.
func checkTx(tx *wire.MsgTx) error {
	if tx == nil {
		return fmt.Errorf("%w: nil transaction", ErrMalformed)
	}
	for _, in := range tx.TxIn {
		if in == nil {
			return fmt.Errorf("%w: nil input", ErrMalformed)
		}
	}
	for _, out := range tx.TxOut {
		if out == nil {
			return fmt.Errorf("%w: nil output", ErrMalformed)
		}
	}
	return nil
}

// SubmitTx offers tx to the mempool as a local, trusted submission: no rate
// limit, no orphans (a transaction whose inputs are unknown is rejected).
// When it (and any orphans it unblocks) enters the pool, Updates gets a
// MempoolChanged. A refusal wraps ErrTxRejected and the mempool's
// RuleError.
func (n *Node) SubmitTx(ctx context.Context, tx *wire.MsgTx) error {
	if err := checkTx(tx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := n.acquire(); err != nil {
		return err
	}
	defer n.closeMu.RUnlock()

	utx := btcutil.NewTx(tx)
	accepted, err := n.pool.ProcessTransaction(utx, false, false, 0)
	if err != nil {
		var rerr mempool.RuleError
		if errors.As(err, &rerr) {
			return fmt.Errorf("%w: %s: %w", ErrTxRejected, utx.Hash(), err)
		}
		return fmt.Errorf("embedded: process transaction %s: %w", utx.Hash(), err)
	}
	if len(accepted) > 0 {
		n.log.Debug("transaction accepted", "txid", utx.Hash(), "accepted", len(accepted))
		n.notifyMempoolChanged()
	}
	return nil
}

// RejectReason returns the BIP 22 reason of a consensus rule error code:
// the reject reason of Bitcoin Core's validation.cpp (or tx_check.cpp,
// tx_verify.cpp) for the same rule, one of package chain's BIP22
// constants, so that chain.BIP22Result classifies it as it classifies a
// Core node's submitblock answer. Codes without a Core equivalent give
// "rejected" (Core's answer for a rejection without a reason).
func RejectReason(c blockchain.ErrorCode) string {
	switch c {
	case blockchain.ErrDuplicateBlock:
		return chain.BIP22Duplicate
	case blockchain.ErrBlockTooBig, blockchain.ErrNoTransactions:
		return chain.BIP22BadBlkLength
	case blockchain.ErrBlockWeightTooHigh:
		return chain.BIP22BadBlkWeight
	case blockchain.ErrBlockVersionTooOld:
		return chain.BIP22BadVersion
	case blockchain.ErrTimeTooOld:
		return chain.BIP22TimeTooOld
	case blockchain.ErrTimeTooNew:
		return chain.BIP22TimeTooNew
	case blockchain.ErrDifficultyTooLow, blockchain.ErrUnexpectedDifficulty:
		return chain.BIP22BadDiffBits
	case blockchain.ErrHighHash:
		return chain.BIP22HighHash
	case blockchain.ErrBadMerkleRoot:
		return chain.BIP22BadTxnMrklRoot
	case blockchain.ErrBadCheckpoint:
		return chain.BIP22CheckpointMismatch
	case blockchain.ErrForkTooOld, blockchain.ErrCheckpointTimeTooOld:
		return chain.BIP22BadForkPriorToCheckpoint
	case blockchain.ErrNoTxInputs:
		return chain.BIP22BadTxnsVinEmpty
	case blockchain.ErrNoTxOutputs:
		return chain.BIP22BadTxnsVoutEmpty
	case blockchain.ErrTxTooBig:
		return chain.BIP22BadTxnsOversize
	case blockchain.ErrBadTxOutValue:
		return chain.BIP22BadTxnsVoutTooLarge
	case blockchain.ErrDuplicateTxInputs:
		return chain.BIP22BadTxnsInputsDuplicate
	case blockchain.ErrBadTxInput:
		return chain.BIP22BadTxnsPrevoutNull
	case blockchain.ErrMissingTxOut:
		return chain.BIP22BadTxnsInputsMissingOrSpent
	case blockchain.ErrUnfinalizedTx:
		return chain.BIP22BadTxnsNonFinal
	case blockchain.ErrDuplicateTx:
		return chain.BIP22BadTxnsDuplicate
	case blockchain.ErrOverwriteTx:
		return chain.BIP22BadTxnsBIP30
	case blockchain.ErrImmatureSpend:
		return chain.BIP22BadTxnsPrematureCoinbaseSpend
	case blockchain.ErrSpendTooHigh:
		return chain.BIP22BadTxnsInBelowOut
	case blockchain.ErrBadFees:
		return chain.BIP22BadTxnsFeeOutOfRange
	case blockchain.ErrTooManySigOps:
		return chain.BIP22BadBlkSigops
	case blockchain.ErrFirstTxNotCoinbase:
		return chain.BIP22BadCbMissing
	case blockchain.ErrMultipleCoinbases:
		return chain.BIP22BadCbMultiple
	case blockchain.ErrBadCoinbaseScriptLen:
		return chain.BIP22BadCbLength
	case blockchain.ErrBadCoinbaseValue:
		return chain.BIP22BadCbAmount
	case blockchain.ErrMissingCoinbaseHeight, blockchain.ErrBadCoinbaseHeight:
		return chain.BIP22BadCbHeight
	case blockchain.ErrScriptMalformed, blockchain.ErrScriptValidation:
		return chain.BIP22ScriptVerifyFailed
	case blockchain.ErrUnexpectedWitness:
		return chain.BIP22UnexpectedWitness
	case blockchain.ErrInvalidWitnessCommitment:
		return chain.BIP22BadWitnessNonceSize
	case blockchain.ErrWitnessCommitmentMismatch:
		return chain.BIP22BadWitnessMerkleMatch
	case blockchain.ErrPreviousBlockUnknown:
		return chain.BIP22PrevBlkNotFound
	case blockchain.ErrInvalidAncestorBlock:
		return chain.BIP22BadPrevBlk
	case blockchain.ErrPrevBlockNotBest:
		return chain.BIP22InconclusiveNotBestPrevBlk
	default:
		return chain.BIP22Rejected
	}
}
