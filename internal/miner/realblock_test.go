package miner

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// realBlocks are mainnet blocks from internal/chain's testdata (see its
// README): one before segwit, one segwit block with 230 transactions.
var realBlocks = []struct {
	file, hash string
}{
	{"block-100000.blk", "000000000003ba27aa200b1cecaad478d2b00432346c3f1f3986da1afd33e506"},
	{"block-00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab.blk",
		"00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab"},
}

// stratumBranch computes the merkle branch of the coinbase the textbook
// way, independently of internal/chain.
func stratumBranch(txids []chainhash.Hash) []chainhash.Hash {
	var branch []chainhash.Hash
	level := append([]chainhash.Hash{{}}, txids[1:]...)
	for len(level) > 1 {
		branch = append(branch, level[1])
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		next := []chainhash.Hash{{}}
		for i := 2; i < len(level); i += 2 {
			next = append(next, chainhash.DoubleHashH(append(level[i][:], level[i+1][:]...)))
		}
		level = next
	}
	return branch
}

// TestRealBlockHeader feeds a mining.notify made from a real block (its
// coinbase split around 8 bytes of its scriptSig, standing for extranonce1
// and extranonce2) through the miner's parser and header builder and
// expects the real block hash.
func TestRealBlockHeader(t *testing.T) {
	for _, rb := range realBlocks {
		t.Run(rb.file[:16], func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "chain", "testdata", rb.file))
			if err != nil {
				t.Fatal(err)
			}
			var b wire.MsgBlock
			if err := b.Deserialize(bytes.NewReader(raw)); err != nil {
				t.Fatal(err)
			}
			var cb bytes.Buffer
			if err := b.Transactions[0].SerializeNoWitness(&cb); err != nil {
				t.Fatal(err)
			}
			coinbase := cb.Bytes()
			const slot = 4 + 1 + 36 + 1 // the scriptSig's first byte
			if len(b.Transactions[0].TxIn[0].SignatureScript) < 8 {
				t.Fatal("scriptSig too short to split")
			}
			en1, en2 := coinbase[slot:slot+4], coinbase[slot+4:slot+8]

			txids := make([]chainhash.Hash, len(b.Transactions))
			for i, tx := range b.Transactions {
				txids[i] = tx.TxHash()
			}
			branch := []string{}
			for _, h := range stratumBranch(txids) {
				branch = append(branch, hex.EncodeToString(h[:]))
			}
			var prev [32]byte
			for i := 0; i < 32; i += 4 { // stratum's word-swapped prevhash
				p := b.Header.PrevBlock
				prev[i], prev[i+1], prev[i+2], prev[i+3] = p[i+3], p[i+2], p[i+1], p[i]
			}
			params, err := json.Marshal([]any{"real", hex.EncodeToString(prev[:]),
				hex.EncodeToString(coinbase[:slot]), hex.EncodeToString(coinbase[slot+8:]), branch,
				fmt.Sprintf("%08x", uint32(b.Header.Version)), fmt.Sprintf("%08x", b.Header.Bits),
				fmt.Sprintf("%08x", uint32(b.Header.Timestamp.Unix())), true})
			if err != nil {
				t.Fatal(err)
			}
			job, err := parseNotify(params)
			if err != nil {
				t.Fatal(err)
			}
			job.Extranonce1 = en1
			if root := job.MerkleRoot(en2); root != b.Header.MerkleRoot {
				t.Fatalf("merkle root %v, want %v", root, b.Header.MerkleRoot)
			}
			h := job.Hash(en2, job.NTime, b.Header.Nonce, job.Version)
			if h.String() != rb.hash {
				t.Fatalf("hash %v, want %s", h, rb.hash)
			}
			if nt := job.NetworkTarget(); !nt.Meets(&h) {
				t.Fatal("real block does not meet its own nbits")
			}
		})
	}
}
