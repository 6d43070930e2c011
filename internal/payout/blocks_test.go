package payout

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
)

type fakeMainChain struct {
	best int32
	main map[chainhash.Hash]bool
}

func (c *fakeMainChain) BestHeight() int32                   { return c.best }
func (c *fakeMainChain) MainChainHas(h *chainhash.Hash) bool { return c.main[*h] }

// TestOrphanWatcherCheck: a confirmed block the node's best chain lacks is
// orphaned; one on the chain, one above the node's tip, a matured one and a
// submitted one (the resubmitter's until the chain is store.GiveUpDepth past
// it) are left alone.
func TestOrphanWatcherCheck(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	ctx := context.Background()
	chain := &fakeMainChain{best: 30, main: map[chainhash.Hash]bool{}}
	insert := func(height int32, status store.BlockStatus, onChain bool) string {
		h := blockHash(int64(height))
		if onChain {
			chain.main[h] = true
		}
		if _, err := st.InsertBlock(ctx, store.Block{Height: height, Hash: h.String(), PrevHash: strings.Repeat("0", 64),
			FoundAt: t0, Username: "u", Worker: "w", Reward: 1, NetworkDifficulty: 1, Status: status,
			LastShare: store.SharePos{Time: t0, Seq: uint64(height)}}); err != nil {
			t.Fatal(err)
		}
		return h.String()
	}
	kept := insert(10, store.BlockConfirmed, true)
	gone := insert(20, store.BlockSubmitted, false)
	gone2 := insert(21, store.BlockConfirmed, false)
	ahead := insert(40, store.BlockSubmitted, false)
	matured := insert(22, store.BlockMatured, false)
	w := &OrphanWatcher{Store: st, Chain: chain}
	if err := w.Check(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	for hash, want := range map[string]store.BlockStatus{kept: store.BlockConfirmed, gone: store.BlockSubmitted,
		gone2: store.BlockOrphaned, ahead: store.BlockSubmitted, matured: store.BlockMatured} {
		if b, err := st.BlockByHash(ctx, hash); err != nil || b.Status != want {
			t.Errorf("block %d: %s, want %s (%v)", b.Height, b.Status, want, err)
		}
	}
}

// TestClassifyLeavesSubmittedToResubmitter: a submitted block the node's
// best chain lacks stays submitted while the chain is fewer than
// store.GiveUpDepth blocks past its height (stratumd's resubmitter still
// hands it to the node) and is orphaned from that depth on; a confirmed
// block the chain lacks is orphaned at once.
func TestClassifyLeavesSubmittedToResubmitter(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	ctx := context.Background()
	node := &fakeNode{best: 100 + store.GiveUpDepth - 1, hashes: map[int64]chainhash.Hash{}}
	for i := int64(1); i <= 200; i++ {
		node.hashes[i] = blockHash(i)
	}
	insert := func(height int32, status store.BlockStatus) string {
		h := blockHash(int64(height) + 5000) // not the chain's block at that height
		if _, err := st.InsertBlock(ctx, store.Block{Height: height, Hash: h.String(), PrevHash: strings.Repeat("0", 64),
			FoundAt: t0, Username: "u", Worker: "w", Reward: 1, NetworkDifficulty: 1, Status: status,
			LastShare: store.SharePos{Time: t0, Seq: uint64(height)}}); err != nil {
			t.Fatal(err)
		}
		return h.String()
	}
	young := insert(100, store.BlockSubmitted)
	confirmed := insert(101, store.BlockConfirmed)
	p, err := NewPayer(StoreLedger(st), node, newFakeWallet(&chaincfg.RegressionNetParams), Options{
		Params: &chaincfg.RegressionNetParams, MinPayout: MinPayoutFloor, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	status := func(hash string) store.BlockStatus {
		b, err := st.BlockByHash(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		return b.Status
	}
	if _, err := p.Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	if s := status(young); s != store.BlockSubmitted {
		t.Errorf("submitted block %d past: %s, want submitted", store.GiveUpDepth-1, s)
	}
	if s := status(confirmed); s != store.BlockOrphaned {
		t.Errorf("confirmed block the chain lacks: %s, want orphaned", s)
	}
	node.best++ // now GiveUpDepth past the submitted block's height
	if _, err := p.Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	if s := status(young); s != store.BlockOrphaned {
		t.Errorf("submitted block %d past: %s, want orphaned", store.GiveUpDepth, s)
	}
}
