package miner

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/goleak"

	"github.com/stratumd/stratumd/internal/chain/chaintest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testNow is the fixed clock of the fake chain and pool.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// hardBits is a network target no test share meets (difficulty 1).
const hardBits = 0x1d00ffff

// witnessTx is a fake segwit transaction; its outpoint need not exist.
func witnessTx(seed byte) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	in := wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{seed, 1}, 0), nil, nil)
	in.Witness = wire.TxWitness{bytes.Repeat([]byte{seed}, 72), bytes.Repeat([]byte{2}, 33)}
	tx.AddTxIn(in)
	tx.AddTxOut(wire.NewTxOut(10_000, append([]byte{0x00, 0x14}, bytes.Repeat([]byte{seed}, 20)...)))
	return tx
}

// newPool starts a FakePool on a regtest chaintest source whose mempool
// holds txs segwit transactions (so jobs have a merkle branch and a witness
// commitment) and whose bits are bits.
func newPool(t *testing.T, cfg PoolConfig, bits uint32, txs int) (*FakePool, *chaintest.Source) {
	t.Helper()
	src := chaintest.New(&chaincfg.RegressionNetParams)
	src.Now = func() time.Time { return testNow }
	src.SetBits(bits)
	for i := range txs {
		src.AddTxFee(witnessTx(byte(i+1)), 1000)
	}
	cfg.Source = src
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	p, err := NewFakePool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		src.Close()
	})
	return p, src
}

// dial connects a Miner to p and closes it at cleanup.
func dial(t *testing.T, ctx context.Context, p *FakePool, opts Options) *Miner {
	t.Helper()
	m, err := Dial(ctx, p.Addr(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
