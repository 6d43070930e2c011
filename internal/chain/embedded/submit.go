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

// Reasons SubmitBlock gives for blocks that are not rejected outright.
const (
	// ReasonOrphan: the block's parent is unknown; the chain keeps it as
	// an orphan.
	ReasonOrphan = "orphan"
	// ReasonSideChain: the block is valid so far but extends a side chain.
	ReasonSideChain = "side-chain"
	// ReasonDuplicate: the block is already in the best chain.
	ReasonDuplicate = "duplicate"
	// ReasonDuplicateNotBest: the block is known but not in the best chain
	// (a side chain, an orphan, or a block found invalid before).
	ReasonDuplicateNotBest = "duplicate-not-best-chain"
)

// SubmitBlock implements chain.Source. It hands b to Config.BeforeValidate
// (the relay hook) and then to blockchain.ProcessBlock. A block that
// becomes the tip is Accepted; an orphan or a side-chain block is
// Inconclusive; a block the chain already has is Duplicate; a block that
// breaks a consensus rule is Rejected with a BIP22-style reason
// ("bad-txnmrklroot: ...") and logged at error level. ctx is not consulted:
// a found block is always processed once handed over. An error (the outcome
// is unknown) wraps ErrMalformed, chain.ErrClosed or the chain's failure.
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

	isMain, isOrphan, err := n.chain.ProcessBlock(block, blockchain.BFNone)
	var rerr blockchain.RuleError
	switch {
	case err == nil && isOrphan:
		log.Warn("submitted block is an orphan: parent unknown")
		return chain.SubmitResult{Status: chain.Inconclusive, Reason: ReasonOrphan}, nil
	case err == nil && !isMain:
		log.Warn("submitted block extends a side chain")
		return chain.SubmitResult{Status: chain.Inconclusive, Reason: ReasonSideChain}, nil
	case err == nil:
		log.Info("submitted block accepted", "height", block.Height())
		return chain.SubmitResult{Status: chain.Accepted}, nil
	case errors.As(err, &rerr) && rerr.ErrorCode == blockchain.ErrDuplicateBlock:
		reason := ReasonDuplicate
		if !n.chain.MainChainHasBlock(hash) {
			reason = ReasonDuplicateNotBest
		}
		log.Warn("submitted block is a duplicate", "reason", reason)
		return chain.SubmitResult{Status: chain.Duplicate, Reason: reason}, nil
	case errors.As(err, &rerr):
		reason := RejectReason(rerr.ErrorCode) + ": " + rerr.Description
		log.Error("SUBMITTED BLOCK REJECTED", "code", rerr.ErrorCode, "reason", reason)
		return chain.SubmitResult{Status: chain.Rejected, Reason: reason}, nil
	default:
		log.Error("submitted block could not be processed", "err", err)
		return chain.SubmitResult{}, fmt.Errorf("embedded: process block %s: %w", hash, err)
	}
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

// RejectReason returns the BIP22 reject reason for a consensus rule error
// code ("bad-txnmrklroot"), as bitcoind's submitblock and btcd's RPC server
// name them; codes without one give "rejected".
func RejectReason(c blockchain.ErrorCode) string {
	switch c {
	case blockchain.ErrDuplicateBlock:
		return "duplicate"
	case blockchain.ErrBlockTooBig:
		return "bad-blk-length"
	case blockchain.ErrBlockWeightTooHigh:
		return "bad-blk-weight"
	case blockchain.ErrBlockVersionTooOld:
		return "bad-version"
	case blockchain.ErrInvalidTime:
		return "bad-time"
	case blockchain.ErrTimeTooOld:
		return "time-too-old"
	case blockchain.ErrTimeTooNew:
		return "time-too-new"
	case blockchain.ErrDifficultyTooLow, blockchain.ErrUnexpectedDifficulty:
		return "bad-diffbits"
	case blockchain.ErrHighHash:
		return "high-hash"
	case blockchain.ErrBadMerkleRoot:
		return "bad-txnmrklroot"
	case blockchain.ErrBadCheckpoint:
		return "bad-checkpoint"
	case blockchain.ErrForkTooOld:
		return "fork-too-old"
	case blockchain.ErrCheckpointTimeTooOld:
		return "checkpoint-time-too-old"
	case blockchain.ErrNoTransactions:
		return "bad-txns-none"
	case blockchain.ErrNoTxInputs:
		return "bad-txns-noinputs"
	case blockchain.ErrNoTxOutputs:
		return "bad-txns-nooutputs"
	case blockchain.ErrTxTooBig:
		return "bad-txns-size"
	case blockchain.ErrBadTxOutValue:
		return "bad-txns-outputvalue"
	case blockchain.ErrDuplicateTxInputs:
		return "bad-txns-dupinputs"
	case blockchain.ErrBadTxInput:
		return "bad-txns-badinput"
	case blockchain.ErrMissingTxOut:
		return "bad-txns-missinginput"
	case blockchain.ErrUnfinalizedTx:
		return "bad-txns-unfinalizedtx"
	case blockchain.ErrDuplicateTx:
		return "bad-txns-duplicate"
	case blockchain.ErrOverwriteTx:
		return "bad-txns-overwrite"
	case blockchain.ErrImmatureSpend:
		return "bad-txns-maturity"
	case blockchain.ErrSpendTooHigh:
		return "bad-txns-highspend"
	case blockchain.ErrBadFees:
		return "bad-txns-fees"
	case blockchain.ErrTooManySigOps:
		return "high-sigops"
	case blockchain.ErrFirstTxNotCoinbase:
		return "bad-txns-nocoinbase"
	case blockchain.ErrMultipleCoinbases:
		return "bad-txns-multicoinbase"
	case blockchain.ErrBadCoinbaseScriptLen:
		return "bad-cb-length"
	case blockchain.ErrBadCoinbaseValue:
		return "bad-cb-value"
	case blockchain.ErrMissingCoinbaseHeight, blockchain.ErrBadCoinbaseHeight:
		return "bad-cb-height"
	case blockchain.ErrScriptMalformed:
		return "bad-script-malformed"
	case blockchain.ErrScriptValidation:
		return "bad-script-validate"
	case blockchain.ErrUnexpectedWitness:
		return "unexpected-witness"
	case blockchain.ErrInvalidWitnessCommitment:
		return "bad-witness-nonce-size"
	case blockchain.ErrWitnessCommitmentMismatch:
		return "bad-witness-merkle-match"
	case blockchain.ErrPreviousBlockUnknown:
		return "prev-blk-not-found"
	case blockchain.ErrInvalidAncestorBlock:
		return "bad-prevblk"
	case blockchain.ErrPrevBlockNotBest:
		return "inconclusive-not-best-prvblk"
	default:
		return "rejected"
	}
}
