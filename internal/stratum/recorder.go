package stratum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratumd/stratumd/internal/backoff"
	"github.com/stratumd/stratumd/internal/store"
)

// Recorder defaults, used for zero fields of RecorderConfig.
const (
	DefaultRecorderScan  = time.Minute
	DefaultRecorderRetry = time.Second
	DefaultRecorderGrace = 10 * time.Second
	// recorderMaxRetry caps the wait between attempts at a failing dump.
	recorderMaxRetry = time.Minute
	// recorderScanLimit bounds the blocks one scan of the table returns.
	recorderScanLimit = 1000
)

// BlockDump is the content of <ShareDir>/<height>-<hash>.json, written for
// every block the pool finds.
type BlockDump struct {
	Height            int32      `json:"height"`
	Hash              string     `json:"hash"`
	PrevHash          string     `json:"prev_hash"`
	Time              time.Time  `json:"time"` // RFC 3339, UTC: when the share was accepted
	Finder            DumpFinder `json:"finder"`
	Reward            int64      `json:"reward"` // satoshis: the coinbase value
	NetworkDifficulty float64    `json:"network_difficulty"`
	Status            string     `json:"status"` // the blocks row's status when it was recorded
	// Mode is "pplns" (the pool's block) or "solo" (its coinbase paid the
	// finder, user "solo:<address>"; payout never credits it).
	Mode  string    `json:"mode"`
	Round RoundDump `json:"round"`
}

// DumpFinder names the worker whose share was the block.
type DumpFinder struct {
	User   string `json:"user"`
	Worker string `json:"worker"`
}

// RoundDump sums the round ending with the block: every share after the
// pool's previous (not rejected) block, through the block's own share. A
// pool block's round counts pool shares only and starts after the previous
// pool block; a solo block's round is its finder's shares since that solo
// miner's previous block.
type RoundDump struct {
	// From is the previous block's hash; null for the pool's first block.
	From  *string           `json:"from"`
	Users []store.RoundUser `json:"users"`
}

// RecorderStore is what the Recorder needs of the store (*store.Store).
type RecorderStore interface {
	PreviousBlock(ctx context.Context, pos store.SharePos, finder string) (store.Block, error)
	RoundSummary(ctx context.Context, after, through store.SharePos, finder string) ([]store.RoundUser, error)
	BlocksToDump(ctx context.Context, limit int) ([]store.Block, error)
	MarkDumped(ctx context.Context, hash string, at time.Time) error
}

// RecorderConfig configures a Recorder. Store is required.
type RecorderConfig struct {
	// Store sums rounds and keeps which dumps are written (dumped_at).
	Store RecorderStore
	// ShareDir receives <height>-<hash>.json. Empty: no dump is written and
	// Run only waits for its context (the blocks stay undumped, and get
	// their dump from a later run that has a ShareDir).
	ShareDir string
	// ScanInterval is how often the blocks table is read for blocks
	// without a dump (default DefaultRecorderScan); also at start.
	ScanInterval time.Duration
	// RetryMin is the first wait before a failed dump is tried again
	// (default DefaultRecorderRetry), doubling up to a minute.
	RetryMin time.Duration
	// StopGrace bounds the dumps still written once Run's context ends
	// (default DefaultRecorderGrace); what it leaves undone is done at the
	// next start.
	StopGrace time.Duration
	// Logger receives the recorder's log lines (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock for dumped_at (default time.Now).
	Now func() time.Time
}

// RecorderStats count what a Recorder did since New.
type RecorderStats struct {
	Written  uint64 // dump files written (and marked so)
	Existing uint64 // blocks whose dump file was there already (marked)
	Failures uint64 // failed attempts (retried)
	Queued   int    // blocks waiting now
}

// Recorder writes the <height>-<hash>.json share dump of every found block,
// once: the one writer of dumps. It is fed by the drainer (Stored, once a
// block's share and row are in PostgreSQL), by the session for a block it
// inserted directly (Add), and by a scan of the blocks table for blocks
// whose dump is not marked written (at start and every ScanInterval: a
// block stored just before a crash, or whose batch the drainer found
// stored already). A dump is written through a temporary file, fsync and
// rename, then marked in blocks.dumped_at; a dump file that exists is not
// written again. Failures are retried with backoff.
//
// Run runs it in the caller's goroutine; Stored, Add and Stats are safe for
// concurrent use, also before Run and after it returned.
type Recorder struct {
	cfg RecorderConfig
	log *slog.Logger

	mu      sync.Mutex
	queue   []store.Block       // waiting, in arrival order
	queued  map[string]struct{} // hashes in queue
	wake    chan struct{}       // capacity 1: queue grew
	retries map[string]*retryDump

	written, existing, failures atomic.Uint64
}

// retryDump is a dump that failed, waiting for its next attempt. Only
// Run's goroutine touches it.
type retryDump struct {
	b       store.Block
	next    time.Time
	backoff backoff.Backoff // RetryMin doubling to recorderMaxRetry
}

// NewRecorder checks cfg and returns a Recorder; it starts nothing.
func NewRecorder(cfg RecorderConfig) (*Recorder, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: recorder: no store", ErrConfig)
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = DefaultRecorderScan
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRecorderRetry
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultRecorderGrace
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Recorder{cfg: cfg, log: cfg.Logger, queued: make(map[string]struct{}),
		wake: make(chan struct{}, 1), retries: make(map[string]*retryDump)}, nil
}

// Stored queues the dumps of blocks whose share and row were just stored:
// the drainer's OnBlocks callback. It never blocks.
func (r *Recorder) Stored(_ context.Context, blocks []store.Block) {
	for _, b := range blocks {
		r.Add(b)
	}
}

// Add queues the dump of the stored block b (a block queued already is
// not queued twice). It never blocks; without a ShareDir it does nothing.
func (r *Recorder) Add(b store.Block) {
	if r.cfg.ShareDir == "" {
		return
	}
	b.Raw = nil
	r.mu.Lock()
	if _, ok := r.queued[b.Hash]; !ok {
		r.queued[b.Hash] = struct{}{}
		r.queue = append(r.queue, b)
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Stats returns the recorder's counters.
func (r *Recorder) Stats() RecorderStats {
	r.mu.Lock()
	n := len(r.queue)
	r.mu.Unlock()
	return RecorderStats{Written: r.written.Load(), Existing: r.existing.Load(), Failures: r.failures.Load(), Queued: n}
}

// Run writes dumps until ctx ends, then for at most StopGrace more writes
// the dumps still queued, and returns nil.
func (r *Recorder) Run(ctx context.Context) error {
	if r.cfg.ShareDir == "" {
		<-ctx.Done()
		return nil
	}
	scan := time.NewTicker(r.cfg.ScanInterval)
	defer scan.Stop()
	r.scan(ctx)
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for ctx.Err() == nil {
		r.drain(ctx)
		retry.Reset(r.nextRetry())
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-retry.C:
		case <-scan.C:
			r.scan(ctx)
		}
	}
	grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.StopGrace)
	defer cancel()
	r.drain(grace)
	if st := r.Stats(); st.Queued > 0 || len(r.retries) > 0 {
		r.log.Warn("stratum: share dumps left for the next start", "queued", st.Queued, "failing", len(r.retries))
	}
	return nil
}

// scan queues the blocks the table says have no dump yet.
func (r *Recorder) scan(ctx context.Context) {
	blocks, err := r.cfg.Store.BlocksToDump(ctx, recorderScanLimit)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("stratum: looking for blocks without a share dump failed; will retry", "err", err)
		}
		return
	}
	for _, b := range blocks {
		if _, failing := r.retries[b.Hash]; !failing {
			r.Add(b)
		}
	}
}

// drain writes the queued dumps and the failed ones that are due, one at a
// time, until none is left or ctx ends.
func (r *Recorder) drain(ctx context.Context) {
	for ctx.Err() == nil {
		var b store.Block
		r.mu.Lock()
		if len(r.queue) > 0 {
			b = r.queue[0]
			r.queue[0] = store.Block{}
			r.queue = r.queue[1:]
		}
		r.mu.Unlock()
		if b.Hash == "" {
			now := r.cfg.Now()
			for _, rd := range r.retries {
				if !now.Before(rd.next) {
					b = rd.b
					break
				}
			}
			if b.Hash == "" {
				return
			}
		}
		err := r.dump(ctx, b)
		r.mu.Lock()
		delete(r.queued, b.Hash)
		r.mu.Unlock()
		if err == nil {
			delete(r.retries, b.Hash)
			continue
		}
		if ctx.Err() != nil {
			r.retries[b.Hash] = r.newRetry(b)
			return
		}
		r.failures.Add(1)
		rd := r.retries[b.Hash]
		if rd == nil {
			rd = r.newRetry(b)
			r.retries[b.Hash] = rd
		}
		wait := rd.backoff.Next()
		rd.next = r.cfg.Now().Add(wait)
		r.log.Error("stratum: block share dump not written; will retry", "height", b.Height, "hash", b.Hash, "in", wait, "err", err)
	}
}

// newRetry is b's dump waiting for its next attempt, due at once.
func (r *Recorder) newRetry(b store.Block) *retryDump {
	return &retryDump{b: b, backoff: backoff.Backoff{Min: r.cfg.RetryMin, Max: recorderMaxRetry}}
}

// nextRetry is the wait until the next failed dump is due (an hour when
// none is).
func (r *Recorder) nextRetry() time.Duration {
	d := time.Hour
	now := r.cfg.Now()
	for _, rd := range r.retries {
		d = min(d, max(rd.next.Sub(now), time.Millisecond))
	}
	return d
}

// dump writes the dump of b unless its file exists, and marks it written.
func (r *Recorder) dump(ctx context.Context, b store.Block) error {
	name := filepath.Join(r.cfg.ShareDir, fmt.Sprintf("%d-%s.json", b.Height, b.Hash))
	wrote := false
	if _, err := os.Stat(name); err != nil {
		d, err := r.build(ctx, b)
		if err != nil {
			return err
		}
		if _, err := writeDump(r.cfg.ShareDir, d); err != nil {
			return err
		}
		wrote = true
		r.log.Info("stratum: block share dump written", "file", name, "users", len(d.Round.Users))
	}
	if err := r.cfg.Store.MarkDumped(ctx, b.Hash, r.cfg.Now()); err != nil {
		return fmt.Errorf("mark the dump written: %w", err)
	}
	if wrote {
		r.written.Add(1)
	} else {
		r.existing.Add(1)
	}
	return nil
}

// build sums the round of the stored block b into its dump.
func (r *Recorder) build(ctx context.Context, b store.Block) (*BlockDump, error) {
	var after store.SharePos
	var from *string
	prev, err := r.cfg.Store.PreviousBlock(ctx, b.LastShare, b.Username)
	switch {
	case err == nil:
		after, from = prev.LastShare, &prev.Hash
	case errors.Is(err, store.ErrNotFound):
	default:
		return nil, fmt.Errorf("previous block: %w", err)
	}
	users, err := r.cfg.Store.RoundSummary(ctx, after, b.LastShare, b.Username)
	if err != nil {
		return nil, fmt.Errorf("round summary: %w", err)
	}
	if users == nil {
		users = []store.RoundUser{}
	}
	return &BlockDump{
		Height:            b.Height,
		Hash:              b.Hash,
		PrevHash:          b.PrevHash,
		Time:              b.FoundAt.UTC(),
		Finder:            DumpFinder{User: b.Username, Worker: b.Worker},
		Reward:            b.Reward,
		NetworkDifficulty: b.NetworkDifficulty,
		Status:            string(b.Status),
		Mode:              string(store.ModeOf(b.Username)),
		Round:             RoundDump{From: from, Users: users},
	}, nil
}

// writeDump writes dir/<height>-<hash>.json through a temporary file,
// fsync and rename, so that a reader never sees a partial file.
func writeDump(dir string, d *BlockDump) (string, error) {
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode block dump: %w", err)
	}
	data = append(data, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("share dir: %w", err)
	}
	name := filepath.Join(dir, fmt.Sprintf("%d-%s.json", d.Height, d.Hash))
	f, err := os.CreateTemp(dir, ".dump-*.tmp")
	if err != nil {
		return "", fmt.Errorf("block dump: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("block dump %s: %w", name, err)
	}
	if dh, err := os.Open(dir); err == nil {
		_ = dh.Sync()
		dh.Close()
	}
	return name, nil
}
