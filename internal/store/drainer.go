package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratumd/stratumd/internal/backoff"
	"github.com/stratumd/stratumd/internal/store/spool"
)

// readBatchBytes bounds the records one pass reads (and holds) at a time.
const readBatchBytes = 8 << 20

// Drainer retry schedule: the first wait, and MaxBackoff's default.
const (
	drainRetryMin     = 50 * time.Millisecond
	defaultMaxBackoff = 5 * time.Second
)

// DrainerStore is what the Drainer needs of the database (*Store). Its
// answers decide the drainer's course, as *Store gives them:
//
//   - StoreShares stores a batch atomically or not at all. ErrConflict
//     when the spool's progress already covers shares[0] (nothing is
//     written); ErrInvalid or ErrExists when the database refuses a row
//     of the batch (the drainer halves the batch to find it); any other
//     error (ErrUnavailable, a cancelled context) is retried with backoff.
//   - SkipShares moves the progress over seq numbers set aside; it never
//     moves it back.
//   - SpoolProgress is the highest seq stored or skipped (0: none).
type DrainerStore interface {
	StoreShares(ctx context.Context, spoolID [16]byte, instance uint8, shares []StoredShare) error
	SkipShares(ctx context.Context, spoolID [16]byte, instance uint8, through uint64) error
	SpoolProgress(ctx context.Context, spoolID [16]byte) (uint64, error)
}

var _ DrainerStore = (*Store)(nil)

// SpoolReader is what the Drainer needs of a spool (*spool.Spool).
type SpoolReader interface {
	ID() string
	First() uint64
	Durable() uint64
	Notify() <-chan struct{}
	Read(from uint64, max int, maxBytes int) ([]spool.Record, error)
	Trim(through uint64) error
}

// DrainerConfig configures a Drainer.
type DrainerConfig struct {
	// Store is where shares go (*Store). Required.
	Store DrainerStore
	// Spool is read in order and trimmed once stored (*spool.Spool).
	// Required.
	Spool SpoolReader
	// InstanceID is the stratumd instance recorded with the spool's
	// progress.
	InstanceID uint8
	// QuarantineDir receives spool records that cannot be stored (a record
	// that does not decode, or one PostgreSQL refuses), one file each,
	// so that nothing is silently dropped. Required.
	QuarantineDir string
	// BatchSize is the most shares COPYed in one transaction (default 20,000).
	BatchSize int
	// MaxBackoff bounds the wait between retries while PostgreSQL is
	// unreachable (default 5 s; the first retry waits 50 ms).
	MaxBackoff time.Duration
	// FinalDrain bounds the last pass after the context ends (default 5 s):
	// what it does not store stays in the spool for the next start.
	FinalDrain time.Duration
	// OnBlocks, when set, is called after a batch holding block-solving
	// shares is stored, with their blocks rows (without Raw; also after a
	// replay at start). stratumd's recorder writes the blocks' share dumps
	// from it. It runs in the drainer's goroutine: keep it short.
	OnBlocks func(ctx context.Context, blocks []Block)
	Logger   *slog.Logger
}

// DrainerStats counts what a Drainer did since it started.
type DrainerStats struct {
	Stored      uint64 // shares COPYed
	Batches     uint64 // transactions committed
	Failures    uint64 // failed attempts (database errors)
	Quarantined uint64 // records set aside
	StoredSeq   uint64 // highest seq known to be stored
	Backlog     uint64 // durable records not stored yet
	LastError   string
	// StoreLatency is the time each successful StoreShares call (one
	// batch's COPY and commit) took.
	StoreLatency LatencyHistogram
}

// Drainer copies the spool into PostgreSQL in order, exactly once: each batch
// is COPYed in the same transaction that advances the spool's progress row,
// the spool is trimmed only after the commit, and at start the drainer
// resumes after the stored progress, so a crash at any point neither loses
// nor duplicates a share. While PostgreSQL is unreachable it retries with
// backoff and the spool grows.
//
// Run runs it; the other methods are safe for concurrent use.
type Drainer struct {
	cfg     DrainerConfig
	log     *slog.Logger
	spoolID [16]byte

	stored      atomic.Uint64 // highest seq stored
	nStored     atomic.Uint64
	nBatches    atomic.Uint64
	nFailures   atomic.Uint64
	nQuarantine atomic.Uint64

	mu      sync.Mutex
	latency LatencyHistogram // guarded by mu
	lastErr string
	waiters chan struct{} // closed and replaced whenever stored advances
}

// NewDrainer checks cfg and returns a Drainer; it starts nothing.
func NewDrainer(cfg DrainerConfig) (*Drainer, error) {
	if cfg.Store == nil || cfg.Spool == nil {
		return nil, fmt.Errorf("drainer: store and spool are required: %w", ErrInvalid)
	}
	if cfg.QuarantineDir == "" {
		return nil, fmt.Errorf("drainer: quarantine directory is required: %w", ErrInvalid)
	}
	id, err := hex.DecodeString(cfg.Spool.ID())
	if err != nil || len(id) != 16 {
		return nil, fmt.Errorf("drainer: spool id %q is not 16 bytes of hex: %w", cfg.Spool.ID(), ErrInvalid)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 20000
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = defaultMaxBackoff
	}
	if cfg.FinalDrain <= 0 {
		cfg.FinalDrain = 5 * time.Second
	}
	d := &Drainer{cfg: cfg, log: cfg.Logger, waiters: make(chan struct{})}
	if d.log == nil {
		d.log = slog.Default()
	}
	copy(d.spoolID[:], id)
	return d, nil
}

// Stats returns the drainer's counters.
func (d *Drainer) Stats() DrainerStats {
	d.mu.Lock()
	lastErr := d.lastErr
	latency := d.latency.clone()
	d.mu.Unlock()
	st := DrainerStats{
		Stored: d.nStored.Load(), Batches: d.nBatches.Load(), Failures: d.nFailures.Load(),
		Quarantined: d.nQuarantine.Load(), StoredSeq: d.stored.Load(), LastError: lastErr,
		StoreLatency: latency,
	}
	if dur := d.cfg.Spool.Durable(); dur > st.StoredSeq {
		st.Backlog = dur - st.StoredSeq
	}
	return st
}

// WaitStored blocks until every record up to seq is stored (or set aside),
// or ctx ends.
func (d *Drainer) WaitStored(ctx context.Context, seq uint64) error {
	for {
		d.mu.Lock()
		ch := d.waiters
		d.mu.Unlock()
		if d.stored.Load() >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for share %d to be stored: %w", seq, ctx.Err())
		}
	}
}

func (d *Drainer) advance(seq uint64) {
	if seq <= d.stored.Load() {
		return
	}
	d.stored.Store(seq)
	d.mu.Lock()
	close(d.waiters)
	d.waiters = make(chan struct{})
	d.mu.Unlock()
}

func (d *Drainer) fail(err error) {
	d.nFailures.Add(1)
	d.mu.Lock()
	d.lastErr = err.Error()
	d.mu.Unlock()
}

// Run drains until ctx ends, then makes one last bounded pass. It returns
// nil on a normal stop and an error only when the spool itself fails. A
// stop that comes before Run has read where to resume (a daemon stopped
// right after it started) still gets the last pass: it resumes within the
// pass's bound, so shares acknowledged since the start are stored.
func (d *Drainer) Run(ctx context.Context) error {
	next, err := d.resume(ctx)
	if err != nil && ctx.Err() == nil {
		return err
	}
	for err == nil && ctx.Err() == nil {
		n, err := d.pass(ctx, &next)
		if err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		select {
		case <-ctx.Done():
		case <-d.cfg.Spool.Notify():
		case <-time.After(time.Second): // belt and braces: a missed signal costs a second
		}
	}
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.FinalDrain)
	defer cancel()
	if err != nil {
		if next, err = d.resume(final); err != nil {
			d.log.Info("spool not drained at stop; it replays at the next start", "err", err)
			return nil
		}
	}
	for final.Err() == nil {
		n, err := d.pass(final, &next)
		if err != nil || n == 0 {
			break
		}
	}
	if b := d.Stats().Backlog; b > 0 {
		d.log.Info("spool not fully drained at stop; it replays at the next start", "backlog", b)
	}
	return nil
}

// resume finds where to start: after the stored progress of this spool.
func (d *Drainer) resume(ctx context.Context) (uint64, error) {
	var progress uint64
	err := d.retry(ctx, "read spool progress", func(ctx context.Context) error {
		var err error
		progress, err = d.cfg.Store.SpoolProgress(ctx, d.spoolID)
		return err
	})
	if err != nil {
		return 0, err
	}
	first := d.cfg.Spool.First()
	if progress+1 < first {
		// The spool was trimmed past what the database holds: the database
		// was restored from an older backup. Those shares are not here.
		d.log.Error("spool trimmed past the stored progress: shares between are missing from the database",
			"spool", d.cfg.Spool.ID(), "stored_through", progress, "spool_first", first)
		progress = first - 1
	}
	if progress > 0 && progress >= first {
		// Stored already; trim what an earlier run could not.
		if err := d.cfg.Spool.Trim(progress); err != nil && !errors.Is(err, spool.ErrClosed) {
			d.log.Warn("spool trim failed", "through", progress, "err", err)
		}
	}
	d.advance(progress)
	if dur := d.cfg.Spool.Durable(); dur > progress {
		d.log.Info("replaying spool", "spool", d.cfg.Spool.ID(), "from", progress+1, "through", dur)
	}
	return progress + 1, nil
}

// pass stores one batch starting at *next and returns how many records it
// consumed (0: nothing to do or ctx ended while retrying).
func (d *Drainer) pass(ctx context.Context, next *uint64) (int, error) {
	// A batch stops short of readBatchBytes, but always holds at least one
	// record: a block-solving share's record (up to 4 MB) is read whole.
	recs, err := d.cfg.Spool.Read(*next, d.cfg.BatchSize, readBatchBytes)
	if err != nil {
		if errors.Is(err, spool.ErrTrimmed) {
			*next = d.cfg.Spool.First()
			return 1, nil
		}
		if errors.Is(err, spool.ErrClosed) {
			return 0, nil
		}
		return 0, fmt.Errorf("drainer: read spool: %w", err)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	// Split at records that do not decode: runs of good ones are stored,
	// bad ones set aside, in seq order.
	run := make([]StoredShare, 0, len(recs))
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		err := d.store(ctx, run)
		run = run[:0]
		return err
	}
	for _, r := range recs {
		sh, err := DecodeShare(r.Data)
		if err != nil {
			if err := flush(); err != nil {
				return 0, d.stopErr(ctx, err)
			}
			if err := d.setAside(ctx, r.Seq, r.Data, err); err != nil {
				return 0, d.stopErr(ctx, err)
			}
			continue
		}
		run = append(run, StoredShare{Share: sh, Seq: r.Seq})
	}
	if err := flush(); err != nil {
		return 0, d.stopErr(ctx, err)
	}
	last := recs[len(recs)-1].Seq
	*next = last + 1
	if err := d.cfg.Spool.Trim(last); err != nil && !errors.Is(err, spool.ErrClosed) {
		d.log.Warn("spool trim failed", "through", last, "err", err)
	}
	return len(recs), nil
}

// stopErr turns an error seen while ctx ended into a quiet stop.
func (d *Drainer) stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// store writes shares (in seq order), retrying while the database is
// unavailable and bisecting a batch the database refuses to find the
// records at fault.
func (d *Drainer) store(ctx context.Context, shares []StoredShare) error {
	err := d.retry(ctx, "store shares", func(ctx context.Context) error {
		err := d.timedStore(ctx, shares)
		if errors.Is(err, ErrConflict) {
			// Progress is already past (part of) this batch: keep what is
			// not stored yet.
			progress, perr := d.cfg.Store.SpoolProgress(ctx, d.spoolID)
			if perr != nil {
				return perr
			}
			i := 0
			for i < len(shares) && shares[i].Seq <= progress {
				i++
			}
			d.log.Warn("shares already stored, skipping them", "through", progress, "skipped", i)
			// They were stored by an attempt whose answer was lost (its
			// context ended during the commit): their blocks are stored
			// too, and still need their dump and their follow-up.
			d.blocksStored(ctx, shares[:i])
			shares = shares[i:]
			if len(shares) == 0 {
				d.advance(progress)
				return nil
			}
			err = d.timedStore(ctx, shares)
		}
		return err
	}, ErrInvalid, ErrExists)
	// The database refuses the batch itself (a value it will never take, or
	// a key it already holds from another spool): find the records at
	// fault by halving, and set them aside.
	refused := errors.Is(err, ErrInvalid) || errors.Is(err, ErrExists)
	switch {
	case err == nil && len(shares) == 0:
		return nil // all of it was stored already (progress advanced above)
	case err == nil:
		d.nStored.Add(uint64(len(shares)))
		d.nBatches.Add(1)
		d.advance(shares[len(shares)-1].Seq)
		d.blocksStored(ctx, shares)
		return nil
	case refused && len(shares) == 1:
		return d.setAside(ctx, shares[0].Seq, mustEncode(&shares[0].Share), err)
	case refused:
		half := len(shares) / 2
		if err := d.store(ctx, shares[:half]); err != nil {
			return err
		}
		return d.store(ctx, shares[half:])
	}
	return err
}

// blocksStored calls OnBlocks with the blocks rows (without their bytes) of
// the block-solving shares among stored ones.
func (d *Drainer) blocksStored(ctx context.Context, stored []StoredShare) {
	if d.cfg.OnBlocks == nil {
		return
	}
	var blocks []Block
	for i := range stored {
		if stored[i].Block != nil {
			b := stored[i].BlockRow(stored[i].Seq)
			b.Raw = nil
			blocks = append(blocks, b)
		}
	}
	if len(blocks) > 0 {
		d.cfg.OnBlocks(ctx, blocks)
	}
}

// timedStore is StoreShares, its duration recorded in the latency
// histogram when it succeeds.
func (d *Drainer) timedStore(ctx context.Context, shares []StoredShare) error {
	start := time.Now() // real time: a measurement, not logic
	err := d.cfg.Store.StoreShares(ctx, d.spoolID, d.cfg.InstanceID, shares)
	if err == nil {
		took := time.Since(start)
		d.mu.Lock()
		d.latency.observe(took)
		d.mu.Unlock()
	}
	return err
}

func mustEncode(s *Share) []byte {
	b, _ := AppendShare(nil, s)
	return b
}

// retry runs f until it succeeds, ctx ends, or it fails with one of the
// errors in final (returned as is).
func (d *Drainer) retry(ctx context.Context, what string, f func(context.Context) error, final ...error) error {
	wait := backoff.Backoff{Min: drainRetryMin, Max: d.cfg.MaxBackoff}
	down := false
	for {
		err := f(ctx)
		if err == nil {
			if down {
				d.log.Info("database reachable again", "op", what)
			}
			return nil
		}
		for _, e := range final {
			if errors.Is(err, e) {
				return err
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.fail(err)
		if !down {
			d.log.Error("database write failing; shares stay in the spool and are retried", "op", what, "err", err)
			down = true
		}
		if err := backoff.Sleep(ctx, wait.Next()); err != nil {
			return err
		}
	}
}

// setAside writes a record that cannot be stored to the quarantine
// directory and advances the progress over it, so that draining goes on.
// The file keeps the raw record and the reason.
func (d *Drainer) setAside(ctx context.Context, seq uint64, data []byte, cause error) error {
	if err := os.MkdirAll(d.cfg.QuarantineDir, 0o750); err != nil {
		return fmt.Errorf("drainer: quarantine: %w", err)
	}
	name := filepath.Join(d.cfg.QuarantineDir, fmt.Sprintf("%s-%020d.share", d.cfg.Spool.ID(), seq))
	content := fmt.Sprintf("reason: %v\nrecord: %x\n", cause, data)
	if err := writeFileSync(name, []byte(content)); err != nil {
		return fmt.Errorf("drainer: quarantine: %w", err)
	}
	d.log.Error("share record set aside: it could not be stored", "seq", seq, "file", name, "err", cause)
	d.nQuarantine.Add(1)
	err := d.retry(ctx, "skip share", func(ctx context.Context) error {
		return d.cfg.Store.SkipShares(ctx, d.spoolID, d.cfg.InstanceID, seq)
	})
	if err == nil {
		d.advance(seq)
	}
	return err
}

// writeFileSync writes name durably (temp file, fsync, rename).
func writeFileSync(name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// ShareAppender is what ShareWriter needs of a spool (*spool.Spool).
type ShareAppender interface {
	Append(ctx context.Context, payload []byte) (uint64, error)
}

// ShareWriter encodes accepted shares and appends them to the spool. Write
// returns once the share is durable: only then may it be acknowledged.
// It is safe for concurrent use.
type ShareWriter struct {
	sp   ShareAppender
	bufs sync.Pool
}

// NewShareWriter returns a ShareWriter appending to sp.
func NewShareWriter(sp ShareAppender) *ShareWriter {
	return &ShareWriter{sp: sp, bufs: sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}}
}

// maxPooledBuf is the largest encoding buffer ShareWriter keeps for reuse:
// a block's record (up to 4 MB) is encoded into a buffer of its own.
const maxPooledBuf = 4 << 10

// Write validates, encodes and durably spools s, returning its seq.
func (w *ShareWriter) Write(ctx context.Context, s *Share) (uint64, error) {
	bp := w.bufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBuf {
			w.bufs.Put(bp)
		}
	}()
	b, err := AppendShare((*bp)[:0], s)
	if err != nil {
		return 0, fmt.Errorf("spool share: %w", err)
	}
	*bp = b
	seq, err := w.sp.Append(ctx, b)
	if err != nil {
		return 0, fmt.Errorf("spool share: %w", err)
	}
	return seq, nil
}
