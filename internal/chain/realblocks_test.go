package chain

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// TestRealBlocksRebuildHeader takes real mainnet blocks, splits each real
// coinbase around a byte range standing in for the extranonce, builds the
// merkle branch from the real txids and checks that the header rebuilt by
// Job.Hash/HeaderFor hashes to the real block hash.
func TestRealBlocksRebuildHeader(t *testing.T) {
	for _, rb := range realBlockFiles {
		t.Run(rb.file, func(t *testing.T) {
			b := loadBlock(t, rb.file)
			want := b.BlockHash()
			if rb.hash != "" && want.String() != rb.hash {
				t.Fatalf("fixture hash %v, file name says %s", want, rb.hash)
			}
			var raw bytes.Buffer
			if err := b.Transactions[0].SerializeNoWitness(&raw); err != nil {
				t.Fatal(err)
			}
			cb := raw.Bytes()
			txids := make([]chainhash.Hash, 0, len(b.Transactions)-1)
			for _, tx := range b.Transactions[1:] {
				txids = append(txids, tx.TxHash())
			}
			job := &Job{
				Template:     &Template{PrevHash: b.Header.PrevBlock, Bits: b.Header.Bits},
				MerkleBranch: merkleBranch(txids),
			}
			// The extranonce stand-in inside the scriptSig (after its first
			// byte), at the very start and at the very end of the coinbase.
			scriptStart := scriptSigOffset
			splits := [][3]int{
				{scriptStart + 1, 2, 4},
				{0, 1, 1},
				{len(cb) - 3, 1, 2},
				{len(cb) / 2, 8, 8},
			}
			for _, s := range splits {
				at, n1, n2 := s[0], s[1], s[2]
				job.Coinb1 = cb[:at]
				en1, en2 := cb[at:at+n1], cb[at+n1:at+n1+n2]
				job.Coinb2 = cb[at+n1+n2:]
				job.Extranonce1Size, job.Extranonce2Size = n1, n2

				ts := uint32(b.Header.Timestamp.Unix())
				got, hdr := job.Hash(en1, en2, ts, b.Header.Nonce, b.Header.Version)
				if got != want {
					t.Fatalf("split %v: hash %v, want %v", s, got, want)
				}
				if hdr.MerkleRoot != b.Header.MerkleRoot {
					t.Fatalf("split %v: merkle root %v, want %v", s, hdr.MerkleRoot, b.Header.MerkleRoot)
				}
				if h := job.HeaderFor(en1, en2, ts, b.Header.Nonce, b.Header.Version); h.BlockHash() != want {
					t.Fatalf("split %v: HeaderFor hash %v, want %v", s, h.BlockHash(), want)
				}
			}

			// The real hash meets the real bits, and its difficulty is at
			// least the target's.
			target := blockchain.CompactToBig(b.Header.Bits)
			if !HashMeetsTarget(&want, target) || !NewTarget(target).Meets(&want) {
				t.Fatalf("real hash %v does not meet its bits %08x", want, b.Header.Bits)
			}
			if hd, td := HashDifficulty(want), TargetDifficulty(target); hd < td {
				t.Fatalf("hash difficulty %v below target difficulty %v", hd, td)
			}
		})
	}
}

// TestRealBlocksWitnessCommitment recomputes the witness commitment of real
// segwit blocks from their wtxids and compares it with the real coinbase's
// commitment output.
func TestRealBlocksWitnessCommitment(t *testing.T) {
	for _, rb := range realBlockFiles {
		if !rb.segwit {
			continue
		}
		t.Run(rb.file, func(t *testing.T) {
			b := loadBlock(t, rb.file)
			if len(b.Transactions) < 100 {
				t.Fatalf("want a block with many transactions, got %d", len(b.Transactions))
			}
			blk := btcutil.NewBlock(b)
			realCommit, ok := blockchain.ExtractWitnessCommitment(blk.Transactions()[0])
			if !ok {
				t.Fatal("real coinbase has no witness commitment")
			}
			wit := b.Transactions[0].TxIn[0].Witness
			if len(wit) != 1 || len(wit[0]) != 32 {
				t.Fatalf("real coinbase witness %x", wit)
			}
			var reserved [32]byte
			copy(reserved[:], wit[0])

			txs := blk.Transactions()[1:]
			got := witnessCommitment(txs, reserved)
			if !bytes.Equal(got[:], realCommit) {
				t.Fatalf("commitment %x, real %x", got[:], realCommit)
			}
			script := witnessCommitmentScript(got)
			found := false
			for _, out := range b.Transactions[0].TxOut {
				if len(out.PkScript) >= len(script) && bytes.Equal(out.PkScript[:len(script)], script) {
					found = true
				}
			}
			if !found {
				t.Fatalf("commitment script %x not among the real outputs", script)
			}

			// NewJob on a template of the block's transactions commits
			// to the same wtxids (the real reserved value is zero).
			if reserved != ([32]byte{}) {
				t.Skip("real reserved value is not zero")
			}
			height, err := blockchain.ExtractCoinbaseHeight(blk.Transactions()[0])
			if err != nil {
				t.Fatal(err)
			}
			job, err := NewJob("1", templateFromBlock(b, height), CoinbaseConfig{
				PayoutScript: []byte{0x51}, Tag: "/t/", Extranonce1Size: 4, Extranonce2Size: 8,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(job.WitnessCommitment, script) {
				t.Fatalf("job commitment %x, want %x", job.WitnessCommitment, script)
			}
		})
	}
}
