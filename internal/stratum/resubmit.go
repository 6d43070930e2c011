package stratum

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"golang.org/x/time/rate"

	"github.com/stratumd/stratumd/internal/backoff"
	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/store"
)

// Resubmitter defaults, used for zero fields of ResubmitterConfig.
const (
	DefaultResubmitMinBackoff = time.Second
	DefaultResubmitMaxBackoff = time.Minute
	DefaultResubmitScan       = 30 * time.Second
	// DefaultGiveUpDepth is how many blocks a node's best chain must be
	// past a found block's height, with another block at that height, for
	// the found block to be given up (orphaned): store.GiveUpDepth, the
	// rule payout's classification follows too.
	DefaultGiveUpDepth = store.GiveUpDepth

	// resubmitScanLimit bounds the blocks one scan of the table returns.
	resubmitScanLimit = 1000
	// maxResubmitsPerSecond bounds the SubmitBlock calls (a token bucket of
	// that size, refilled at that rate), so that many competing blocks of
	// one height (on regtest, thousands found during a node outage:
	// TestNodeOutage) do not flood the nodes when they return; the lowest
	// heights and the blocks handed over least often go first, the others
	// a second later. Landed and hopeless blocks are decided without a
	// call.
	maxResubmitsPerSecond = 100
	// resubmitCallTimeout bounds one SubmitBlock or BestChains call.
	resubmitCallTimeout = 30 * time.Second
)

// ResubmitStore is what the Resubmitter needs of the store (*store.Store).
type ResubmitStore interface {
	PendingBlocks(ctx context.Context, limit int) ([]store.PendingBlock, error)
	BlockRaw(ctx context.Context, hash string) ([]byte, error)
	RecordSubmitAttempt(ctx context.Context, hash string, at time.Time, result string) error
	MarkBlockOnChain(ctx context.Context, hash string, at time.Time, reason string) error
	SetBlockStatus(ctx context.Context, hash string, status store.BlockStatus, reason string, from ...store.BlockStatus) error
}

// ResubmitterConfig configures a Resubmitter. Source and Store are
// required.
type ResubmitterConfig struct {
	// Source is where blocks go again (SubmitBlock: every RPC node, or the
	// embedded node and its peers). When it implements
	// chain.BestChainReader, which every stratumd source does, it also
	// tells when a block has landed or cannot win any more; without it a
	// block is resubmitted until a node answers accepted or duplicate.
	Source chain.Source
	// Store holds the found blocks: the pending ones and their bytes, and
	// what became of them.
	Store ResubmitStore
	// MinBackoff is the wait before the first resubmission of a block
	// (default 1 s); each further one waits twice as long, up to
	// MaxBackoff (default 1 min).
	MinBackoff, MaxBackoff time.Duration
	// ScanInterval is how often the blocks table is read for blocks still
	// submitted (default 30 s); also at start.
	ScanInterval time.Duration
	// GiveUpDepth: a block is marked orphaned once a node's best chain is
	// this many blocks past its height without it (default 6).
	GiveUpDepth int32
	// Logger receives the resubmitter's log lines (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock of the backoff schedule and the stored times
	// (default time.Now). Run waits on real timers for what it says.
	Now func() time.Time
}

// ResubmitterStats count what a Resubmitter did since New.
type ResubmitterStats struct {
	Pending     int    // blocks followed now
	Resubmitted uint64 // SubmitBlock calls
	Failed      uint64 // of those, calls no node answered
	OnChain     uint64 // blocks seen in a node's best chain (then confirmed)
	Orphaned    uint64 // blocks given up: the chain moved GiveUpDepth past them
	Rejected    uint64 // blocks a node rejected when handed over again
}

// Resubmitter makes sure a found block reaches a node's chain: a block no
// node is known to have in its best chain is handed to the chain source
// again, with backoff, until a node has it (the block becomes confirmed)
// or a node's best chain is GiveUpDepth blocks past its height with
// another block there (it becomes orphaned, status_reason "chain moved N
// blocks past height H without it"), or a node rejects it (rejected). It
// follows the blocks the sessions hand it at once (Add: every found block
// the node did not reject; an accepted one is only looked for in the best
// chain, a second later, unless it is missing there), the blocks the
// drainer stores (Stored: after a restart, those replayed from the spool)
// and every block the blocks table holds in status submitted (read at
// start and every ScanInterval), so that a block found while its node was
// down survives restarts: its bytes are in blocks.raw. Attempts and their results are logged and stored with the
// block (submit_attempts, last_submit_at, last_submit_result).
//
// Run runs it in the caller's goroutine; Add, Stored and Stats are safe
// for concurrent use, also before Run and after it returned.
type Resubmitter struct {
	cfg    ResubmitterConfig
	log    *slog.Logger
	chains chain.BestChainReader // nil when Source lacks it

	mu      sync.Mutex
	pending map[chainhash.Hash]*pendingBlock
	wake    chan struct{} // capacity 1: Add changed the schedule

	// Run's goroutine only.
	nextScan  time.Time
	dbFailing bool          // the last database call failed (logged once)
	limiter   *rate.Limiter // maxResubmitsPerSecond, on the injected clock

	resubmitted, failed, onChain, orphaned, rejected atomic.Uint64
}

// pendingBlock is a block the Resubmitter follows. Guarded by mu.
type pendingBlock struct {
	hash     chainhash.Hash
	height   int32
	block    *wire.MsgBlock  // from the session; nil: read blocks.raw
	hasRaw   bool            // blocks.raw holds it
	attempts int             // resubmissions by this process
	next     time.Time       // when it is due
	backoff  backoff.Backoff // the waits after its resubmissions
}

// NewResubmitter checks cfg and returns a Resubmitter; it starts nothing.
func NewResubmitter(cfg ResubmitterConfig) (*Resubmitter, error) {
	if cfg.Source == nil || cfg.Store == nil {
		return nil, fmt.Errorf("%w: resubmitter: source and store are required", ErrConfig)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultResubmitMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultResubmitMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = DefaultResubmitScan
	}
	if cfg.GiveUpDepth <= 0 {
		cfg.GiveUpDepth = DefaultGiveUpDepth
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Resubmitter{cfg: cfg, log: cfg.Logger, pending: make(map[chainhash.Hash]*pendingBlock),
		wake: make(chan struct{}, 1), limiter: rate.NewLimiter(maxResubmitsPerSecond, maxResubmitsPerSecond)}
	r.chains, _ = cfg.Source.(chain.BestChainReader)
	return r, nil
}

// Add follows block b of height height, found just now: MinBackoff from
// now it is looked for in the nodes' best chains and, when missing there,
// handed over again. It never blocks.
func (r *Resubmitter) Add(b *wire.MsgBlock, height int32) {
	hash := b.BlockHash()
	now := r.cfg.Now()
	r.mu.Lock()
	if e := r.pending[hash]; e != nil {
		e.block = b
	} else {
		r.pending[hash] = &pendingBlock{hash: hash, height: height, block: b,
			next: now.Add(r.cfg.MinBackoff), backoff: r.newBackoff()}
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Stored follows the blocks among blocks that are still submitted: the
// drainer's OnBlocks callback, for blocks stored with their shares. A block
// a session handed over already keeps its schedule; any other (a block
// whose share the drainer replayed from the spool after a restart) is due
// at once, its bytes read from the table. It never blocks.
func (r *Resubmitter) Stored(_ context.Context, blocks []store.Block) {
	now := r.cfg.Now()
	added := false
	r.mu.Lock()
	for _, b := range blocks {
		hash, err := chainhash.NewHashFromStr(b.Hash)
		if err != nil || b.Status != store.BlockSubmitted {
			continue
		}
		if e := r.pending[*hash]; e != nil {
			e.hasRaw = true // the drainer stores a block with its bytes
			continue
		}
		r.pending[*hash] = &pendingBlock{hash: *hash, height: b.Height, hasRaw: true, next: now, backoff: r.newBackoff()}
		added = true
	}
	r.mu.Unlock()
	if added {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// Stats returns the resubmitter's counters.
func (r *Resubmitter) Stats() ResubmitterStats {
	r.mu.Lock()
	n := len(r.pending)
	r.mu.Unlock()
	return ResubmitterStats{Pending: n, Resubmitted: r.resubmitted.Load(), Failed: r.failed.Load(),
		OnChain: r.onChain.Load(), Orphaned: r.orphaned.Load(), Rejected: r.rejected.Load()}
}

// Run follows the blocks until ctx ends, then returns nil. The blocks
// still pending are read from the table again at the next start.
func (r *Resubmitter) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.round(ctx)
		timer.Reset(r.untilNext())
		select {
		case <-ctx.Done():
			if st := r.Stats(); st.Pending > 0 {
				r.log.Info("stratum: found blocks still pending at stop; followed again at the next start", "pending", st.Pending)
			}
			return nil
		case <-r.wake:
		case <-timer.C:
		}
	}
}

// untilNext is the wait until the next block or scan is due.
func (r *Resubmitter) untilNext() time.Duration {
	next := r.nextScan
	r.mu.Lock()
	for _, e := range r.pending {
		if e.next.Before(next) {
			next = e.next
		}
	}
	r.mu.Unlock()
	return max(next.Sub(r.cfg.Now()), time.Millisecond)
}

// round scans the table when due, then checks and resubmits every block
// that is due, lowest height first.
func (r *Resubmitter) round(ctx context.Context) {
	now := r.cfg.Now()
	if !now.Before(r.nextScan) {
		r.scan(ctx, now)
	}
	var due []pendingBlock
	r.mu.Lock()
	for _, e := range r.pending {
		if !now.Before(e.next) {
			due = append(due, *e)
		}
	}
	r.mu.Unlock()
	if len(due) == 0 {
		return
	}
	// Parents before children; of one height, the blocks handed over
	// least often first, so that the round's budget goes round.
	slices.SortFunc(due, func(a, b pendingBlock) int {
		if a.height != b.height {
			return int(a.height - b.height)
		}
		if a.attempts != b.attempts {
			return a.attempts - b.attempts
		}
		return bytes.Compare(a.hash[:], b.hash[:])
	})
	var views []chain.NodeChain
	if r.chains != nil {
		heights := make([]int32, 0, len(due))
		for _, e := range due {
			if len(heights) == 0 || heights[len(heights)-1] != e.height {
				heights = append(heights, e.height)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, resubmitCallTimeout)
		views = r.chains.BestChains(cctx, heights)
		cancel()
	}
	budget := int(r.limiter.TokensAt(now))
	left := budget
	for i := range due {
		if ctx.Err() != nil {
			break
		}
		r.handle(ctx, &due[i], views, now, &left)
	}
	r.limiter.AllowN(now, budget-left)
}

// scan follows every block the table holds in status submitted.
func (r *Resubmitter) scan(ctx context.Context, now time.Time) {
	r.nextScan = now.Add(r.cfg.ScanInterval)
	rows, err := r.cfg.Store.PendingBlocks(ctx, resubmitScanLimit)
	if r.dbDown(ctx, "read pending blocks", err) {
		return
	}
	added := 0
	r.mu.Lock()
	for _, row := range rows {
		hash, err := chainhash.NewHashFromStr(row.Hash)
		if err != nil {
			continue
		}
		if e := r.pending[*hash]; e != nil {
			e.hasRaw = row.HasRaw
			continue
		}
		r.pending[*hash] = &pendingBlock{hash: *hash, height: row.Height, hasRaw: row.HasRaw,
			next: now, backoff: r.newBackoff()}
		added++
	}
	r.mu.Unlock()
	if added > 0 {
		r.log.Debug("stratum: following found blocks from the table", "blocks", added)
	}
}

// handle decides on the due block e with the nodes' views: landed, out of
// reach, or to be handed over again.
// A resubmission takes one of *budget; with none left the block waits for
// the next round.
func (r *Resubmitter) handle(ctx context.Context, e *pendingBlock, views []chain.NodeChain, now time.Time, budget *int) {
	hash := e.hash.String()
	log := r.log.With("height", e.height, "hash", hash)
	for _, v := range views {
		if !v.Has(e.hash, e.height) {
			continue
		}
		err := r.cfg.Store.MarkBlockOnChain(ctx, hash, now, "in the best chain of "+v.Node)
		if r.dbDown(ctx, "mark a block on chain", err) || err != nil {
			// The database is down, or the row is not stored yet (its
			// share is still in the spool): no need to hand the block
			// over, only to record it later.
			r.reschedule(e.hash, now, false, false)
			return
		}
		r.onChain.Add(1)
		r.forget(e.hash)
		log.Info("stratum: found block is in a node's best chain", "node", v.Node, "resubmissions", e.attempts)
		return
	}
	for _, v := range views {
		if v.Err != nil || v.Height < e.height+r.cfg.GiveUpDepth {
			continue
		}
		reason := fmt.Sprintf("chain moved %d blocks past height %d without it", v.Height-e.height, e.height)
		err := r.cfg.Store.SetBlockStatus(ctx, hash, store.BlockOrphaned, reason, store.BlockSubmitted)
		r.dbDown(ctx, "give a block up", err)
		switch {
		case err == nil:
			r.orphaned.Add(1)
			log.Warn("stratum: found block given up: another block holds its height", "node", v.Node, "reason", reason,
				"resubmissions", e.attempts)
		case errors.Is(err, store.ErrConflict):
			log.Info("stratum: found block out of reach and no longer submitted", "node", v.Node)
		default:
			r.reschedule(e.hash, now, false, false)
			return
		}
		r.forget(e.hash)
		return
	}
	if *budget <= 0 {
		r.reschedule(e.hash, now, false, true)
		return
	}
	*budget--
	r.resubmit(ctx, e, log, now)
}

// resubmit hands e to the source again and records the attempt.
func (r *Resubmitter) resubmit(ctx context.Context, e *pendingBlock, log *slog.Logger, now time.Time) {
	hash := e.hash.String()
	blk := e.block
	if blk == nil {
		if !e.hasRaw {
			// Recorded before stratumd kept blocks (or never assembled):
			// nothing to hand over, only to watch.
			r.reschedule(e.hash, now, false, false)
			return
		}
		var err error
		if blk, err = r.loadBlock(ctx, hash, e.hash); err != nil {
			switch {
			case r.dbDown(ctx, "read a block", err):
			case errors.Is(err, store.ErrNotFound):
				// Stored without its bytes (by a stratumd before them, or
				// its row is not stored yet): watched only.
				r.mu.Lock()
				if p := r.pending[e.hash]; p != nil && p.block == nil {
					p.hasRaw = false
				}
				r.mu.Unlock()
			default:
				log.Error("stratum: found block to resubmit could not be read", "err", err)
			}
			r.reschedule(e.hash, now, false, false)
			return
		}
	}
	cctx, cancel := context.WithTimeout(ctx, resubmitCallTimeout)
	res, err := r.cfg.Source.SubmitBlock(cctx, blk)
	cancel()
	r.resubmitted.Add(1)
	result := describeSubmit(res, err)
	r.dbDown(ctx, "record a resubmission", r.cfg.Store.RecordSubmitAttempt(ctx, hash, now, result))
	attempt := e.attempts + 1
	switch {
	case err != nil:
		r.failed.Add(1)
		log.Warn("stratum: found block resubmitted; not handed over", "attempt", attempt, "err", err)
	case res.Status == chain.Rejected:
		r.rejected.Add(1)
		log.Error("stratum: RESUBMITTED BLOCK REJECTED", "attempt", attempt, "reason", res.Reason)
		serr := r.cfg.Store.SetBlockStatus(ctx, hash, store.BlockRejected, res.Reason, store.BlockSubmitted)
		r.dbDown(ctx, "mark a block rejected", serr)
		if serr == nil || errors.Is(serr, store.ErrConflict) {
			r.forget(e.hash)
			return
		}
	default:
		log.Info("stratum: found block resubmitted", "attempt", attempt, "status", res.Status.String(), "reason", res.Reason)
		if r.chains == nil && (res.Status == chain.Accepted || res.Status == chain.Duplicate) {
			r.forget(e.hash) // nothing better to go by
			return
		}
	}
	// An accepted block is looked for in the best chain soon; anything
	// else waits its backoff.
	r.reschedule(e.hash, now, true, err == nil && res.Status == chain.Accepted)
}

// dbDown reports whether err is a failure of the database (not an answer
// such as ErrNotFound or ErrConflict) and logs the first failure of a
// streak and the end of one: while PostgreSQL is down every block would
// fail the same way.
func (r *Resubmitter) dbDown(ctx context.Context, op string, err error) bool {
	down := err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict)
	switch {
	case down && !r.dbFailing && ctx.Err() == nil:
		r.log.Warn("stratum: resubmitter: database failing; found blocks are followed in memory and recorded later",
			"op", op, "err", err)
		r.dbFailing = true
	case !down && r.dbFailing:
		r.log.Info("stratum: resubmitter: database reachable again")
		r.dbFailing = false
	}
	return down
}

// loadBlock reads and decodes the stored bytes of the block hash.
func (r *Resubmitter) loadBlock(ctx context.Context, hash string, want chainhash.Hash) (*wire.MsgBlock, error) {
	raw, err := r.cfg.Store.BlockRaw(ctx, hash)
	if err != nil {
		return nil, err
	}
	blk := new(wire.MsgBlock)
	if err := blk.Deserialize(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("decode stored block: %w", err)
	}
	if got := blk.BlockHash(); got != want {
		return nil, fmt.Errorf("stored bytes are block %s", got)
	}
	return blk, nil
}

// reschedule sets when e is due again: after its backoff, which doubles
// when attempted (a resubmission was made) up to MaxBackoff; MinBackoff
// from now when soon.
func (r *Resubmitter) reschedule(hash chainhash.Hash, now time.Time, attempted, soon bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.pending[hash]
	if e == nil {
		return
	}
	if attempted {
		e.attempts++
	}
	if soon {
		e.next = now.Add(r.cfg.MinBackoff)
		return
	}
	e.next = now.Add(e.backoff.Next())
}

// newBackoff is a followed block's resubmission schedule: MinBackoff
// doubling to MaxBackoff.
func (r *Resubmitter) newBackoff() backoff.Backoff {
	return backoff.Backoff{Min: r.cfg.MinBackoff, Max: r.cfg.MaxBackoff}
}

// forget stops following hash.
func (r *Resubmitter) forget(hash chainhash.Hash) {
	r.mu.Lock()
	delete(r.pending, hash)
	r.mu.Unlock()
}

// describeSubmit is a SubmitBlock outcome as blocks.last_submit_result
// keeps it.
func describeSubmit(res chain.SubmitResult, err error) string {
	switch {
	case err != nil:
		return "error: " + err.Error()
	case res.Reason != "":
		return res.Status.String() + ": " + res.Reason
	}
	return res.Status.String()
}
