package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/database"
	_ "github.com/btcsuite/btcd/database/ffldb" // registers the ffldb driver
	"github.com/btcsuite/btcd/mempool"
	"github.com/btcsuite/btcd/mining"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
)

// dbType is the btcd block database driver the node uses.
const dbType = "ffldb"

// Node is the in-process full node. It implements chain.Source and is safe
// for concurrent use. Build it with New; Run starts its background work.
type Node struct {
	cfg    Config
	params *chaincfg.Params
	log    *slog.Logger
	devNet bool

	db       database.DB
	chain    *blockchain.BlockChain
	pool     *mempool.TxPool
	gen      *mining.BlkTmplGenerator
	notifier *chain.Notifier

	// tmplMu serializes the template generator, which is not safe
	// concurrently with itself.
	tmplMu sync.Mutex

	// closeMu is held shared by every operation that touches the database
	// and exclusively by Close, so the database is never closed under an
	// operation.
	closeMu sync.RWMutex
	closed  bool
	// stopped is closed by Close.
	stopped   chan struct{}
	closeOnce sync.Once
	closeErr  error

	running atomic.Bool

	// hf is the header-first job switch (headerfirst.go).
	hf headerFirst

	// evMu guards events, the chain notifications handed off to the
	// mempool maintenance goroutine; wake (capacity 1) signals new ones.
	evMu   sync.Mutex
	events []chainEvent
	wake   chan struct{}

	// testHookConnected, when set (by tests, before any block is
	// processed), runs first on every connected block: the latency
	// measurement's start.
	testHookConnected func()
}

// eventKind says what a chainEvent is.
type eventKind int

const (
	evConnected eventKind = iota + 1
	evDisconnected
	evBarrier
)

// chainEvent is a block connected to or disconnected from the best chain,
// or a barrier whose done channel is closed once every earlier event has
// been applied to the mempool.
type chainEvent struct {
	kind  eventKind
	block *btcutil.Block
	done  chan struct{}
}

var _ chain.Source = (*Node)(nil)

// New opens (creating it when missing) the block database under
// cfg.DataDir/blocks, loads the chain, and builds the mempool and
// the template generator. It starts nothing; see Run. On error nothing is
// left open.
func New(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	params := cfg.Network
	dbPath := filepath.Join(cfg.DataDir, "blocks")
	db, err := openDB(dbPath, params.Net)
	if err != nil {
		return nil, err
	}

	var checkpoints []chaincfg.Checkpoint
	if !cfg.DisableCheckpoints {
		checkpoints = params.Checkpoints
	}
	timeSource := clockTimeSource{MedianTimeSource: blockchain.NewMedianTime(), now: cfg.Now}
	sigCache := txscript.NewSigCache(cfg.SigCacheMaxSize)
	hashCache := txscript.NewHashCache(cfg.SigCacheMaxSize)
	bc, err := blockchain.New(&blockchain.Config{
		DB:               db,
		ChainParams:      params,
		Checkpoints:      checkpoints,
		TimeSource:       timeSource,
		SigCache:         sigCache,
		HashCache:        hashCache,
		UtxoCacheMaxSize: uint64(cfg.UtxoCacheMaxSizeMiB) << 20,
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("embedded: load chain from %s: %w", dbPath, err), db.Close())
	}

	pool := mempool.New(&mempool.Config{
		Policy: mempool.Policy{
			MaxTxVersion:         cfg.MaxTxVersion,
			DisableRelayPriority: cfg.DisableRelayPriority,
			AcceptNonStd:         cfg.AcceptNonStd,
			FreeTxRelayLimit:     cfg.FreeTxRelayLimit,
			MaxOrphanTxs:         cfg.MaxOrphanTxs,
			MaxOrphanTxSize:      cfg.MaxOrphanTxSize,
			MaxSigOpCostPerTx:    blockchain.MaxBlockSigOpsCost / 4,
			MinRelayTxFee:        cfg.MinRelayTxFee,
			RejectReplacement:    cfg.RejectReplacement,
		},
		ChainParams:    params,
		FetchUtxoView:  bc.FetchUtxoView,
		BestHeight:     func() int32 { return bc.BestSnapshot().Height },
		MedianTimePast: func() time.Time { return bc.BestSnapshot().MedianTime },
		CalcSequenceLock: func(tx *btcutil.Tx, view *blockchain.UtxoViewpoint) (*blockchain.SequenceLock, error) {
			return bc.CalcSequenceLock(tx, view, true)
		},
		IsDeploymentActive: bc.IsDeploymentActive,
		SigCache:           sigCache,
		HashCache:          hashCache,
	})

	policy := mining.Policy{
		BlockMinWeight:    cfg.BlockMinWeight,
		BlockMaxWeight:    cfg.BlockMaxWeight,
		BlockPrioritySize: cfg.BlockPrioritySize,
		TxMinFreeFee:      cfg.MinRelayTxFee,
	}
	gen := mining.NewBlkTmplGenerator(&policy, params, pool, bc, timeSource, sigCache, hashCache)

	n := &Node{
		cfg:      cfg,
		params:   params,
		log:      cfg.Logger.With("component", "embedded", "network", params.Name),
		devNet:   isDevNetwork(params),
		db:       db,
		chain:    bc,
		pool:     pool,
		gen:      gen,
		notifier: chain.NewNotifier(),
		stopped:  make(chan struct{}),
		wake:     make(chan struct{}, 1),
	}
	bc.Subscribe(n.onChainNotification)

	best := bc.BestSnapshot()
	n.log.Info("chain loaded", "datadir", dbPath, "height", best.Height, "tip", best.Hash,
		"current", bc.IsCurrent())
	return n, nil
}

// openDB opens the ffldb database at path, creating it when it does not
// exist.
func openDB(path string, net wire.BitcoinNet) (database.DB, error) {
	db, err := database.Open(dbType, path, net)
	if err == nil {
		return db, nil
	}
	var dbErr database.Error
	if !errors.As(err, &dbErr) || dbErr.ErrorCode != database.ErrDbDoesNotExist {
		return nil, fmt.Errorf("embedded: open block database %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("embedded: create data directory: %w", err)
	}
	db, err = database.Create(dbType, path, net)
	if err != nil {
		return nil, fmt.Errorf("embedded: create block database %s: %w", path, err)
	}
	return db, nil
}

// Run starts the mempool maintenance goroutine and blocks until ctx ends or
// the node is closed; it then waits for the goroutine and closes the node
// (see Close). It returns nil after a clean shutdown, ErrAlreadyRunning when
// called twice and chain.ErrClosed after Close.
func (n *Node) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	n.closeMu.RLock()
	closed := n.closed
	n.closeMu.RUnlock()
	if closed {
		return chain.ErrClosed
	}

	var wg sync.WaitGroup
	if !n.cfg.DisableMempoolMaintenance {
		wg.Go(func() { n.maintainMempool(ctx) })
	}
	select {
	case <-ctx.Done():
	case <-n.stopped:
	}
	wg.Wait()
	return n.Close()
}

// Close flushes the UTXO cache, closes the block database and the Updates
// channel. It waits for operations in progress; later ones fail with
// chain.ErrClosed. It is idempotent and returns the first call's error.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closeMu.Lock()
		defer n.closeMu.Unlock()
		n.closed = true
		close(n.stopped)
		n.hf.stop()
		flushErr := n.chain.FlushUtxoCache(blockchain.FlushRequired)
		if flushErr != nil {
			flushErr = fmt.Errorf("embedded: flush utxo cache: %w", flushErr)
		}
		dbErr := n.db.Close()
		if dbErr != nil {
			dbErr = fmt.Errorf("embedded: close block database: %w", dbErr)
		}
		n.notifier.Close()
		n.closeErr = errors.Join(flushErr, dbErr)
		best := n.chain.BestSnapshot()
		n.log.Info("node closed", "height", best.Height, "tip", best.Hash, "err", n.closeErr)
	})
	return n.closeErr
}

// acquire takes the shared close lock; it fails with chain.ErrClosed once
// the node is closed. Callers release with n.closeMu.RUnlock.
func (n *Node) acquire() error {
	n.closeMu.RLock()
	if n.closed {
		n.closeMu.RUnlock()
		return chain.ErrClosed
	}
	return nil
}

// Updates implements chain.Source: NewTip on every block connected to (or
// disconnected from) the best chain, MempoolChanged when the mempool gains
// transactions. Closed by Close.
func (n *Node) Updates() <-chan chain.Update {
	return n.notifier.Updates()
}

// Params returns the node's network parameters.
func (n *Node) Params() *chaincfg.Params {
	return n.params
}

// BestHeight returns the height of the best chain's tip.
func (n *Node) BestHeight() int32 {
	return n.chain.BestSnapshot().Height
}

// BestHash returns the hash of the best chain's tip.
func (n *Node) BestHash() chainhash.Hash {
	return n.chain.BestSnapshot().Hash
}

// IsCurrent reports whether the node serves templates: Config.Synced says
// so when set; otherwise the chain believes it is synced
// (blockchain.IsCurrent), or the network is regtest or simnet.
func (n *Node) IsCurrent() bool {
	if n.cfg.Synced != nil {
		return n.cfg.Synced()
	}
	return n.devNet || n.chain.IsCurrent()
}

// MainChainHas reports whether the block with the given hash is in the best
// chain: false for an unknown block, a side-chain block and one that a
// reorganization disconnected (a pool's orphaned block). It must not be
// called after Close.
func (n *Node) MainChainHas(hash *chainhash.Hash) bool {
	return n.chain.MainChainHasBlock(hash)
}

// NotifyMempoolChanged sends a chain.MempoolChanged update for the current
// tip. The P2P layer calls it when transactions from peers enter the
// mempool.
func (n *Node) NotifyMempoolChanged() {
	n.notifyMempoolChanged()
}

// Chain returns btcd's block chain, for the P2P layer. Its methods are
// safe for concurrent use; it must not be used after Close.
func (n *Node) Chain() *blockchain.BlockChain {
	return n.chain
}

// Mempool returns btcd's transaction pool, for the P2P layer. Its methods
// are safe for concurrent use.
func (n *Node) Mempool() *mempool.TxPool {
	return n.pool
}

// onChainNotification is the blockchain subscription. It runs inside
// ProcessBlock and only hands off: a non-blocking Notify and an append to
// the event queue.
func (n *Node) onChainNotification(nt *blockchain.Notification) {
	block, ok := nt.Data.(*btcutil.Block)
	if !ok {
		return
	}
	switch nt.Type {
	case blockchain.NTBlockConnected:
		if n.testHookConnected != nil {
			n.testHookConnected()
		}
		n.notifier.Notify(chain.Update{Kind: chain.NewTip, Height: block.Height(), Tip: *block.Hash()})
		n.enqueue(chainEvent{kind: evConnected, block: block})
	case blockchain.NTBlockDisconnected:
		// The best chain is now the block's parent (until the other side
		// of a reorganization connects).
		n.notifier.Notify(chain.Update{Kind: chain.NewTip, Height: block.Height() - 1,
			Tip: block.MsgBlock().Header.PrevBlock})
		n.enqueue(chainEvent{kind: evDisconnected, block: block})
	}
}

// enqueue hands ev to the mempool maintenance goroutine without blocking.
// Without that goroutine (DisableMempoolMaintenance) block events are
// dropped and a barrier is released at once.
func (n *Node) enqueue(ev chainEvent) {
	if n.cfg.DisableMempoolMaintenance {
		if ev.kind == evBarrier {
			close(ev.done)
		}
		return
	}
	n.evMu.Lock()
	n.events = append(n.events, ev)
	n.evMu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// takeEvents returns and clears the queued events.
func (n *Node) takeEvents() []chainEvent {
	n.evMu.Lock()
	defer n.evMu.Unlock()
	evs := n.events
	n.events = nil
	return evs
}

// maintainMempool applies queued chain events to the mempool, in order,
// until ctx ends or the node is closed.
func (n *Node) maintainMempool(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.stopped:
			return
		case <-n.wake:
		}
		for evs := n.takeEvents(); len(evs) > 0; evs = n.takeEvents() {
			changed := false
			for _, ev := range evs {
				c, err := n.applyEvent(ev)
				if err != nil {
					return // closed
				}
				changed = changed || c
			}
			if changed {
				n.notifyMempoolChanged()
			}
		}
	}
}

// applyEvent brings the mempool in step with one chain event, as btcd's sync
// manager does. It reports whether transactions entered the pool.
func (n *Node) applyEvent(ev chainEvent) (bool, error) {
	if ev.kind == evBarrier {
		close(ev.done)
		return false, nil
	}
	if err := n.acquire(); err != nil {
		return false, err
	}
	defer n.closeMu.RUnlock()

	txs := ev.block.Transactions()
	if len(txs) < 2 {
		return false, nil
	}
	added := 0
	switch ev.kind {
	case evConnected:
		// The block's transactions and their double spends leave the
		// pool; orphans that spend them may now be accepted. Transactions
		// spending the confirmed ones stay: they are still valid.
		for _, tx := range txs[1:] {
			n.pool.RemoveTransaction(tx, false)
			n.pool.RemoveDoubleSpends(tx)
			n.pool.RemoveOrphan(tx)
			added += len(n.pool.ProcessOrphans(tx))
		}
	case evDisconnected:
		for _, tx := range txs[1:] {
			_, _, err := n.pool.MaybeAcceptTransaction(tx, false, false)
			if err == nil {
				added++
				continue
			}
			// This runs after the whole reorganization; a transaction
			// that is confirmed again on the new branch keeps the
			// mempool transactions that spend it.
			if !n.confirmed(tx) {
				n.pool.RemoveTransaction(tx, true)
			}
		}
	}
	return added > 0, nil
}

// confirmed reports whether tx has an unspent output in the best chain's
// UTXO set, i.e. is confirmed there.
func (n *Node) confirmed(tx *btcutil.Tx) bool {
	view, err := n.chain.FetchUtxoView(tx)
	if err != nil {
		return false
	}
	for i := range tx.MsgTx().TxOut {
		entry := view.LookupEntry(wire.OutPoint{Hash: *tx.Hash(), Index: uint32(i)})
		if entry != nil && !entry.IsSpent() {
			return true
		}
	}
	return false
}

// notifyMempoolChanged sends a MempoolChanged update for the current tip.
func (n *Node) notifyMempoolChanged() {
	best := n.chain.BestSnapshot()
	n.notifier.Notify(chain.Update{Kind: chain.MempoolChanged, Height: best.Height, Tip: best.Hash})
}

// SyncMempool waits until every chain notification delivered before the
// call has been applied to the mempool (blocks connected so far have left
// it). It needs Run to be running; it fails with ctx's error or
// chain.ErrClosed. With DisableMempoolMaintenance it returns at once: the
// mempool is then maintained inside the chain's notifications, before
// ProcessBlock returns.
func (n *Node) SyncMempool(ctx context.Context) error {
	done := make(chan struct{})
	n.enqueue(chainEvent{kind: evBarrier, done: done})
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stopped:
		return chain.ErrClosed
	}
}
