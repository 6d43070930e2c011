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

// classifySubmit turns a submitblock reply (result or error) into a
// SubmitResult.
//
// Bitcoin Core (BIP 22): null is accepted; "duplicate" and
// "duplicate-inconclusive" are duplicates; "inconclusive" is inconclusive;
// any other string ("high-hash", "bad-txnmrklroot", "duplicate-invalid",
// ...) is a rejection with that reason. btcd: null is accepted (btcd also
// answers null for an orphan or a side-chain block, which cannot be told
// apart); "rejected: already have block ..." is a duplicate and any other
// "rejected: <rule violation>" a rejection. A JSON-RPC error saying the
// block does not decode or verify is a rejection; any other error means the
// block was not handed over, and is returned.
func classifySubmit(raw json.RawMessage, callErr error) (chain.SubmitResult, error) {
	if callErr != nil {
		var rerr *RPCError
		if errors.As(callErr, &rerr) {
			switch rerr.Code {
			case codeDeserialization, codeVerify, codeVerifyRejected:
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
		if strings.HasPrefix(rest, "already have block") {
			return chain.SubmitResult{Status: chain.Duplicate, Reason: rest}, nil
		}
		return chain.SubmitResult{Status: chain.Rejected, Reason: rest}, nil
	}
	switch s {
	case "duplicate", "duplicate-inconclusive":
		return chain.SubmitResult{Status: chain.Duplicate, Reason: s}, nil
	case "inconclusive":
		return chain.SubmitResult{Status: chain.Inconclusive, Reason: s}, nil
	case "":
		return chain.SubmitResult{}, fmt.Errorf("%w: empty submitblock result", ErrBadReply)
	default:
		return chain.SubmitResult{Status: chain.Rejected, Reason: s}, nil
	}
}
