package embedded

import (
	"context"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/chain"
)

// NodeName is the name BestChains gives the in-process node.
const NodeName = "embedded"

var _ chain.BestChainReader = (*Node)(nil)

// BestChains implements chain.BestChainReader for the one in-process node:
// its best height and its best-chain block at each of heights at or below
// it (btcd's BlockHashByHeight). After Close the answer's Err wraps
// chain.ErrClosed.
func (n *Node) BestChains(_ context.Context, heights []int32) []chain.NodeChain {
	nc := chain.NodeChain{Node: NodeName}
	if err := n.acquire(); err != nil {
		nc.Err = err
		return []chain.NodeChain{nc}
	}
	defer n.closeMu.RUnlock()
	nc.Height = n.chain.BestSnapshot().Height
	nc.Hashes = make(map[int32]chainhash.Hash, len(heights))
	for _, h := range heights {
		if h < 0 || h > nc.Height {
			continue
		}
		// An error means the chain shrank (a reorganization) since the
		// snapshot: the height is not in the best chain now.
		if hash, err := n.chain.BlockHashByHeight(h); err == nil {
			nc.Hashes[h] = *hash
		}
	}
	return []chain.NodeChain{nc}
}
