package chain

import (
	"context"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// BestChainReader is implemented by the Sources that can say which blocks
// are in their node's best chain (each node's, with several RPC nodes).
// stratumd's resubmitter of found blocks uses it to tell a block that
// reached a chain from one that must be handed over again. It is optional:
// a Source without it is only submitted to.
type BestChainReader interface {
	// BestChains asks every node for the height of its best tip and for
	// the hash of its best-chain block at each of heights that is at or
	// below that tip. It returns one NodeChain per node, in a stable
	// order; a node that cannot be asked has Err set. It does not fail as a
	// whole: with no node reachable, every NodeChain has an Err.
	BestChains(ctx context.Context, heights []int32) []NodeChain
}

// NodeChain is what one node said of its best chain.
type NodeChain struct {
	// Node names the node (an RPC node's scheme://host:port; "embedded").
	Node string
	// Height is the height of the node's best tip.
	Height int32
	// Hashes holds the node's best-chain block at each height asked about
	// that is at or below Height.
	Hashes map[int32]chainhash.Hash
	// Err is why the node could not be asked; the other fields are then
	// zero.
	Err error
}

// Has reports whether the node answered and has the block hash at height
// in its best chain.
func (n *NodeChain) Has(hash chainhash.Hash, height int32) bool {
	h, ok := n.Hashes[height]
	return n.Err == nil && ok && h == hash
}
