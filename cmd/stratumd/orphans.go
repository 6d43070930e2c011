package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/store"
)

// mainChain is what the orphan watcher needs of the embedded node.
type mainChain interface {
	BestHeight() int32
	MainChainHas(hash *chainhash.Hash) bool
}

// orphanWatcher marks the pool's confirmed blocks that left the best chain
// (a reorganization replaced them) as orphaned, so that the blocks table
// tells the truth between payout runs. A block still submitted is the
// resubmitter's: it stays submitted, and is handed to the node again, until
// the chain has moved too far past it to win. payout classifies blocks
// again from the node before crediting anything, and moves a block back if
// a later reorganization restores it.
type orphanWatcher struct {
	store    *store.Store
	chain    mainChain
	log      *slog.Logger
	interval time.Duration
}

// Run checks every interval until ctx ends.
func (w *orphanWatcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := w.check(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("orphan check failed; will retry", "err", err)
		}
	}
}

// check looks at the newest confirmed blocks.
func (w *orphanWatcher) check(ctx context.Context) error {
	blocks, err := w.store.Blocks(ctx, 500, store.BlockConfirmed)
	if err != nil {
		return err
	}
	best := w.chain.BestHeight()
	for _, b := range blocks {
		if b.Height > best {
			continue // the node's chain shrank below it: look again later
		}
		h, err := chainhash.NewHashFromStr(b.Hash)
		if err != nil || w.chain.MainChainHas(h) {
			continue
		}
		err = w.store.SetBlockStatus(ctx, b.Hash, store.BlockOrphaned, "not in the node's best chain",
			store.BlockConfirmed)
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
		if err == nil {
			w.log.Warn("pool block orphaned", "height", b.Height, "hash", b.Hash, "finder", b.Username)
		}
	}
	return nil
}
