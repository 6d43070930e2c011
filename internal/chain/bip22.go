package chain

import "strings"

// BIP 22 answers: what Bitcoin Core's submitblock (and getblocktemplate in
// proposal mode) returns for a block, and the reject reasons of Core's
// validation.cpp and consensus/tx_check.cpp that a pool's block can meet.
// Both node kinds speak them: package rpcsource reads them from a node's
// submitblock; package embedded names btcd's rule errors with them.
const (
	// BIP22Accepted is BIP 22's JSON null: the block was accepted. It is
	// the empty string here.
	BIP22Accepted = ""

	// BIP22Duplicate: the node already had the block, valid (Core:
	// submitblock when ProcessNewBlock reports it was not new).
	BIP22Duplicate = "duplicate"
	// BIP22DuplicateInconclusive: the node already had the block but has
	// not fully validated it (stored on a side chain or not connected).
	BIP22DuplicateInconclusive = "duplicate-inconclusive"
	// BIP22DuplicateInvalid: the node already had the block and found it
	// invalid (AcceptBlockHeader: BLOCK_CACHED_INVALID).
	BIP22DuplicateInvalid = "duplicate-invalid"
	// BIP22Inconclusive: the node stored the block without deciding on it
	// (a valid block on a side chain: no BlockChecked for it).
	BIP22Inconclusive = "inconclusive"
	// BIP22InconclusiveNotBestPrevBlk: a proposal on a parent that is not
	// the node's tip (TestBlockValidity).
	BIP22InconclusiveNotBestPrevBlk = "inconclusive-not-best-prevblk"
	// BIP22PrevBlkNotFound: the node does not know the block's parent
	// (BLOCK_MISSING_PREV): it is behind, the block is not known invalid.
	BIP22PrevBlkNotFound = "prev-blk-not-found"
	// BIP22Rejected: invalid without a reason (BIP22ValidationResult's
	// answer for an empty reject reason).
	BIP22Rejected = "rejected"

	// BIP22HighHash: the header's hash is above its target (CheckBlockHeader).
	BIP22HighHash = "high-hash"
	// BIP22BadDiffBits: the header's bits are not the expected difficulty.
	BIP22BadDiffBits = "bad-diffbits"
	// BIP22TimeTooOld: the header's time is not above median time past.
	BIP22TimeTooOld = "time-too-old"
	// BIP22TimeTooNew: the header's time is over two hours in the future.
	BIP22TimeTooNew = "time-too-new"
	// BIP22TimewarpAttack: BIP 94's limit on the first block of a period.
	BIP22TimewarpAttack = "time-timewarp-attack"
	// BIP22BadVersion: the version is one a deployment made obsolete;
	// Core appends the version, "bad-version(0x00000001)".
	BIP22BadVersion = "bad-version"
	// BIP22BadPrevBlk: the block's parent is known invalid (BLOCK_INVALID_PREV).
	BIP22BadPrevBlk = "bad-prevblk"
	// BIP22BadForkPriorToCheckpoint: a fork below the last checkpoint.
	BIP22BadForkPriorToCheckpoint = "bad-fork-prior-to-checkpoint"
	// BIP22CheckpointMismatch: a block that contradicts a checkpoint
	// (Core's reason before it dropped checkpoints; btcd keeps them).
	BIP22CheckpointMismatch = "checkpoint mismatch"
	// BIP22BadTxnMrklRoot: the merkle root does not match the transactions.
	BIP22BadTxnMrklRoot = "bad-txnmrklroot"
	// BIP22BadTxnsDuplicate: a duplicated transaction (CVE-2012-2459 mutation).
	BIP22BadTxnsDuplicate = "bad-txns-duplicate"
	// BIP22BadBlkLength: the block is empty or too big.
	BIP22BadBlkLength = "bad-blk-length"
	// BIP22BadBlkWeight: the block weighs over 4,000,000.
	BIP22BadBlkWeight = "bad-blk-weight"
	// BIP22BadBlkSigops: the block's sigop cost is over the limit.
	BIP22BadBlkSigops = "bad-blk-sigops"
	// BIP22BadCbMissing: the first transaction is not a coinbase.
	BIP22BadCbMissing = "bad-cb-missing"
	// BIP22BadCbMultiple: more than one coinbase.
	BIP22BadCbMultiple = "bad-cb-multiple"
	// BIP22BadCbLength: the coinbase scriptSig is not 2 to 100 bytes.
	BIP22BadCbLength = "bad-cb-length"
	// BIP22BadCbHeight: the coinbase does not start with the BIP 34 height.
	BIP22BadCbHeight = "bad-cb-height"
	// BIP22BadCbAmount: the coinbase pays more than subsidy plus fees.
	BIP22BadCbAmount = "bad-cb-amount"
	// BIP22BadWitnessNonceSize: the coinbase witness is not one 32-byte item.
	BIP22BadWitnessNonceSize = "bad-witness-nonce-size"
	// BIP22BadWitnessMerkleMatch: the witness commitment does not match.
	BIP22BadWitnessMerkleMatch = "bad-witness-merkle-match"
	// BIP22UnexpectedWitness: witness data in a block without a commitment.
	BIP22UnexpectedWitness = "unexpected-witness"
	// BIP22BadTxnsNonFinal: a transaction (the coinbase's lock time
	// included) is not final at the block's height and time.
	BIP22BadTxnsNonFinal = "bad-txns-nonfinal"
	// BIP22BadSignetBlkSig: a signet block without a valid solution to the
	// network's challenge (BIP 325).
	BIP22BadSignetBlkSig = "bad-signet-blksig"

	// Transaction reasons (consensus/tx_check.cpp, tx_verify.cpp and
	// ConnectBlock), as submitblock reports them for a block.

	// BIP22BadTxnsVinEmpty: a transaction without inputs.
	BIP22BadTxnsVinEmpty = "bad-txns-vin-empty"
	// BIP22BadTxnsVoutEmpty: a transaction without outputs.
	BIP22BadTxnsVoutEmpty = "bad-txns-vout-empty"
	// BIP22BadTxnsOversize: a transaction over the block size limit.
	BIP22BadTxnsOversize = "bad-txns-oversize"
	// BIP22BadTxnsVoutTooLarge: an output value out of range.
	BIP22BadTxnsVoutTooLarge = "bad-txns-vout-toolarge"
	// BIP22BadTxnsInputsDuplicate: a transaction spends an output twice.
	BIP22BadTxnsInputsDuplicate = "bad-txns-inputs-duplicate"
	// BIP22BadTxnsPrevoutNull: a non-coinbase input with a null prevout.
	BIP22BadTxnsPrevoutNull = "bad-txns-prevout-null"
	// BIP22BadTxnsInputsMissingOrSpent: an input is unknown or spent.
	BIP22BadTxnsInputsMissingOrSpent = "bad-txns-inputs-missingorspent"
	// BIP22BadTxnsBIP30: a transaction would overwrite an unspent one.
	BIP22BadTxnsBIP30 = "bad-txns-BIP30"
	// BIP22BadTxnsPrematureCoinbaseSpend: a coinbase spent before maturity.
	BIP22BadTxnsPrematureCoinbaseSpend = "bad-txns-premature-spend-of-coinbase"
	// BIP22BadTxnsInBelowOut: a transaction pays out more than it spends.
	BIP22BadTxnsInBelowOut = "bad-txns-in-belowout"
	// BIP22BadTxnsFeeOutOfRange: fees out of range.
	BIP22BadTxnsFeeOutOfRange = "bad-txns-fee-outofrange"
	// BIP22ScriptVerifyFailed: an input's script fails; Core appends the
	// script error in parentheses.
	BIP22ScriptVerifyFailed = "mandatory-script-verify-flag-failed"
)

// BIP22Result classifies a BIP 22 answer: the one table that both node
// kinds go through. The empty reason (BIP22Accepted, JSON null) is
// Accepted; "duplicate" and "duplicate-inconclusive" are Duplicate (the
// node has the block); "inconclusive", any "inconclusive-…" reason and
// "prev-blk-not-found" (the node lacks the parent: it is behind, the block
// may still be good) are Inconclusive; every other reason, known or not,
// is Rejected, "duplicate-invalid" included. The reason is kept as given.
func BIP22Result(reason string) SubmitResult {
	switch {
	case reason == BIP22Accepted:
		return SubmitResult{Status: Accepted}
	case reason == BIP22Duplicate, reason == BIP22DuplicateInconclusive:
		return SubmitResult{Status: Duplicate, Reason: reason}
	case reason == BIP22Inconclusive, reason == BIP22PrevBlkNotFound,
		strings.HasPrefix(reason, BIP22Inconclusive+"-"):
		return SubmitResult{Status: Inconclusive, Reason: reason}
	default:
		return SubmitResult{Status: Rejected, Reason: reason}
	}
}
