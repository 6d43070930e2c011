package embedded

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/mining"

	"github.com/stratumd/stratumd/internal/chain"
)

// templateAttempts is how often Template rebuilds when the tip moves while
// btcd's generator works.
const templateAttempts = 3

// Template implements chain.Source: btcd's block template generator on the
// current tip and mempool, with its coinbase discarded. CoinbaseValue is the
// generator's coinbase output (subsidy plus fees), MinTime is the tip's
// median time past plus one second, CurTime is the generator's header time
// (the clock, at least MinTime), Version carries the BIP9 signalling bits.
// Transactions are fresh *btcutil.Tx wrappers on every call. When the
// transactions' sigop cost would leave less than 400 for the pool's
// coinbase, trailing transactions are dropped (with their fees).
//
// It fails with chain.ErrNotSynced while the chain is not current (never on
// regtest or simnet) and with chain.ErrClosed after Close.
func (n *Node) Template(ctx context.Context) (*chain.Template, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := n.acquire(); err != nil {
		return nil, err
	}
	defer n.closeMu.RUnlock()
	if t := n.headerFirstTemplate(); t != nil {
		return t, nil
	}
	if !n.IsCurrent() {
		best := n.chain.BestSnapshot()
		return nil, fmt.Errorf("%w: best height %d, tip %s", chain.ErrNotSynced, best.Height, best.Hash)
	}

	n.tmplMu.Lock()
	defer n.tmplMu.Unlock()
	for attempt := 1; ; attempt++ {
		bt, err := n.gen.NewBlockTemplate(nil)
		best := n.chain.BestSnapshot()
		if err == nil && bt.Block.Header.PrevBlock == best.Hash {
			t, err := buildTemplate(bt, best)
			if err == nil {
				n.rememberTemplate(t)
			}
			return t, err
		}
		// The tip moved while the generator worked (a block came in
		// through another path): build again on the new tip.
		var rerr blockchain.RuleError
		tipMoved := err == nil || (errors.As(err, &rerr) && rerr.ErrorCode == blockchain.ErrPrevBlockNotBest)
		if !tipMoved || attempt == templateAttempts {
			if err == nil {
				err = fmt.Errorf("tip moved during %d attempts", attempt)
			}
			return nil, fmt.Errorf("embedded: build template on %s: %w", best.Hash, err)
		}
	}
}

// buildTemplate turns btcd's block template, built on best, into a
// chain.Template: without the generator's coinbase, with fresh transaction
// wrappers, trimmed to leave coinbaseSigOpReserve of sigop cost.
func buildTemplate(bt *mining.BlockTemplate, best *blockchain.BestState) (*chain.Template, error) {
	txs := bt.Block.Transactions
	if len(txs) == 0 || len(txs[0].TxOut) == 0 || len(bt.Fees) != len(txs) || len(bt.SigOpCosts) != len(txs) {
		return nil, fmt.Errorf("embedded: generator returned a malformed template (%d txs, %d fees, %d sigop costs)",
			len(txs), len(bt.Fees), len(bt.SigOpCosts))
	}
	h := &bt.Block.Header
	t := &chain.Template{
		Height:        bt.Height,
		PrevHash:      h.PrevBlock,
		Version:       h.Version,
		Bits:          h.Bits,
		MinTime:       best.MedianTime.Add(time.Second),
		CurTime:       h.Timestamp,
		CoinbaseValue: txs[0].TxOut[0].Value,
	}
	rest := txs[1:]
	fees := slices.Clone(bt.Fees[1:])
	sigOps := slices.Clone(bt.SigOpCosts[1:])

	// Dropping from the end never breaks a dependency: a transaction only
	// spends outputs of transactions before it.
	var total int64
	for _, c := range sigOps {
		total += c
	}
	for total > blockchain.MaxBlockSigOpsCost-coinbaseSigOpReserve && len(rest) > 0 {
		last := len(rest) - 1
		total -= sigOps[last]
		t.CoinbaseValue -= fees[last]
		rest, fees, sigOps = rest[:last], fees[:last], sigOps[:last]
	}

	t.Transactions = make([]*btcutil.Tx, len(rest))
	for i, tx := range rest {
		t.Transactions[i] = btcutil.NewTx(tx)
	}
	t.Fees = fees
	t.SigOpCosts = sigOps
	return t, nil
}
