package payout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/store"
)

// Block lifecycle: a found block is classified from the node's best chain
// (confirmed, matured, orphaned) by every payout run, and between runs
// stratumd's OrphanWatcher marks the blocks that left the best chain.

func (p *Payer) maturity() int64 { return int64(p.o.Params.CoinbaseMaturity) + p.o.MaturityMargin }

// classify asks the node about every block that is not final yet
// (submitted, confirmed, matured, and orphaned ones still young enough to
// come back in a reorganization) and records what changed.
func (p *Payer) classify(ctx context.Context, lg LedgerRun, rep *Report) error {
	blocks, err := lg.UnsettledBlocks(ctx)
	if err != nil {
		return fromStore("classify: list blocks", err)
	}
	if len(blocks) == 0 {
		return nil
	}
	best, err := p.node.BestHeight(ctx)
	if err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	for _, b := range blocks {
		height := int64(b.Height)
		if height > best {
			continue // the node is behind; ask again next run
		}
		confs := best - height + 1
		if b.Status == store.BlockOrphaned && confs > p.maturity() {
			continue // final
		}
		h, err := p.node.BlockHash(ctx, height)
		if err != nil {
			return fmt.Errorf("classify block %s: %w", b.Hash, err)
		}
		to, reason := store.BlockOrphaned, fmt.Sprintf("best chain has %s at height %d", h, height)
		if h.String() == b.Hash {
			to, reason = store.BlockConfirmed, fmt.Sprintf("%d confirmations", confs)
			if confs >= p.maturity() {
				to = store.BlockMatured
			}
		}
		if to == b.Status {
			continue
		}
		if err := lg.MoveBlock(ctx, b.Hash, b.Status, to, reason); err != nil {
			return fromStore("classify block "+b.Hash, err)
		}
		p.o.Logger.Info("block status", "height", height, "hash", b.Hash, "from", b.Status, "to", to, "confirmations", confs)
		rep.Blocks = append(rep.Blocks, BlockChange{Height: height, Hash: b.Hash, From: string(b.Status), To: string(to), Confirmations: confs})
	}
	return nil
}

// OrphanStore is what OrphanWatcher needs of the store; *store.Store
// implements it.
type OrphanStore interface {
	// Blocks returns the newest blocks in the given statuses.
	Blocks(ctx context.Context, limit int, statuses ...store.BlockStatus) ([]store.Block, error)
	// SetBlockStatus moves a block to status, only from one of from.
	SetBlockStatus(ctx context.Context, hash string, status store.BlockStatus, reason string, from ...store.BlockStatus) error
}

// MainChain is what OrphanWatcher needs of an in-process node.
type MainChain interface {
	BestHeight() int32
	MainChainHas(hash *chainhash.Hash) bool
}

// OrphanWatcher marks the pool's blocks that left the best chain (a
// competing chain won, or a reorganization replaced them) as orphaned, so
// that the blocks table tells the truth between payout runs. stratumd runs
// one next to its embedded node. A payout run classifies every block again
// from the node before crediting anything, and moves a block back if a
// later reorganization restores it; only blocks still submitted or
// confirmed are watched, so a block payout matured or credited is never
// touched here.
type OrphanWatcher struct {
	Store    OrphanStore
	Chain    MainChain
	Logger   *slog.Logger  // nil: slog.Default()
	Interval time.Duration // between checks; 0: 2 s
}

// Run checks every Interval until ctx ends; a failed check is logged and
// retried at the next tick. It returns nil when ctx ends.
func (w *OrphanWatcher) Run(ctx context.Context) error {
	interval := w.Interval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := w.Check(ctx, log); err != nil && ctx.Err() == nil {
			log.Warn("orphan check failed; will retry", "err", err)
		}
	}
}

// Check looks once at the newest 500 blocks that are submitted or
// confirmed and marks those the node's best chain lacks as orphaned.
func (w *OrphanWatcher) Check(ctx context.Context, log *slog.Logger) error {
	blocks, err := w.Store.Blocks(ctx, 500, store.BlockSubmitted, store.BlockConfirmed)
	if err != nil {
		return err
	}
	best := w.Chain.BestHeight()
	for _, b := range blocks {
		if b.Height > best {
			continue // the node has not reached it (yet)
		}
		h, err := chainhash.NewHashFromStr(b.Hash)
		if err != nil || w.Chain.MainChainHas(h) {
			continue
		}
		err = w.Store.SetBlockStatus(ctx, b.Hash, store.BlockOrphaned, "not in the node's best chain",
			store.BlockSubmitted, store.BlockConfirmed)
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
		if err == nil {
			log.Warn("pool block orphaned", "height", b.Height, "hash", b.Hash, "finder", b.Username)
		}
	}
	return nil
}
