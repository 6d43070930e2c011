package chain

import (
	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// hashPair returns sha256d(left || right), one merkle tree node.
func hashPair(left, right *chainhash.Hash) chainhash.Hash {
	var buf [2 * chainhash.HashSize]byte
	copy(buf[:chainhash.HashSize], left[:])
	copy(buf[chainhash.HashSize:], right[:])
	return chainhash.DoubleHashH(buf[:])
}

// merkleBranch returns the stratum merkle branch of a block whose coinbase
// (index 0) is not known yet: the sibling of the coinbase's path at each level
// of the tree, bottom up. txids are the non-coinbase txids in block order.
// Folding the coinbase txid up the branch (foldBranch) gives the merkle root.
func merkleBranch(txids []chainhash.Hash) []chainhash.Hash {
	if len(txids) == 0 {
		return nil
	}
	level := make([]chainhash.Hash, 1, len(txids)+2) // level[0]: the coinbase path
	level = append(level, txids...)
	var branch []chainhash.Hash
	for len(level) > 1 {
		branch = append(branch, level[1])
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		// Pairs from index 2 on do not involve the coinbase path; the
		// next level is written in place (index i/2 <= i was already read).
		next := level[:1]
		for i := 2; i < len(level); i += 2 {
			next = append(next, hashPair(&level[i], &level[i+1]))
		}
		level = next
	}
	return branch
}

// foldBranch folds a coinbase txid up a merkle branch and returns the root.
func foldBranch(h chainhash.Hash, branch []chainhash.Hash) chainhash.Hash {
	var buf [2 * chainhash.HashSize]byte
	for i := range branch {
		copy(buf[:chainhash.HashSize], h[:])
		copy(buf[chainhash.HashSize:], branch[i][:])
		h = chainhash.DoubleHashH(buf[:])
	}
	return h
}

// merkleRoot returns the merkle root of leaves (Bitcoin's tree: an odd last
// node is paired with itself). It returns the zero hash for no leaves.
func merkleRoot(leaves []chainhash.Hash) chainhash.Hash {
	if len(leaves) == 0 {
		return chainhash.Hash{}
	}
	level := make([]chainhash.Hash, 0, len(leaves)+1)
	level = append(level, leaves...)
	for len(level) > 1 {
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		next := level[:0]
		for i := 0; i < len(level); i += 2 {
			next = append(next, hashPair(&level[i], &level[i+1]))
		}
		level = next
	}
	return level[0]
}

// witnessCommitment returns the BIP141 commitment sha256d(witness root ||
// reserved) for a block whose non-coinbase transactions are txs; the
// coinbase's wtxid counts as 32 zero bytes.
func witnessCommitment(txs []*btcutil.Tx, reserved [32]byte) chainhash.Hash {
	wtxids := make([]chainhash.Hash, len(txs)+1)
	for i, tx := range txs {
		wtxids[i+1] = *tx.WitnessHash()
	}
	root := merkleRoot(wtxids)
	r := chainhash.Hash(reserved)
	return hashPair(&root, &r)
}

// witnessCommitmentScript returns the commitment output's script:
// OP_RETURN, a 36-byte push of 0xaa21a9ed and the commitment.
func witnessCommitmentScript(commitment chainhash.Hash) []byte {
	script := make([]byte, 0, blockchain.CoinbaseWitnessPkScriptLength)
	script = append(script, blockchain.WitnessMagicBytes...)
	return append(script, commitment[:]...)
}
