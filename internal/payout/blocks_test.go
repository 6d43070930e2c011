package payout

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

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

// TestOrphanWatcherCheck: a submitted or confirmed block the node's best
// chain lacks is orphaned; one on the chain, one above the node's tip and
// a matured one are left alone.
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
	for hash, want := range map[string]store.BlockStatus{kept: store.BlockConfirmed, gone: store.BlockOrphaned,
		gone2: store.BlockOrphaned, ahead: store.BlockSubmitted, matured: store.BlockMatured} {
		if b, err := st.BlockByHash(ctx, hash); err != nil || b.Status != want {
			t.Errorf("block %d: %s, want %s (%v)", b.Height, b.Status, want, err)
		}
	}
}
