package chain

import (
	"bytes"
	"errors"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

func TestSoloSplit(t *testing.T) {
	const maxSat = btcutil.MaxSatoshi
	for _, tc := range []struct {
		value      int64
		bps        int
		miner, fee int64
	}{
		{value: 5_000_000_000, bps: 0, miner: 5_000_000_000, fee: 0},
		{value: 5_000_000_000, bps: 100, miner: 4_950_000_000, fee: 50_000_000},
		// The fee rounds down; the remainder satoshi goes to the miner.
		{value: 312_512_345, bps: 150, miner: 307_824_660, fee: 4_687_685}, // 4,687,685.175
		{value: 9_999, bps: 1, miner: 9_999, fee: 0},                       // 0.9999
		{value: 10_000, bps: 1, miner: 9_999, fee: 1},
		{value: 1, bps: 9_999, miner: 1, fee: 0},
		{value: 0, bps: 500, miner: 0, fee: 0},
		// value × bps overflows 64 bits (2.1e15 × 9,999 > 1.8e19): no wrap.
		{value: maxSat, bps: 9_999, miner: maxSat - maxSat/10_000*9_999, fee: maxSat / 10_000 * 9_999},
		{value: maxSat, bps: 10_000, miner: 0, fee: maxSat},
		{value: maxSat, bps: 20_000, miner: 0, fee: maxSat}, // clamped to 100 %
		{value: 1_000, bps: -5, miner: 1_000, fee: 0},
	} {
		miner, fee := SoloSplit(tc.value, tc.bps)
		if miner != tc.miner || fee != tc.fee || miner+fee != tc.value {
			t.Errorf("SoloSplit(%d, %d) = %d, %d; want %d, %d", tc.value, tc.bps, miner, fee, tc.miner, tc.fee)
		}
	}
}

func TestNewSoloJob(t *testing.T) {
	minerScript := append([]byte{0x00, 0x14}, bytes.Repeat([]byte{0xcd}, 20)...)
	tmpl := smallTemplate(300, fakeTx(1, false), fakeTx(2, true))
	cfg := testConfig()
	base, err := NewJob("b", tmpl, cfg)
	if err != nil {
		t.Fatal(err)
	}
	en1, en2 := []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8, 9, 10, 11, 12}
	for _, tc := range []struct {
		name string
		bps  int
		outs int // payout outputs before the commitment
	}{
		{"no fee", 0, 1},
		{"2 % fee", 200, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := NewSoloJob(base, cfg, SoloPayout{MinerScript: minerScript, FeeScript: cfg.PayoutScript, FeeBPS: tc.bps})
			if err != nil {
				t.Fatal(err)
			}
			// Only the coinbase differs from the base job.
			if &j.MerkleBranch[0] != &base.MerkleBranch[0] || j.Template != base.Template || j.ID != base.ID {
				t.Fatal("the solo job does not share the base job's template work")
			}
			if bytes.Equal(j.Coinb2, base.Coinb2) {
				t.Fatal("the solo coinbase is the pool's")
			}
			cb := assembledCoinbase(t, j, en1, en2)
			if len(cb.TxOut) != tc.outs+1 {
				t.Fatalf("%d outputs, want %d and the commitment", len(cb.TxOut), tc.outs)
			}
			miner, fee := SoloSplit(tmpl.CoinbaseValue, tc.bps)
			if !bytes.Equal(cb.TxOut[0].PkScript, minerScript) || cb.TxOut[0].Value != miner {
				t.Fatalf("output 0 pays %d to %x, want %d to the miner", cb.TxOut[0].Value, cb.TxOut[0].PkScript, miner)
			}
			if tc.outs == 2 && (!bytes.Equal(cb.TxOut[1].PkScript, cfg.PayoutScript) || cb.TxOut[1].Value != fee || fee == 0) {
				t.Fatalf("output 1 pays %d to %x, want fee %d to the pool", cb.TxOut[1].Value, cb.TxOut[1].PkScript, fee)
			}
			if !bytes.Equal(cb.TxOut[tc.outs].PkScript, base.WitnessCommitment) {
				t.Fatal("the witness commitment is not the last output")
			}
			// The assembled block is valid where it can be checked offline:
			// the header commits to this coinbase and the witness commitment
			// holds.
			blk, err := j.Block(en1, en2, 1_700_000_100, 7, 0x20000000)
			if err != nil {
				t.Fatal(err)
			}
			b := btcutil.NewBlock(blk)
			if err := blockchain.ValidateWitnessCommitment(b); err != nil {
				t.Fatal(err)
			}
			if got, want := blk.Header.MerkleRoot, blockchain.CalcMerkleRoot(b.Transactions(), false); got != want {
				t.Fatalf("merkle root %s, want %s", got, want)
			}
			if h, _ := j.Hash(en1, en2, 1_700_000_100, 7, 0x20000000); h != blk.BlockHash() {
				t.Fatal("Hash differs from the block's hash")
			}
			if h, _ := base.Hash(en1, en2, 1_700_000_100, 7, 0x20000000); h == blk.BlockHash() {
				t.Fatal("the pool job hashes a solo solution the same")
			}
		})
	}
}

func TestNewSoloJobErrors(t *testing.T) {
	cfg := testConfig()
	base, err := NewJob("b", smallTemplate(300), cfg)
	if err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.Extranonce2Size = 4
	for name, tc := range map[string]struct {
		cfg CoinbaseConfig
		p   SoloPayout
	}{
		"no miner script":  {cfg, SoloPayout{FeeScript: p2wpkh}},
		"fee of 100 %":     {cfg, SoloPayout{MinerScript: p2wpkh, FeeScript: p2wpkh, FeeBPS: 10_000}},
		"negative fee":     {cfg, SoloPayout{MinerScript: p2wpkh, FeeScript: p2wpkh, FeeBPS: -1}},
		"fee, no script":   {cfg, SoloPayout{MinerScript: p2wpkh, FeeBPS: 1}},
		"other extranonce": {other, SoloPayout{MinerScript: p2wpkh}},
	} {
		if _, err := NewSoloJob(base, tc.cfg, tc.p); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestNewSoloJobSplice: the spliced Coinb2 is byte for byte what
// serializing the whole solo coinbase gives, with and without a witness
// commitment, fee output, tag or long scripts; a base built under another
// payout script (the splice's check fails) is rebuilt whole.
func TestNewSoloJobSplice(t *testing.T) {
	long := bytes.Repeat([]byte{txscript.OP_TRUE}, 300) // a 3-byte script length
	p2wsh := append([]byte{0x00, 0x20}, bytes.Repeat([]byte{0xee}, 32)...)
	for _, tc := range []struct {
		name    string
		witness bool
		tag     string
		pool    []byte
		miner   []byte
		bps     int
	}{
		{"plain", false, "/stratumd/", p2wpkh, p2wsh, 0},
		{"fee", false, "/stratumd/", p2wpkh, p2wsh, 1},
		{"witness and fee", true, "/stratumd/", p2wpkh, p2wsh, 9_999},
		{"no tag", true, "", p2wsh, p2wpkh, 50},
		{"long scripts", true, "/x/", long, long, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := smallTemplate(70_000, fakeTx(1, false), fakeTx(2, tc.witness))
			cfg := testConfig()
			cfg.Tag, cfg.PayoutScript = tc.tag, tc.pool
			base, err := NewJob("s", tmpl, cfg)
			if err != nil {
				t.Fatal(err)
			}
			p := SoloPayout{MinerScript: tc.miner, FeeScript: tc.pool, FeeBPS: tc.bps}
			j, err := NewSoloJob(base, cfg, p)
			if err != nil {
				t.Fatal(err)
			}
			miner, fee := SoloSplit(tmpl.CoinbaseValue, tc.bps)
			outs := []*wire.TxOut{wire.NewTxOut(miner, tc.miner)}
			if fee > 0 {
				outs = append(outs, wire.NewTxOut(fee, tc.pool))
			}
			c1, c2, err := buildCoinbase(tmpl, cfg, outs, base.WitnessCommitment)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(j.Coinb1, c1) || !bytes.Equal(j.Coinb2, c2) || &j.Coinb1[0] != &base.Coinb1[0] {
				t.Fatalf("spliced coinbase %x|%x, whole %x|%x (coinb1 shared: %v)", j.Coinb1, j.Coinb2, c1, c2, &j.Coinb1[0] == &base.Coinb1[0])
			}

			// A base of another payout script: rebuilt whole, still right.
			other := cfg
			other.PayoutScript = p2wsh[:len(p2wsh)-1]
			j2, err := NewSoloJob(base, other, SoloPayout{MinerScript: tc.miner, FeeScript: other.PayoutScript, FeeBPS: tc.bps})
			if err != nil {
				t.Fatal(err)
			}
			cb := assembledCoinbase(t, j2, make([]byte, 4), make([]byte, 8))
			if !bytes.Equal(cb.TxOut[0].PkScript, tc.miner) || cb.TxOut[0].Value != miner {
				t.Fatalf("rebuilt coinbase pays %d to %x", cb.TxOut[0].Value, cb.TxOut[0].PkScript)
			}
		})
	}
}
