package chain

import (
	"bytes"
	"errors"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"
)

// mine rolls the nonce until the job's hash meets its target.
func mine(t *testing.T, j *Job, en1, en2 []byte, ntime uint32, version int32) uint32 {
	t.Helper()
	for nonce := uint32(0); nonce < 1_000_000; nonce++ {
		h, _ := j.Hash(en1, en2, ntime, nonce, version)
		if j.Target.Meets(&h) {
			return nonce
		}
	}
	t.Fatal("no nonce found")
	return 0
}

// TestBlockAssembly builds jobs from real blocks' transactions on regtest
// difficulty, solves them, and checks the assembled blocks with btcd's
// CheckBlockSanity and ValidateWitnessCommitment.
func TestBlockAssembly(t *testing.T) {
	tests := []struct {
		file    string
		height  int32
		witness bool
	}{
		{"block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk", 574200, true},
		{"block-00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab.blk", 540107, true},
		{"block-277647.dat.bz2", 277647, false},
	}
	params := &chaincfg.RegressionNetParams
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			tmpl := templateFromBlock(loadBlock(t, tc.file), tc.height)
			tmpl.Bits = params.PowLimitBits
			if tmpl.HasWitness() != tc.witness {
				t.Fatalf("HasWitness %v", tmpl.HasWitness())
			}
			job, err := NewJob("b", tmpl, testConfig())
			if err != nil {
				t.Fatal(err)
			}
			if (job.WitnessCommitment != nil) != tc.witness {
				t.Fatalf("commitment %x, witness %v", job.WitnessCommitment, tc.witness)
			}
			en1 := []byte{0xde, 0xad, 0xbe, 0xef}
			en2 := []byte{1, 2, 3, 4, 5, 6, 7, 8}
			ntime := uint32(tmpl.CurTime.Unix()) + 1
			version := tmpl.Version | 0x00ffe000 // rolled bits
			nonce := mine(t, job, en1, en2, ntime, version)

			msg, err := job.Block(en1, en2, ntime, nonce, version)
			if err != nil {
				t.Fatal(err)
			}
			hash, hdr := job.Hash(en1, en2, ntime, nonce, version)
			forHdr := job.HeaderFor(en1, en2, ntime, nonce, version)
			if msg.BlockHash() != hash || forHdr.BlockHash() != hash ||
				hdr.BlockHash() != hash {
				t.Fatalf("block hash %v, Hash %v", msg.BlockHash(), hash)
			}
			if msg.Header.Version != version || uint32(msg.Header.Timestamp.Unix()) != ntime || msg.Header.Nonce != nonce {
				t.Fatalf("header %+v", msg.Header)
			}
			if len(msg.Transactions) != len(tmpl.Transactions)+1 {
				t.Fatalf("%d transactions, want %d", len(msg.Transactions), len(tmpl.Transactions)+1)
			}

			blk := btcutil.NewBlock(msg)
			if err := blockchain.CheckBlockSanity(blk, params.PowLimit, blockchain.NewMedianTime()); err != nil {
				t.Fatalf("CheckBlockSanity: %v", err)
			}
			if err := blockchain.ValidateWitnessCommitment(blk); err != nil {
				t.Fatalf("ValidateWitnessCommitment: %v", err)
			}
			if h, err := blockchain.ExtractCoinbaseHeight(blk.Transactions()[0]); err != nil || h != tc.height {
				t.Fatalf("coinbase height %d, %v", h, err)
			}
			wit := msg.Transactions[0].TxIn[0].Witness
			if tc.witness {
				if len(wit) != 1 || !bytes.Equal(wit[0], make([]byte, 32)) {
					t.Fatalf("coinbase witness %x, want one 32-byte zero item", wit)
				}
				if blockchain.GetBlockWeight(blk) > blockchain.MaxBlockWeight {
					t.Fatalf("weight %d", blockchain.GetBlockWeight(blk))
				}
			} else if len(wit) != 0 || blk.MsgBlock().Transactions[0].HasWitness() {
				t.Fatalf("non-witness block has witness data")
			}

			// The block survives a serialization round trip with its
			// witnesses and hash.
			var buf bytes.Buffer
			if err := msg.Serialize(&buf); err != nil {
				t.Fatal(err)
			}
			var back wire.MsgBlock
			if err := back.Deserialize(&buf); err != nil {
				t.Fatal(err)
			}
			if back.BlockHash() != hash || len(back.Transactions) != len(msg.Transactions) ||
				back.Transactions[1].WitnessHash() != msg.Transactions[1].WitnessHash() {
				t.Fatal("round trip changed the block")
			}
		})
	}
}

func TestBlockExtranonceSize(t *testing.T) {
	job, err := NewJob("x", smallTemplate(10), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range [][2][]byte{
		{make([]byte, 3), make([]byte, 8)},
		{make([]byte, 4), make([]byte, 9)},
		{nil, nil},
	} {
		if _, err := job.Block(en[0], en[1], 0, 0, 1); !errors.Is(err, ErrExtranonceSize) {
			t.Errorf("en %d+%d: err %v", len(en[0]), len(en[1]), err)
		}
	}
}
