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

// classifySubmit turns a submitblock reply (result or error) into a
// SubmitResult.
//
// Bitcoin Core: null or a BIP 22 string, classified by chain.BIP22Result,
// the table the embedded node shares ("duplicate" and
// "duplicate-inconclusive" are duplicates, "inconclusive",
// "inconclusive-…" and "prev-blk-not-found" inconclusive, any other string
// a rejection with that reason). A JSON string "" is not an answer Core
// gives (BIP22ValidationResult says "rejected" for an empty reason) and is
// a bad reply. btcd: null is accepted (btcd also answers null for an orphan
// or a side-chain block, which cannot be told apart); "rejected: already
// have block ..." is a duplicate and any other "rejected: <rule
// violation>" a rejection. bcoin: like btcd, but "rejected: duplicate" is a
// duplicate and "rejected: bad-prevblk" (kept as an orphan) inconclusive. A JSON-RPC error saying the
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
	if s == "" {
		return chain.SubmitResult{}, fmt.Errorf("%w: empty submitblock result", ErrBadReply)
	}
	return chain.BIP22Result(s), nil
}
