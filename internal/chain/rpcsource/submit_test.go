package rpcsource

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stratumd/stratumd/internal/chain"
)

// TestClassifySubmit covers the submitblock replies of Bitcoin Core (BIP 22
// strings) and btcd ("rejected: ..." strings), RPC errors and garbage.
func TestClassifySubmit(t *testing.T) {
	cases := []struct {
		raw    string
		err    error
		status chain.SubmitStatus
		reason string
		fails  error // the error returned instead of a result
	}{
		{raw: `null`, status: chain.Accepted},
		{raw: ``, status: chain.Accepted},
		{raw: `"duplicate"`, status: chain.Duplicate, reason: "duplicate"},
		{raw: `"duplicate-inconclusive"`, status: chain.Duplicate, reason: "duplicate-inconclusive"},
		{raw: `"inconclusive"`, status: chain.Inconclusive, reason: "inconclusive"},
		{raw: `"duplicate-invalid"`, status: chain.Rejected, reason: "duplicate-invalid"},
		{raw: `"high-hash"`, status: chain.Rejected, reason: "high-hash"},
		{raw: `"bad-txnmrklroot"`, status: chain.Rejected, reason: "bad-txnmrklroot"},
		{raw: `"bad-witness-nonce-size"`, status: chain.Rejected, reason: "bad-witness-nonce-size"},
		{raw: `"rejected: already have block 3a1b"`, status: chain.Duplicate, reason: "already have block 3a1b"},
		{raw: `"rejected: already have block (orphan) 3a1b"`, status: chain.Duplicate, reason: "already have block (orphan) 3a1b"},
		{raw: `"rejected: block merkle root is invalid - block header indicates 11, but calculated value is 22"`,
			status: chain.Rejected, reason: "block merkle root is invalid - block header indicates 11, but calculated value is 22"},
		{err: &RPCError{Code: -22, Message: "Block decode failed"}, status: chain.Rejected, reason: "Block decode failed"},
		{err: &RPCError{Code: -22, Message: "Block does not start with a coinbase"}, status: chain.Rejected,
			reason: "Block does not start with a coinbase"},
		// Core's -25 from submitblock is a failure of the node, not a verdict.
		{err: &RPCError{Code: -25, Message: "System error while flushing"}, fails: &RPCError{}},
		{raw: `"prev-blk-not-found"`, status: chain.Inconclusive, reason: "prev-blk-not-found"},
		{raw: `"inconclusive-not-best-prevblk"`, status: chain.Inconclusive, reason: "inconclusive-not-best-prevblk"},
		{raw: `"rejected"`, status: chain.Rejected, reason: "rejected"},
		{err: &RPCError{Code: -27, Message: "block already in chain"}, status: chain.Duplicate, reason: "block already in chain"},
		{err: &RPCError{Code: -28, Message: "Loading block index..."}, fails: &RPCError{}},
		{err: fmt.Errorf("dial: %w", errors.New("connection refused")), fails: errors.New("")},
		{raw: `""`, fails: ErrBadReply},
		{raw: `42`, fails: ErrBadReply},
		{raw: `{"result":"x"}`, fails: ErrBadReply},
	}
	for _, c := range cases {
		res, err := classifySubmit(json.RawMessage(c.raw), c.err)
		name := c.raw
		if c.err != nil {
			name = c.err.Error()
		}
		if c.fails != nil {
			if err == nil {
				t.Errorf("%s: got %+v, want an error", name, res)
			}
			if errors.Is(c.fails, ErrBadReply) && !errors.Is(err, ErrBadReply) {
				t.Errorf("%s: got %v, want ErrBadReply", name, err)
			}
			if c.err != nil && !errors.Is(err, c.err) {
				t.Errorf("%s: got %v, want the call's error", name, err)
			}
			continue
		}
		if err != nil || res.Status != c.status || res.Reason != c.reason {
			t.Errorf("%s: got %v %q (%v), want %v %q", name, res.Status, res.Reason, err, c.status, c.reason)
		}
	}
}

// TestRank orders the statuses: accepted from any node wins.
func TestRank(t *testing.T) {
	order := []chain.SubmitStatus{0, chain.Rejected, chain.Inconclusive, chain.Duplicate, chain.Accepted}
	for i := 1; i < len(order); i++ {
		if rank(order[i]) <= rank(order[i-1]) {
			t.Errorf("%v does not outrank %v", order[i], order[i-1])
		}
	}
}
