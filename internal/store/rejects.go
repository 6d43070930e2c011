package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/stratumd/stratumd/internal/username"
)

// RejectCounter defaults, used for zero fields of RejectCounterConfig.
const (
	DefaultRejectFlushInterval = 10 * time.Second
	DefaultRejectMaxKeys       = 100_000
	// rejectFinalFlushTimeout bounds Run's last flush, after its context
	// ended.
	rejectFinalFlushTimeout = 5 * time.Second
)

// rejectReasonRE is the rule of worker_rejects.reason.
var rejectReasonRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// RejectCount is what AddRejects adds to one worker_rejects row.
type RejectCount struct {
	Username, Worker, Reason string
	Day                      time.Time // the UTC day (any time of it)
	Count                    int64
	LastAt                   time.Time
}

// AddRejects adds counts to worker_rejects (migration 00009) in one
// statement, in key order (so that two instances never deadlock).
func (s *Store) AddRejects(ctx context.Context, counts []RejectCount) error {
	if len(counts) == 0 {
		return nil
	}
	counts = slices.Clone(counts)
	slices.SortFunc(counts, func(a, b RejectCount) int {
		return cmp.Or(cmp.Compare(a.Username, b.Username), cmp.Compare(a.Worker, b.Worker),
			utcDay(a.Day).Compare(utcDay(b.Day)), cmp.Compare(a.Reason, b.Reason))
	})
	n := len(counts)
	users, workers, days, reasons := make([]string, n), make([]string, n), make([]time.Time, n), make([]string, n)
	ns, last := make([]int64, n), make([]time.Time, n)
	for i, c := range counts {
		users[i], workers[i], days[i], reasons[i], ns[i], last[i] = c.Username, c.Worker, utcDay(c.Day), c.Reason, c.Count, c.LastAt
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO worker_rejects AS j (username, worker, day, reason, count, last_at)
		SELECT u, w, d::date, r, n, l
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[])
			WITH ORDINALITY AS v(u, w, d, r, n, l, ord)
		ORDER BY ord
		ON CONFLICT (username, worker, day, reason) DO UPDATE SET
			count = j.count + EXCLUDED.count,
			last_at = GREATEST(j.last_at, EXCLUDED.last_at)`,
		users, workers, utcDates(days), reasons, ns, last)
	return mapErr(fmt.Sprintf("add %d reject counts", n), err)
}

// RejectStore is where a RejectCounter writes (*Store).
type RejectStore interface {
	AddRejects(ctx context.Context, counts []RejectCount) error
}

// RejectCounterConfig configures a RejectCounter. Store is required.
type RejectCounterConfig struct {
	Store RejectStore
	// Interval is the time between two flushes (default 10 s).
	Interval time.Duration
	// MaxKeys bounds the counts held in memory, one per user, worker, day
	// and reason (default 100,000); rejects beyond it, while the database
	// is unavailable, are counted in Stats().Dropped only.
	MaxKeys int
	// Logger receives the counter's log lines (default slog.Default()).
	Logger *slog.Logger
}

// RejectCounter counts rejected submits per user, worker and reason in
// memory and adds the counts to worker_rejects every Interval, one row per
// worker, day and reason: a flood of rejected submits costs a counter
// increment each, never a row each. It implements stratum.RejectObserver.
// Counts not yet flushed are lost if the process dies (SIGKILL); a clean
// stop flushes them (Run). While the database is unavailable the counts
// stay in memory, at most MaxKeys of them, and are added by a later flush.
// Its methods are safe for concurrent use; Run is its one goroutine.
type RejectCounter struct {
	cfg RejectCounterConfig
	log *slog.Logger

	mu      sync.Mutex
	pending map[rejectKey]*rejectVal
	stats   RejectCounterStats
}

type rejectKey struct {
	user, worker, reason string
	day                  time.Time
}

type rejectVal struct {
	n    int64
	last time.Time
}

// RejectCounterStats are a RejectCounter's own counters.
type RejectCounterStats struct {
	// Observed counts the rejects heard of; Flushed those written to the
	// database; Dropped those never to be written (invalid values, or
	// beyond MaxKeys); Pending those held in memory now.
	Observed, Flushed, Dropped, Pending uint64
	// FlushFailures counts flushes the database refused or missed.
	FlushFailures uint64
}

// NewRejectCounter checks cfg and returns a RejectCounter; it starts nothing.
func NewRejectCounter(cfg RejectCounterConfig) (*RejectCounter, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("store: reject counter: %w: no store", ErrInvalid)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultRejectFlushInterval
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultRejectMaxKeys
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &RejectCounter{cfg: cfg, log: cfg.Logger, pending: make(map[rejectKey]*rejectVal)}, nil
}

// validReject says whether worker_rejects would take the values.
func validReject(user, worker, reason string) bool {
	return username.Valid(user) == nil && len(worker) <= maxShareText && utf8.ValidString(worker) &&
		!hasNUL(worker) && rejectReasonRE.MatchString(reason)
}

// ObserveReject counts one rejected submit of user's worker for reason at
// the given time. It only touches memory.
func (c *RejectCounter) ObserveReject(user, worker, reason string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Observed++
	if !validReject(user, worker, reason) {
		c.stats.Dropped++
		return
	}
	c.addLocked(rejectKey{user: user, worker: worker, reason: reason, day: utcDay(at)}, 1, at)
}

// addLocked adds n rejects under k, unless the map is full.
func (c *RejectCounter) addLocked(k rejectKey, n int64, at time.Time) {
	v := c.pending[k]
	if v == nil {
		if len(c.pending) >= c.cfg.MaxKeys {
			c.stats.Dropped += uint64(n)
			return
		}
		v = new(rejectVal)
		c.pending[k] = v
	}
	v.n += n
	if at.After(v.last) {
		v.last = at
	}
	c.stats.Pending += uint64(n)
}

// Flush writes the counts held in memory. On failure they are kept for
// the next flush (except those the database refuses as invalid, which
// are dropped and logged).
func (c *RejectCounter) Flush(ctx context.Context) error {
	c.mu.Lock()
	taken := c.pending
	if len(taken) == 0 {
		c.mu.Unlock()
		return nil
	}
	c.pending = make(map[rejectKey]*rejectVal, len(taken))
	var total uint64
	counts := make([]RejectCount, 0, len(taken))
	for k, v := range taken {
		counts = append(counts, RejectCount{Username: k.user, Worker: k.worker, Reason: k.reason, Day: k.day,
			Count: v.n, LastAt: v.last})
		total += uint64(v.n)
	}
	c.stats.Pending -= total
	c.mu.Unlock()

	err := c.cfg.Store.AddRejects(ctx, counts)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		c.stats.Flushed += total
		return nil
	case errors.Is(err, ErrInvalid):
		c.stats.FlushFailures++
		c.stats.Dropped += total
		c.log.Error("reject counts refused by the database; dropped", "rejects", total, "err", err)
		return err
	default:
		c.stats.FlushFailures++
		for k, v := range taken {
			c.addLocked(k, v.n, v.last)
		}
		return err
	}
}

// Stats returns the counter's own counters.
func (c *RejectCounter) Stats() RejectCounterStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Run flushes every Interval until ctx ends, then flushes once more
// (bounded by a few seconds) and returns nil.
func (c *RejectCounter) Run(ctx context.Context) error {
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rejectFinalFlushTimeout)
			defer cancel()
			if err := c.Flush(fctx); err != nil {
				c.log.Warn("last flush of reject counts failed; they are lost", "pending", c.Stats().Pending, "err", err)
			}
			return nil
		case <-tick.C:
			if err := c.Flush(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("flush of reject counts failed; kept for the next", "err", err)
			}
		}
	}
}
