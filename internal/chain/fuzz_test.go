package chain

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
)

// FuzzNewJob builds jobs from random heights, tags, extranonce sizes, payout
// scripts, values and transaction mixes; a job that builds must assemble into
// a block whose coinbase is Coinb1||en1||en2||Coinb2, whose hash is Hash's,
// and which passes btcd's coinbase, merkle and witness commitment checks.
func FuzzNewJob(f *testing.F) {
	f.Add(int32(840000), "/stratumd/", uint8(4), uint8(8), []byte{0x51}, int64(312500000), uint8(2), uint8(1), []byte("extranonce-bytes"), uint32(1700000000), uint32(7), int32(0x20000000))
	f.Fuzz(func(t *testing.T, height int32, tag string, en1Size, en2Size uint8, payout []byte,
		value int64, nPlain, nWit uint8, en []byte, ntime, nonce uint32, version int32) {
		var txs []*btcutil.Tx
		for i := range nPlain % 5 {
			txs = append(txs, fakeTx(uint32(i), false))
		}
		for i := range nWit % 5 {
			txs = append(txs, fakeTx(uint32(i)+100, true))
		}
		tmpl := &Template{
			Height: height, Version: version, Bits: 0x207fffff,
			CurTime: time.Unix(int64(ntime), 0), CoinbaseValue: value, Transactions: txs,
		}
		cfg := CoinbaseConfig{PayoutScript: payout, Tag: tag,
			Extranonce1Size: int(en1Size), Extranonce2Size: int(en2Size)}
		job, err := NewJob("f", tmpl, cfg)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) && !errors.Is(err, ErrInvalidTemplate) && !errors.Is(err, ErrCoinbaseTooLong) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		slot := make([]byte, job.Extranonce1Size+job.Extranonce2Size)
		copy(slot, en)
		en1, en2 := slot[:job.Extranonce1Size], slot[job.Extranonce1Size:]

		msg, err := job.Block(en1, en2, ntime, nonce, version)
		if err != nil {
			t.Fatal(err)
		}
		hash, hdr := job.Hash(en1, en2, ntime, nonce, version)
		if msg.BlockHash() != hash || hdr.BlockHash() != hash {
			t.Fatalf("block hash %v, Hash %v", msg.BlockHash(), hash)
		}
		cb := msg.Transactions[0]
		var ser bytes.Buffer
		if err := cb.SerializeNoWitness(&ser); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ser.Bytes(), bytes.Join([][]byte{job.Coinb1, en1, en2, job.Coinb2}, nil)) {
			t.Fatal("coinbase does not round-trip through Coinb1||en||Coinb2")
		}
		if n := len(cb.TxIn[0].SignatureScript); n < 2 || n > 100 {
			t.Fatalf("scriptSig of %d bytes", n)
		}
		if got, err := blockchain.ExtractCoinbaseHeight(btcutil.NewTx(cb)); err != nil || got != height {
			t.Fatalf("coinbase height %d, %v; want %d", got, err, height)
		}
		if cb.TxOut[0].Value != value || !bytes.Equal(cb.TxOut[0].PkScript, payout) {
			t.Fatal("payout output changed")
		}
		blk := btcutil.NewBlock(msg)
		if root := blockchain.CalcMerkleRoot(blk.Transactions(), false); root != msg.Header.MerkleRoot {
			t.Fatalf("merkle root %v, btcd %v", msg.Header.MerkleRoot, root)
		}
		if err := blockchain.CheckTransactionSanity(blk.Transactions()[0]); err != nil {
			t.Fatal(err)
		}
		if (job.WitnessCommitment != nil) != tmpl.HasWitness() {
			t.Fatal("commitment presence differs from HasWitness")
		}
		if err := blockchain.ValidateWitnessCommitment(blk); err != nil {
			t.Fatal(err)
		}
	})
}
