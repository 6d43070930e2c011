package embedded

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/chain"
)

// DefaultHeaderFirstTimeout is the default of Config.HeaderFirstTimeout:
// the longest miners work on an empty template on top of a block from a
// peer that the chain has not yet connected.
const DefaultHeaderFirstTimeout = 30 * time.Second

// medianTimeBlocks is the number of blocks whose timestamps give the median
// time past (BIP 113), as btcd's blockchain package counts them.
const medianTimeBlocks = 11

// maxTimeOffset is how far in the future a block's timestamp may be
// (consensus: two hours past the network-adjusted time).
const maxTimeOffset = 2 * time.Hour

// HeaderFirstStats counts header-first job switches since the node started.
type HeaderFirstStats struct {
	// Switched counts blocks from peers whose header moved the templates
	// onto them before validation.
	Switched uint64
	// Connected counts those the chain then connected.
	Connected uint64
	// Reverted counts those the chain did not connect (invalid, or not
	// processed): templates went back to the previous tip.
	Reverted uint64
	// TimedOut counts those not connected within Config.HeaderFirstTimeout.
	TimedOut uint64
	// Skipped counts blocks extending the tip that could not be used
	// header-first: a retarget boundary, testnet's minimum-difficulty rule,
	// no template built yet, or another block already pending.
	Skipped uint64
}

// headerFirst is the state of the header-first job switch: at most one
// block, on top of the validated tip, that templates are built on before
// the chain has connected it. Its methods are safe for concurrent use.
type headerFirst struct {
	mu      sync.Mutex
	pending *pendingBlock
	// last is the last full template Template built. Its version is the
	// empty templates' (computing it again needs the chain's lock, which
	// validation holds), and after a timeout miners go back to it.
	last *chain.Template

	switched, connected, reverted, timedOut, skipped atomic.Uint64
}

// pendingBlock is a block from a peer that templates are built on before
// the chain connects it.
type pendingBlock struct {
	hash   chainhash.Hash
	parent chainhash.Hash
	// tmpl is the empty template on top of the block, CurTime excepted.
	tmpl chain.Template
	// fallback is the last full template on parent, served once the
	// block has timed out while its validation still holds the chain.
	fallback *chain.Template
	timer    *time.Timer
	// timedOut is set, under headerFirst.mu, when the timeout fired.
	timedOut bool
}

// HeaderFirst is the P2P layer's hook for a block from a peer, called
// before the block is handed to the chain. When Config.HeaderFirst is set,
// the node is current, and the block extends the validated tip with a
// valid proof of work, the expected difficulty and a timestamp inside the
// consensus bounds, templates move onto an empty template on top of it at
// once (a chain.NewTip update), while the chain validates it. done must
// be called once the chain has processed the block (or failed to): when
// the block is not then in the best chain, templates go back to the
// previous tip at once (another NewTip). A block not connected within
// Config.HeaderFirstTimeout sends templates back to the previous tip too,
// to the last full template on it while validation still runs. Only one
// block is ever pending: never more than one unvalidated block deep.
//
// It takes no lock of the chain's but IsCurrent's, so it never waits for a
// validation in progress on a node that is current. done is never nil.
func (n *Node) HeaderFirst(b *btcutil.Block) (done func()) {
	nothing := func() {}
	if !n.cfg.HeaderFirst || !n.IsCurrent() {
		return nothing
	}
	best := n.chain.BestSnapshot()
	if b.MsgBlock().Header.PrevBlock != best.Hash {
		return nothing
	}
	hf := &n.hf
	hf.mu.Lock()
	defer hf.mu.Unlock()
	last := hf.last
	if hf.pending != nil || last == nil || last.PrevHash != best.Hash {
		hf.skipped.Add(1)
		return nothing
	}
	tmpl, ok := n.emptyTemplateOn(b, best, last.Version)
	if !ok {
		hf.skipped.Add(1)
		return nothing
	}
	p := &pendingBlock{hash: *b.Hash(), parent: best.Hash, tmpl: tmpl, fallback: last}
	p.timer = time.AfterFunc(n.cfg.HeaderFirstTimeout, func() { n.headerFirstTimeout(p) })
	hf.pending = p
	hf.switched.Add(1)
	n.log.Debug("header-first: mining on a block from a peer before validating it",
		"height", tmpl.Height-1, "hash", p.hash)
	n.notifier.Notify(chain.Update{Kind: chain.NewTip, Height: tmpl.Height - 1, Tip: p.hash})
	return func() { n.headerFirstDone(p) }
}

// emptyTemplateOn checks b's header against best, the tip it extends, and
// returns the empty template on top of b with the given block version. It
// reports false when b's header is wrong or the next block's difficulty
// cannot be known without the chain's lock.
func (n *Node) emptyTemplateOn(b *btcutil.Block, best *blockchain.BestState, version int32) (chain.Template, bool) {
	h := &b.MsgBlock().Header
	bits, ok := n.nextBits(best.Height, best.Bits)
	if !ok || h.Bits != bits {
		return chain.Template{}, false
	}
	if blockchain.CheckProofOfWork(b, n.params.PowLimit) != nil {
		return chain.Template{}, false
	}
	if !h.Timestamp.After(best.MedianTime) || h.Timestamp.After(n.cfg.Now().Add(maxTimeOffset)) {
		return chain.Template{}, false
	}
	nextBits, ok := n.nextBits(best.Height+1, h.Bits)
	if !ok {
		return chain.Template{}, false
	}
	mtp, ok := n.medianTimeAfter(best, h.Timestamp)
	if !ok {
		return chain.Template{}, false
	}
	height := best.Height + 2
	return chain.Template{
		Height:        height,
		PrevHash:      *b.Hash(),
		Version:       version,
		Bits:          nextBits,
		MinTime:       mtp.Add(time.Second),
		CoinbaseValue: blockchain.CalcBlockSubsidy(height, n.params),
	}, true
}

// nextBits is the difficulty of the block after the one at height tip,
// whose bits are tipBits, where it can be known from those alone: always on
// networks without retargeting (regtest), otherwise away from a retarget
// boundary on networks without testnet's minimum-difficulty rule.
func (n *Node) nextBits(tip int32, tipBits uint32) (uint32, bool) {
	p := n.params
	if p.PoWNoRetargeting {
		return p.PowLimitBits, true
	}
	perRetarget := int32(p.TargetTimespan / p.TargetTimePerBlock)
	if p.ReduceMinDifficulty || perRetarget <= 0 || (tip+1)%perRetarget == 0 {
		return 0, false
	}
	return tipBits, true
}

// medianTimeAfter is the median time past of the chain best extended by a
// block with timestamp ts: the median of ts and the timestamps of the 10
// blocks up to best's tip, as blockchain.CalcPastMedianTime computes it.
func (n *Node) medianTimeAfter(best *blockchain.BestState, ts time.Time) (time.Time, bool) {
	stamps := make([]int64, 0, medianTimeBlocks)
	stamps = append(stamps, ts.Unix())
	for h := best.Height; h >= 0 && len(stamps) < medianTimeBlocks; h-- {
		hash, err := n.chain.BlockHashByHeight(h)
		if err != nil {
			return time.Time{}, false // a reorganization under us
		}
		hdr, err := n.chain.HeaderByHash(hash)
		if err != nil {
			return time.Time{}, false
		}
		stamps = append(stamps, hdr.Timestamp.Unix())
	}
	slices.Sort(stamps)
	return time.Unix(stamps[len(stamps)/2], 0), true
}

// headerFirstTimeout gives p up when it is still pending and not connected:
// templates go back to the validated tip. p stays pending (serving the
// fallback template) until the P2P layer reports it done.
func (n *Node) headerFirstTimeout(p *pendingBlock) {
	hf := &n.hf
	hf.mu.Lock()
	if hf.pending != p {
		hf.mu.Unlock()
		return
	}
	p.timedOut = true
	hf.mu.Unlock()
	best := n.chain.BestSnapshot() // not MainChainHasBlock: validation may hold the chain
	if best.Hash == p.hash {
		return // connected; done follows
	}
	hf.timedOut.Add(1)
	n.log.Warn("header-first: a block from a peer was not validated in time; back to the validated tip",
		"hash", p.hash, "after", n.cfg.HeaderFirstTimeout, "tip", best.Hash)
	n.notifier.Notify(chain.Update{Kind: chain.NewTip, Height: best.Height, Tip: best.Hash})
}

// headerFirstDone ends p's pending state once the chain has processed the
// block. When the block is not in the best chain, templates go back to the
// tip (unless a timeout already sent them there).
func (n *Node) headerFirstDone(p *pendingBlock) {
	hf := &n.hf
	hf.mu.Lock()
	if hf.pending != p {
		hf.mu.Unlock()
		return
	}
	hf.pending = nil
	timedOut := p.timedOut
	hf.mu.Unlock()
	p.timer.Stop()
	if err := n.acquire(); err != nil {
		return
	}
	defer n.closeMu.RUnlock()
	best := n.chain.BestSnapshot()
	switch {
	case best.Hash == p.hash || n.chain.MainChainHasBlock(&p.hash):
		hf.connected.Add(1)
	case timedOut:
		// Miners are on the fallback template; a fresh one now that the
		// chain is free again.
		n.notifier.Notify(chain.Update{Kind: chain.MempoolChanged, Height: best.Height, Tip: best.Hash})
	default:
		hf.reverted.Add(1)
		n.log.Warn("header-first: the chain did not connect a block from a peer; back to the validated tip",
			"hash", p.hash, "tip", best.Hash)
		n.notifier.Notify(chain.Update{Kind: chain.NewTip, Height: best.Height, Tip: best.Hash})
	}
}

// headerFirstTemplate returns, while the validated tip is still the pending
// block's parent, the empty template on the pending block, or after a
// timeout a copy of the last full template on the parent; otherwise nil.
// It takes no lock of the chain's.
func (n *Node) headerFirstTemplate() *chain.Template {
	hf := &n.hf
	hf.mu.Lock()
	p := hf.pending
	var timedOut bool
	if p != nil {
		timedOut = p.timedOut
	}
	hf.mu.Unlock()
	if p == nil || n.chain.BestSnapshot().Hash != p.parent {
		// Connected (the chain's notification follows, or came) or
		// reorganized away: the full template is built as usual; the
		// pending state ends when the P2P layer reports the block done.
		return nil
	}
	var t chain.Template
	if timedOut {
		t = *p.fallback
		t.Transactions = make([]*btcutil.Tx, len(p.fallback.Transactions))
		for i, tx := range p.fallback.Transactions {
			t.Transactions[i] = btcutil.NewTx(tx.MsgTx())
		}
		t.Fees = slices.Clone(t.Fees)
		t.SigOpCosts = slices.Clone(t.SigOpCosts)
	} else {
		t = p.tmpl
	}
	if now := n.cfg.Now().Truncate(time.Second); now.After(t.CurTime) {
		t.CurTime = now
	}
	if t.CurTime.Before(t.MinTime) {
		t.CurTime = t.MinTime
	}
	return &t
}

// rememberTemplate keeps t, a full template just built, for HeaderFirst.
func (n *Node) rememberTemplate(t *chain.Template) {
	n.hf.mu.Lock()
	n.hf.last = t
	n.hf.mu.Unlock()
}

// stop drops the pending block, if any, and its timer (Close).
func (hf *headerFirst) stop() {
	hf.mu.Lock()
	defer hf.mu.Unlock()
	if hf.pending != nil {
		hf.pending.timer.Stop()
		hf.pending = nil
	}
}

// HeaderFirstStats returns the header-first counters.
func (n *Node) HeaderFirstStats() HeaderFirstStats {
	hf := &n.hf
	return HeaderFirstStats{
		Switched:  hf.switched.Load(),
		Connected: hf.connected.Load(),
		Reverted:  hf.reverted.Load(),
		TimedOut:  hf.timedOut.Load(),
		Skipped:   hf.skipped.Load(),
	}
}
