package rpcsource

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/stratumd/stratumd/internal/chain"
)

// btcdRejectPrefix starts btcd's submitblock reply for a block its chain
// refused; the rest is the rule violation.
const btcdRejectPrefix = "rejected: "

// bcoin's submitblock answers "rejected: <reason>" like btcd, with BIP 22
// words after the prefix; two of them are not rejections.
const (
	// bcoinDuplicate: bcoin has the block (on its chain, a side chain, as
	// an orphan, or known invalid).
	bcoinDuplicate = "duplicate"
	// bcoinPrevMissing: bcoin lacks the block's parent and keeps the block
	// as an orphan (Core's prev-blk-not-found).
	bcoinPrevMissing = "bad-prevblk"
)

// Reasons of Bitcoin Core's submitblock that are not rejections although
// BIP 22 has no word for them.
const (
	// reasonPrevMissing: Core does not have the block's parent (it is
	// behind the node the template came from); the block is not known to
	// be invalid, and another node, or this one later, may take it.
	reasonPrevMissing = "prev-blk-not-found"
	// inconclusivePrefix starts Core's reasons for a block it stored but
	// could not decide on ("inconclusive-not-best-prevblk" in proposals).
	inconclusivePrefix = "inconclusive-"
)

// classifySubmit turns a submitblock reply (result or error) into a
// SubmitResult.
//
// Bitcoin Core (BIP 22 and Core's own words): null is accepted;
// "duplicate" (the block was stored before) and "duplicate-inconclusive"
// (stored before, never connected) are duplicates; "inconclusive" (stored,
// not connected: a side chain) and "prev-blk-not-found" (the node lacks
// the parent) are inconclusive; any other string ("high-hash",
// "bad-txnmrklroot", "duplicate-invalid": known and found invalid, ...) is
// a rejection with that reason. btcd: null is accepted (btcd also answers
// null for an orphan or a side-chain block, which cannot be told apart);
// "rejected: already have block ..." is a duplicate and any other
// "rejected: <rule violation>" a rejection. bcoin: null is accepted (also
// for a side-chain block), "rejected: duplicate" a duplicate, "rejected:
// bad-prevblk" (parent unknown, kept as an orphan) inconclusive, any other
// "rejected: <BIP 22 reason>" a rejection. A JSON-RPC error saying the
// block does not decode (-22, also Core's "Block does not start with a
// coinbase") is a rejection; -27 (already in the chain) a duplicate. Any
// other error means the block was not handed over, and is returned: that
// includes Core's -25, which submitblock raises only for a failure of the
// node itself (BlockValidationState::IsError, e.g. a disk error), never
// for an invalid block.
func classifySubmit(raw json.RawMessage, callErr error) (chain.SubmitResult, error) {
	if callErr != nil {
		var rerr *RPCError
		if errors.As(callErr, &rerr) {
			switch rerr.Code {
			case codeDeserialization:
				return chain.SubmitResult{Status: chain.Rejected, Reason: rerr.Message}, nil
			case codeAlreadyInChain:
				return chain.SubmitResult{Status: chain.Duplicate, Reason: rerr.Message}, nil
			}
		}
		return chain.SubmitResult{}, callErr
	}
	if len(raw) == 0 || string(raw) == "null" {
		return chain.SubmitResult{Status: chain.Accepted}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return chain.SubmitResult{}, fmt.Errorf("%w: submitblock result %q", ErrBadReply, snippet(raw))
	}
	if rest, ok := strings.CutPrefix(s, btcdRejectPrefix); ok {
		switch {
		case strings.HasPrefix(rest, "already have block"), rest == bcoinDuplicate:
			return chain.SubmitResult{Status: chain.Duplicate, Reason: rest}, nil
		case rest == bcoinPrevMissing:
			return chain.SubmitResult{Status: chain.Inconclusive, Reason: rest}, nil
		}
		return chain.SubmitResult{Status: chain.Rejected, Reason: rest}, nil
	}
	switch s {
	case "duplicate", "duplicate-inconclusive":
		return chain.SubmitResult{Status: chain.Duplicate, Reason: s}, nil
	case "inconclusive", reasonPrevMissing:
		return chain.SubmitResult{Status: chain.Inconclusive, Reason: s}, nil
	case "":
		return chain.SubmitResult{}, fmt.Errorf("%w: empty submitblock result", ErrBadReply)
	}
	if strings.HasPrefix(s, inconclusivePrefix) {
		return chain.SubmitResult{Status: chain.Inconclusive, Reason: s}, nil
	}
	return chain.SubmitResult{Status: chain.Rejected, Reason: s}, nil
}
