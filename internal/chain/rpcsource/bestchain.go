package rpcsource

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/chain"
)

var _ chain.BestChainReader = (*Source)(nil)

// BestChains implements chain.BestChainReader: every configured node
// (healthy or not: one marked down may be back) is asked at once for
// getblockcount and then getblockhash at each height at or below it, each
// call bounded by Config.RequestTimeout. Both btcd and Bitcoin Core answer
// them. A height the node no longer has when asked (its chain shrank in a
// reorganization between the calls) is left out; a node that fails any
// other way has Err set.
func (s *Source) BestChains(ctx context.Context, heights []int32) []chain.NodeChain {
	out := make([]chain.NodeChain, len(s.nodes))
	var wg sync.WaitGroup
	for i, n := range s.nodes {
		wg.Go(func() { out[i] = n.bestChain(ctx, heights) })
	}
	wg.Wait()
	return out
}

// codeOutOfRange is getblockhash's answer for a height above the tip:
// Core's RPC_INVALID_PARAMETER (-8) and btcd's ErrRPCOutOfRange (-1).
var codeOutOfRange = [...]int{-8, -1}

// bestChain asks n for its best height and its blocks at heights.
func (n *node) bestChain(ctx context.Context, heights []int32) chain.NodeChain {
	nc := chain.NodeChain{Node: n.ep.name}
	var count int64
	if err := n.call(ctx, "getblockcount", nil, &count); err != nil {
		nc.Err = fmt.Errorf("rpcsource: %s: getblockcount: %w", n.ep.name, err)
		return nc
	}
	if count < 0 || count > 1<<31-1 {
		nc.Err = fmt.Errorf("%w: %s: getblockcount %d", ErrBadReply, n.ep.name, count)
		return nc
	}
	nc.Height = int32(count)
	nc.Hashes = make(map[int32]chainhash.Hash, len(heights))
	for _, h := range heights {
		if h < 0 || h > nc.Height {
			continue
		}
		if _, done := nc.Hashes[h]; done {
			continue
		}
		var s string
		err := n.call(ctx, "getblockhash", []any{h}, &s)
		var rerr *RPCError
		if errors.As(err, &rerr) && (rerr.Code == codeOutOfRange[0] || rerr.Code == codeOutOfRange[1]) {
			continue
		}
		if err != nil {
			return chain.NodeChain{Node: n.ep.name, Err: fmt.Errorf("rpcsource: %s: getblockhash %d: %w", n.ep.name, h, err)}
		}
		hash, err := parseHash(s)
		if err != nil {
			return chain.NodeChain{Node: n.ep.name, Err: fmt.Errorf("%w: %s: getblockhash %d: %w", ErrBadReply, n.ep.name, h, err)}
		}
		nc.Hashes[h] = hash
	}
	return nc
}
