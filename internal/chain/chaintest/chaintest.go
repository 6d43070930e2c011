package chaintest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
)

// DefaultBits is regtest's proof-of-work limit in compact form; about every
// second hash meets it.
const DefaultBits = 0x207fffff

// DefaultVersion is the block version templates carry.
const DefaultVersion = 0x20000000

// ErrUnknownBlock is returned by SetTip for a hash the fake chain does not
// have.
var ErrUnknownBlock = errors.New("chaintest: unknown block")

// Source is an in-memory chain.Source. It is safe for concurrent use.
//
// The function fields replace the default behaviour when set. Set them
// before the Source is shared with other goroutines, or later with
// SetTemplateFunc and SetSubmitFunc.
type Source struct {
	// TemplateFunc, when set, is called by Template instead of building a
	// template from the fake chain.
	TemplateFunc func(ctx context.Context) (*chain.Template, error)
	// SubmitFunc, when set, decides SubmitBlock's result instead of the
	// fake chain's checks (the block is still recorded in Submitted, but
	// never changes the tip).
	SubmitFunc func(ctx context.Context, b *wire.MsgBlock) (chain.SubmitResult, error)
	// Now is the clock for template times; time.Now when nil.
	Now func() time.Time

	params   *chaincfg.Params
	notifier *chain.Notifier

	mu        sync.Mutex
	bits      uint32
	blocks    map[chainhash.Hash]*node
	tip       *node
	mempool   []mempoolEntry
	submitted []*wire.MsgBlock
	closed    bool
	down      error // SetDown
}

// node is a block of the fake chain.
type node struct {
	hash   chainhash.Hash
	height int32
	time   time.Time
	parent *node
}

// mempoolEntry is a fake mempool transaction and its fee.
type mempoolEntry struct {
	tx  *wire.MsgTx
	fee int64
}

// New returns a Source whose chain holds only params' genesis block.
func New(params *chaincfg.Params) *Source {
	genesis := &node{
		hash: *params.GenesisHash,
		time: params.GenesisBlock.Header.Timestamp,
	}
	return &Source{
		params:   params,
		notifier: chain.NewNotifier(),
		bits:     DefaultBits,
		blocks:   map[chainhash.Hash]*node{genesis.hash: genesis},
		tip:      genesis,
	}
}

var (
	_ chain.Source          = (*Source)(nil)
	_ chain.BestChainReader = (*Source)(nil)
)

// NodeName is the node name BestChains reports.
const NodeName = "chaintest"

// Updates implements chain.Source.
func (s *Source) Updates() <-chan chain.Update {
	return s.notifier.Updates()
}

// Close stops the source: Updates is closed, Template and SubmitBlock fail
// with chain.ErrClosed. It is idempotent.
func (s *Source) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.notifier.Close()
}

// SetTemplateFunc replaces TemplateFunc (nil restores the default).
func (s *Source) SetTemplateFunc(f func(ctx context.Context) (*chain.Template, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.TemplateFunc = f
}

// SetSubmitFunc replaces SubmitFunc (nil restores the default).
func (s *Source) SetSubmitFunc(f func(ctx context.Context, b *wire.MsgBlock) (chain.SubmitResult, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.SubmitFunc = f
}

// SetDown makes the fake node unreachable while err is non-nil, as an RPC
// node that is down: Template, SubmitBlock and BestChains fail with err
// (SubmitBlock still records the block in Submitted, but the chain never
// sees it). SetDown(nil) brings the node back with its chain as it was.
func (s *Source) SetDown(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = err
}

// SetBits sets the compact target of later templates and of the blocks
// SubmitBlock accepts.
func (s *Source) SetBits(bits uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bits = bits
}

// Tip returns the hash and height of the best tip.
func (s *Source) Tip() (chainhash.Hash, int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tip.hash, s.tip.height
}

// Submitted returns the blocks handed to SubmitBlock, oldest first.
func (s *Source) Submitted() []*wire.MsgBlock {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.submitted)
}

// Mempool returns the transactions in the fake mempool, in template order.
func (s *Source) Mempool() []*wire.MsgTx {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*wire.MsgTx, len(s.mempool))
	for i, e := range s.mempool {
		out[i] = e.tx
	}
	return out
}

// AddTx puts tx in the fake mempool with a zero fee and signals
// MempoolChanged.
func (s *Source) AddTx(tx *wire.MsgTx) {
	s.AddTxFee(tx, 0)
}

// AddTxFee puts tx in the fake mempool with the given fee (added to the
// coinbase value of templates) and signals MempoolChanged.
func (s *Source) AddTxFee(tx *wire.MsgTx, fee int64) {
	s.mu.Lock()
	s.mempool = append(s.mempool, mempoolEntry{tx: tx, fee: fee})
	u := chain.Update{Kind: chain.MempoolChanged, Height: s.tip.height, Tip: s.tip.hash}
	s.mu.Unlock()
	s.notifier.Notify(u)
}

// Advance extends the best chain by one block found "elsewhere" (an empty
// block whose proof of work is not checked), signals NewTip and returns the
// new tip's hash. The mempool is left as it is.
func (s *Source) Advance() chainhash.Hash {
	s.mu.Lock()
	parent := s.tip
	t := s.nextTime(parent)
	hdr := wire.BlockHeader{
		Version:   DefaultVersion,
		PrevBlock: parent.hash,
		Timestamp: t,
		Bits:      s.bits,
		Nonce:     uint32(len(s.blocks)),
	}
	// The merkle root stands for a coinbase of this height; it only has to
	// make the hash unique.
	hdr.MerkleRoot = chainhash.DoubleHashH([]byte(fmt.Sprintf("chaintest %d %v", parent.height+1, parent.hash)))
	n := &node{hash: hdr.BlockHash(), height: parent.height + 1, time: t, parent: parent}
	s.blocks[n.hash] = n
	s.tip = n
	u := chain.Update{Kind: chain.NewTip, Height: n.height, Tip: n.hash}
	s.mu.Unlock()
	s.notifier.Notify(u)
	return n.hash
}

// SetTip makes the known block hash the best tip (a reorg, when it is not a
// descendant of the current tip) and signals NewTip. It fails with
// ErrUnknownBlock for a hash the fake chain does not have.
func (s *Source) SetTip(hash chainhash.Hash) error {
	s.mu.Lock()
	n, ok := s.blocks[hash]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("%w: %v", ErrUnknownBlock, hash)
	}
	s.tip = n
	u := chain.Update{Kind: chain.NewTip, Height: n.height, Tip: n.hash}
	s.mu.Unlock()
	s.notifier.Notify(u)
	return nil
}

// Template implements chain.Source: a template on the tip carrying the whole
// mempool, paying the subsidy plus the recorded fees.
func (s *Source) Template(ctx context.Context) (*chain.Template, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, chain.ErrClosed
	}
	if f := s.TemplateFunc; f != nil {
		s.mu.Unlock()
		return f(ctx)
	}
	defer s.mu.Unlock()
	if s.down != nil {
		return nil, s.down
	}

	height := s.tip.height + 1
	t := &chain.Template{
		Height:        height,
		PrevHash:      s.tip.hash,
		Version:       DefaultVersion,
		Bits:          s.bits,
		MinTime:       medianTimePast(s.tip).Add(time.Second),
		CoinbaseValue: blockchain.CalcBlockSubsidy(height, s.params),
		Transactions:  make([]*btcutil.Tx, 0, len(s.mempool)),
		Fees:          make([]int64, 0, len(s.mempool)),
	}
	t.CurTime = s.nextTime(s.tip)
	for _, e := range s.mempool {
		// A fresh btcutil.Tx per template: its lazily cached hashes are
		// then never shared between templates.
		t.Transactions = append(t.Transactions, btcutil.NewTx(e.tx))
		t.Fees = append(t.Fees, e.fee)
		t.CoinbaseValue += e.fee
	}
	return t, nil
}

// SubmitBlock implements chain.Source. Every block is recorded. Unless
// SubmitFunc decides, a block is Duplicate when already known; Rejected when
// its parent is unknown, its bits differ, its time is not after the
// parent's median time past, it fails btcd's CheckBlockSanity (proof of work
// included) or ValidateWitnessCommitment, its coinbase height is wrong or it
// pays more than subsidy plus known fees; Inconclusive (kept on a side
// chain) when its parent is not the tip; otherwise Accepted: it becomes the
// tip, its transactions leave the mempool, and NewTip is signalled.
func (s *Source) SubmitBlock(ctx context.Context, b *wire.MsgBlock) (chain.SubmitResult, error) {
	if err := ctx.Err(); err != nil {
		return chain.SubmitResult{}, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return chain.SubmitResult{}, chain.ErrClosed
	}
	s.submitted = append(s.submitted, b)
	if err := s.down; err != nil {
		s.mu.Unlock()
		return chain.SubmitResult{}, err
	}
	if f := s.SubmitFunc; f != nil {
		s.mu.Unlock()
		return f(ctx, b)
	}
	res, u := s.accept(b)
	s.mu.Unlock()
	if u != nil {
		s.notifier.Notify(*u)
	}
	return res, nil
}

// BestChains implements chain.BestChainReader for the one fake node: the
// tip's height and the best chain's block at each of heights at or below
// it. While the node is down (SetDown) the answer's Err is that error.
func (s *Source) BestChains(ctx context.Context, heights []int32) []chain.NodeChain {
	s.mu.Lock()
	defer s.mu.Unlock()
	nc := chain.NodeChain{Node: NodeName}
	switch {
	case s.closed:
		nc.Err = chain.ErrClosed
	case s.down != nil:
		nc.Err = s.down
	case ctx.Err() != nil:
		nc.Err = ctx.Err()
	}
	if nc.Err != nil {
		return []chain.NodeChain{nc}
	}
	nc.Height = s.tip.height
	nc.Hashes = make(map[int32]chainhash.Hash, len(heights))
	for _, h := range heights {
		if h < 0 || h > nc.Height {
			continue
		}
		n := s.tip
		for n.height > h {
			n = n.parent
		}
		nc.Hashes[h] = n.hash
	}
	return []chain.NodeChain{nc}
}

// accept classifies b and, when it extends the tip, connects it. s.mu is
// held.
func (s *Source) accept(b *wire.MsgBlock) (chain.SubmitResult, *chain.Update) {
	rejected := func(reason string) (chain.SubmitResult, *chain.Update) {
		return chain.SubmitResult{Status: chain.Rejected, Reason: reason}, nil
	}
	hash := b.BlockHash()
	if _, ok := s.blocks[hash]; ok {
		return chain.SubmitResult{Status: chain.Duplicate, Reason: "duplicate"}, nil
	}
	parent, ok := s.blocks[b.Header.PrevBlock]
	if !ok {
		return rejected("bad-prevblk")
	}
	if b.Header.Bits != s.bits {
		return rejected("bad-diffbits")
	}
	if !b.Header.Timestamp.After(medianTimePast(parent)) {
		return rejected("time-too-old")
	}
	blk := btcutil.NewBlock(b)
	powLimit := blockchain.CompactToBig(s.bits)
	if err := blockchain.CheckBlockSanity(blk, powLimit, clockTime{s.now}); err != nil {
		return rejected(fmt.Sprintf("sanity: %v", err))
	}
	if err := blockchain.ValidateWitnessCommitment(blk); err != nil {
		return rejected(fmt.Sprintf("witness: %v", err))
	}
	if h, err := blockchain.ExtractCoinbaseHeight(blk.Transactions()[0]); err != nil || h != parent.height+1 {
		return rejected("bad-cb-height")
	}
	limit := blockchain.CalcBlockSubsidy(parent.height+1, s.params)
	for _, tx := range blk.Transactions()[1:] {
		for _, e := range s.mempool {
			if e.tx.TxHash() == *tx.Hash() {
				limit += e.fee
			}
		}
	}
	var paid int64
	for _, out := range b.Transactions[0].TxOut {
		paid += out.Value
	}
	if paid > limit {
		return rejected("bad-cb-amount")
	}

	n := &node{hash: hash, height: parent.height + 1, time: b.Header.Timestamp, parent: parent}
	s.blocks[hash] = n
	if parent != s.tip {
		return chain.SubmitResult{Status: chain.Inconclusive, Reason: "inconclusive-not-best-prevblk"}, nil
	}
	s.tip = n
	included := make(map[chainhash.Hash]bool, len(b.Transactions))
	for _, tx := range blk.Transactions()[1:] {
		included[*tx.Hash()] = true
	}
	s.mempool = slices.DeleteFunc(s.mempool, func(e mempoolEntry) bool { return included[e.tx.TxHash()] })
	return chain.SubmitResult{Status: chain.Accepted}, &chain.Update{Kind: chain.NewTip, Height: n.height, Tip: n.hash}
}

// now reads the injected clock.
func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// nextTime is the header time of a block on parent: the clock, but at
// least one second past the parent's median time past.
func (s *Source) nextTime(parent *node) time.Time {
	t := s.now().Truncate(time.Second)
	if earliest := medianTimePast(parent).Add(time.Second); t.Before(earliest) {
		t = earliest
	}
	return t
}

// medianTimePast is the median time of n and its ten ancestors.
func medianTimePast(n *node) time.Time {
	var times []time.Time
	for ; n != nil && len(times) < 11; n = n.parent {
		times = append(times, n.time)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	return times[len(times)/2]
}

// clockTime is a blockchain.MedianTimeSource reading the injected clock.
type clockTime struct{ now func() time.Time }

func (c clockTime) AdjustedTime() time.Time         { return c.now() }
func (c clockTime) AddTimeSample(string, time.Time) {}
func (c clockTime) Offset() time.Duration           { return 0 }
