package chaintest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
)

var testCoinbase = chain.CoinbaseConfig{
	PayoutScript:    append([]byte{0x00, 0x14}, bytes.Repeat([]byte{7}, 20)...),
	Tag:             "/chaintest/",
	Extranonce1Size: 4,
	Extranonce2Size: 4,
}

// fixedClock returns a clock that starts at start and moves one second per
// reading.
func fixedClock(start time.Time) func() time.Time {
	t := start
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

// solve builds a job from tmpl and rolls the nonce until the block hash
// meets the target.
func solve(t *testing.T, tmpl *chain.Template, en2 byte) (*wire.MsgBlock, chainhash.Hash) {
	t.Helper()
	job, err := chain.NewJob("j", tmpl, testCoinbase)
	if err != nil {
		t.Fatal(err)
	}
	en1, en2s := []byte{0, 0, 0, 1}, []byte{0, 0, 0, en2}
	ntime := uint32(tmpl.CurTime.Unix())
	for nonce := uint32(0); nonce < 1000; nonce++ {
		h, _ := job.Hash(en1, en2s, ntime, nonce, tmpl.Version)
		if job.Target.Meets(&h) {
			b, err := job.Block(en1, en2s, ntime, nonce, tmpl.Version)
			if err != nil {
				t.Fatal(err)
			}
			return b, h
		}
	}
	t.Fatal("no solution")
	return nil, chainhash.Hash{}
}

func witnessTx(seed byte) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	in := wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{seed, 1}, 0), nil, nil)
	in.Witness = wire.TxWitness{bytes.Repeat([]byte{seed}, 72), bytes.Repeat([]byte{2}, 33)}
	tx.AddTxIn(in)
	tx.AddTxOut(wire.NewTxOut(10_000, testCoinbase.PayoutScript))
	return tx
}

func recv(t *testing.T, s *Source) chain.Update {
	t.Helper()
	select {
	case u, ok := <-s.Updates():
		if !ok {
			t.Fatal("updates closed")
		}
		return u
	default:
		t.Fatal("no update pending")
		return chain.Update{}
	}
}

func TestMineChain(t *testing.T) {
	ctx := context.Background()
	params := &chaincfg.RegressionNetParams
	s := New(params)
	s.Now = fixedClock(time.Unix(1_700_000_000, 0))
	if tip, h := s.Tip(); tip != *params.GenesisHash || h != 0 {
		t.Fatalf("start tip %v at %d", tip, h)
	}

	const fee = 1234
	s.AddTxFee(witnessTx(1), fee)
	if u := recv(t, s); u.Kind != chain.MempoolChanged || u.Tip != *params.GenesisHash {
		t.Fatalf("update %+v", u)
	}

	for i := int32(1); i <= 3; i++ {
		tmpl, err := s.Template(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tip, height := s.Tip()
		if tmpl.Height != height+1 || tmpl.PrevHash != tip || tmpl.Bits != DefaultBits {
			t.Fatalf("template %+v on tip %v/%d", tmpl, tip, height)
		}
		wantValue := blockchain.CalcBlockSubsidy(i, params)
		if i == 1 {
			wantValue += fee
			if len(tmpl.Transactions) != 1 || !tmpl.HasWitness() {
				t.Fatalf("first template should carry the mempool tx")
			}
		} else if len(tmpl.Transactions) != 0 {
			t.Fatalf("block %d: mined tx still in the mempool", i)
		}
		if tmpl.CoinbaseValue != wantValue || tmpl.CurTime.Before(tmpl.MinTime) {
			t.Fatalf("value %d (want %d), times %v / %v", tmpl.CoinbaseValue, wantValue, tmpl.MinTime, tmpl.CurTime)
		}

		b, hash := solve(t, tmpl, byte(i))
		res, err := s.SubmitBlock(ctx, b)
		if err != nil || res.Status != chain.Accepted {
			t.Fatalf("block %d: %+v, %v", i, res, err)
		}
		if tip, h := s.Tip(); tip != hash || h != i {
			t.Fatalf("tip %v/%d, want %v/%d", tip, h, hash, i)
		}
		if u := recv(t, s); u.Kind != chain.NewTip || u.Tip != hash || u.Height != i {
			t.Fatalf("update %+v", u)
		}
	}
	if n := len(s.Submitted()); n != 3 {
		t.Fatalf("%d submitted blocks", n)
	}
	if len(s.Mempool()) != 0 {
		t.Fatal("mempool not emptied by the mined block")
	}
}

func TestSubmitClassification(t *testing.T) {
	ctx := context.Background()
	s := New(&chaincfg.RegressionNetParams)
	s.Now = fixedClock(time.Unix(1_700_000_000, 0))

	tmpl, err := s.Template(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := solve(t, tmpl, 1)
	if res, _ := s.SubmitBlock(ctx, b); res.Status != chain.Accepted {
		t.Fatalf("first: %+v", res)
	}
	if res, _ := s.SubmitBlock(ctx, b); res.Status != chain.Duplicate {
		t.Fatalf("again: %+v", res)
	}
	<-s.Updates()

	// A competing block on the same parent goes to a side chain.
	side, sideHash := solve(t, tmpl, 2)
	if res, _ := s.SubmitBlock(ctx, side); res.Status != chain.Inconclusive {
		t.Fatalf("side: %+v", res)
	}
	if err := s.SetTip(sideHash); err != nil {
		t.Fatal(err)
	}
	if tip, h := s.Tip(); tip != sideHash || h != 1 {
		t.Fatalf("reorg tip %v/%d", tip, h)
	}
	if u := recv(t, s); u.Kind != chain.NewTip || u.Tip != sideHash {
		t.Fatalf("update %+v", u)
	}
	if err := s.SetTip(chainhash.Hash{9}); !errors.Is(err, ErrUnknownBlock) {
		t.Fatalf("SetTip unknown: %v", err)
	}

	tmpl2, err := s.Template(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(name, want string, f func(b *wire.MsgBlock)) {
		t.Helper()
		b, _ := solve(t, tmpl2, 3)
		f(b)
		res, err := s.SubmitBlock(ctx, b)
		if err != nil || res.Status != chain.Rejected || (want != "" && res.Reason != want) {
			t.Fatalf("%s: %+v, %v", name, res, err)
		}
	}
	mutate("unknown parent", "bad-prevblk", func(b *wire.MsgBlock) { b.Header.PrevBlock = chainhash.Hash{1} })
	mutate("bits", "bad-diffbits", func(b *wire.MsgBlock) { b.Header.Bits = 0x1d00ffff })
	mutate("old time", "time-too-old", func(b *wire.MsgBlock) { b.Header.Timestamp = time.Unix(1_000_000_000, 0) })
	mutate("merkle", "", func(b *wire.MsgBlock) { b.Header.MerkleRoot = chainhash.Hash{} })
	mutate("overpay", "bad-cb-amount", func(b *wire.MsgBlock) {
		b.Transactions[0].TxOut[0].Value++
		for n := uint32(0); ; n++ { // re-solve after changing the merkle root
			b.Header.MerkleRoot = blockchain.CalcMerkleRoot(
				[]*btcutil.Tx{btcutil.NewTx(b.Transactions[0])}, false)
			b.Header.Nonce = n
			h := b.BlockHash()
			if blockchain.HashToBig(&h).Cmp(blockchain.CompactToBig(b.Header.Bits)) <= 0 {
				return
			}
		}
	})
	// Nothing above changed the tip.
	if tip, _ := s.Tip(); tip != sideHash {
		t.Fatal("a rejected block moved the tip")
	}
}

func TestAdvanceAndHooks(t *testing.T) {
	ctx := context.Background()
	s := New(&chaincfg.RegressionNetParams)
	s.Now = fixedClock(time.Unix(1_700_000_000, 0))
	s.AddTx(witnessTx(5))
	h1 := s.Advance()
	// Coalesced: the pending MempoolChanged became a NewTip for h1.
	if u := recv(t, s); u.Kind != chain.NewTip || u.Tip != h1 || u.Height != 1 {
		t.Fatalf("update %+v", u)
	}
	tmpl, err := s.Template(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.PrevHash != h1 || tmpl.Height != 2 || len(tmpl.Transactions) != 1 {
		t.Fatalf("template on advanced tip: %+v", tmpl)
	}

	errSync := chain.ErrNotSynced
	s.SetTemplateFunc(func(context.Context) (*chain.Template, error) { return nil, errSync })
	if _, err := s.Template(ctx); !errors.Is(err, chain.ErrNotSynced) {
		t.Fatalf("template hook: %v", err)
	}
	s.SetTemplateFunc(nil)
	if _, err := s.Template(ctx); err != nil {
		t.Fatalf("template hook removed: %v", err)
	}

	want := chain.SubmitResult{Status: chain.Rejected, Reason: "high-hash"}
	s.SetSubmitFunc(func(context.Context, *wire.MsgBlock) (chain.SubmitResult, error) { return want, nil })
	b, _ := solve(t, tmpl, 1)
	if res, err := s.SubmitBlock(ctx, b); err != nil || res != want {
		t.Fatalf("submit hook: %+v %v", res, err)
	}
	if tip, _ := s.Tip(); tip != h1 || len(s.Submitted()) != 1 {
		t.Fatal("hooked submit must record the block but not move the tip")
	}
	s.SetSubmitFunc(nil)

	// A witness block whose coinbase lost its reserved value is rejected.
	b, _ = solve(t, tmpl, 2)
	b.Transactions[0].TxIn[0].Witness = nil
	if res, _ := s.SubmitBlock(ctx, b); res.Status != chain.Rejected {
		t.Fatalf("missing witness reserved value: %+v", res)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Template(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled template: %v", err)
	}
	if _, err := s.SubmitBlock(cctx, b); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled submit: %v", err)
	}

	s.Close()
	s.Close()
	if _, err := s.Template(ctx); !errors.Is(err, chain.ErrClosed) {
		t.Fatalf("template after close: %v", err)
	}
	if _, err := s.SubmitBlock(ctx, b); !errors.Is(err, chain.ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
	for range s.Updates() { // drains what is pending, then ends
	}
	s.AddTx(witnessTx(6)) // no panic after close
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	s := New(&chaincfg.RegressionNetParams)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			s.AddTx(witnessTx(byte(i)))
		}
	}()
	mined := 0
	for mined < 5 {
		tmpl, err := s.Template(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := solve(t, tmpl, byte(mined))
		res, err := s.SubmitBlock(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status == chain.Accepted {
			mined++
		}
	}
	<-done
	if _, h := s.Tip(); h != 5 {
		t.Fatalf("height %d", h)
	}
}

// TestBestChains: the fake node reports its best chain like a real one
// (heights above the tip are absent, a side-chain block is not at its
// height, a reorganization shows), and fails every call while down.
func TestBestChains(t *testing.T) {
	ctx := context.Background()
	s := New(&chaincfg.RegressionNetParams)
	s.Now = fixedClock(time.Unix(1_700_000_000, 0))
	tmpl, err := s.Template(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, hash := solve(t, tmpl, 1)
	side, sideHash := solve(t, tmpl, 2)
	if res, _ := s.SubmitBlock(ctx, b); res.Status != chain.Accepted {
		t.Fatalf("submit: %+v", res)
	}
	if res, _ := s.SubmitBlock(ctx, side); res.Status != chain.Inconclusive {
		t.Fatalf("side: %+v", res)
	}
	tip2 := s.Advance()
	ncs := s.BestChains(ctx, []int32{0, 1, 2, 3, -1})
	if len(ncs) != 1 || ncs[0].Err != nil || ncs[0].Node != NodeName || ncs[0].Height != 2 || len(ncs[0].Hashes) != 3 {
		t.Fatalf("best chains %+v", ncs)
	}
	nc := ncs[0]
	if !nc.Has(hash, 1) || nc.Has(sideHash, 1) || !nc.Has(tip2, 2) || !nc.Has(*chaincfg.RegressionNetParams.GenesisHash, 0) {
		t.Fatalf("hashes %v", nc.Hashes)
	}
	if err := s.SetTip(sideHash); err != nil {
		t.Fatal(err)
	}
	if nc := s.BestChains(ctx, []int32{1, 2})[0]; nc.Height != 1 || !nc.Has(sideHash, 1) || len(nc.Hashes) != 1 {
		t.Fatalf("after the reorganization: %+v", nc)
	}

	down := errors.New("connection refused")
	s.SetDown(down)
	if nc := s.BestChains(ctx, []int32{1})[0]; !errors.Is(nc.Err, down) || nc.Has(sideHash, 1) {
		t.Fatalf("down: %+v", nc)
	}
	if _, err := s.Template(ctx); !errors.Is(err, down) {
		t.Fatalf("template while down: %v", err)
	}
	n := len(s.Submitted())
	if _, err := s.SubmitBlock(ctx, b); !errors.Is(err, down) || len(s.Submitted()) != n+1 {
		t.Fatalf("submit while down: %v", err)
	}
	s.SetDown(nil)
	if res, err := s.SubmitBlock(ctx, b); err != nil || res.Status != chain.Duplicate {
		t.Fatalf("submit when back: %+v %v", res, err)
	}
}
