package payout

import (
	"context"
	"errors"
	"fmt"

	"github.com/stratumd/stratumd/internal/store"
)

// creditMatured credits every matured block, each in its own transaction
// that also moves it to credited.
func (p *Payer) creditMatured(ctx context.Context, lg LedgerRun, rep *Report, note func(error)) error {
	blocks, err := lg.MaturedBlocks(ctx)
	if err != nil {
		return fromStore("credit: list matured", err)
	}
	for _, b := range blocks {
		cb, err := p.creditBlock(ctx, lg, b)
		if err != nil {
			if errors.Is(err, ErrNoShares) {
				note(err)
				continue
			}
			return err
		}
		rep.Credited = append(rep.Credited, cb)
		if err := p.step(StepCredited); err != nil {
			return err
		}
	}
	return nil
}

// creditBlock splits a matured block's reward over its PPLNS window and
// records the split, the credits and the move to credited in one
// transaction: exactly once (ErrConflict if another run credited it).
func (p *Payer) creditBlock(ctx context.Context, lg LedgerRun, b store.Block) (CreditedBlock, error) {
	cb := CreditedBlock{Height: int64(b.Height), Hash: b.Hash, Reward: b.Reward}
	win, err := SelectWindow(ctx, lg, b.LastShare, p.o.PPLNSFactor*b.NetworkDifficulty)
	if err != nil {
		return CreditedBlock{}, fmt.Errorf("credit block %s: %w", cb.Hash, err)
	}
	split, err := SplitReward(cb.Reward, p.o.FeeBPS, win.Weights)
	if err != nil {
		return CreditedBlock{}, fmt.Errorf("credit block %d %s: %w", cb.Height, cb.Hash, err)
	}
	cb.Split, cb.Window, cb.WindowFull = split, win, win.Full()
	credits := make([]store.UserCredit, len(split.Credits))
	for i, c := range split.Credits {
		credits[i] = store.UserCredit{Username: c.Username, Amount: c.Amount, Difficulty: c.Difficulty}
	}
	if err := lg.CreditBlock(ctx, store.BlockCredit{Hash: b.Hash, Reward: split.Reward, FeeBPS: split.FeeBPS,
		PoolFee: split.PoolFee, Remainder: split.Remainder, MinersTotal: split.MinersTotal, PPLNSFactor: p.o.PPLNSFactor,
		WindowTarget: win.Target, WindowCounted: win.Counted, WindowShares: win.Shares, Oldest: win.Oldest,
		Credits: credits}); err != nil {
		return CreditedBlock{}, fromStore("credit block "+cb.Hash, err)
	}
	p.o.Logger.Info("block credited", "height", cb.Height, "hash", cb.Hash, "reward", cb.Reward,
		"users", len(split.Credits), "pool_fee", split.PoolFee, "remainder", split.Remainder, "window_full", cb.WindowFull)
	return cb, nil
}
