package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// payoutLockKey is the pg_advisory_lock key `payout run` holds for its whole
// run ("payout" in ASCII; internal/payout's lockKey). Retention takes it for
// its transaction, so that no block is credited while the partitions a
// payout needs are being worked out and dropped.
const payoutLockKey int64 = 0x7061796f7574

// RetentionResult says what ApplyRetention did.
type RetentionResult struct {
	// Needed is the oldest share time a block not yet credited (or the
	// round in progress) may still need; partitions holding it or anything
	// later are kept. Zero when KeepAll.
	Needed time.Time
	// KeepAll: no bound could be worked out (no block credited yet with a
	// window that covers the pending ones), so every partition is kept.
	KeepAll bool
	// Cutoff: partitions whose whole day lies before it were dropped (the
	// earlier of now-retention and Needed). Zero when KeepAll.
	Cutoff time.Time
	// Dropped names the partitions dropped, oldest first.
	Dropped []string
}

// neededSQL works out, for every block a payout may still credit and for
// the round in progress, the oldest share its PPLNS window can reach, from
// the windows of credited blocks:
//
// A credited block C found no later than block B (by last share), whose
// window target is at least B's (the largest PPLNS factor used so far times
// B's network difficulty), started its window no later than B's can start:
// B's window ends later and sums no more difficulty. So does a credited
// block whose window was not full: it reached the oldest share there was.
// The latest such C bounds B; a block with no such C (nothing credited yet,
// or the difficulty rose past every credited window) yields NULL: keep
// everything. The round in progress is taken at the latest block's network
// difficulty; a retarget may raise it (at most 4×), which the retention
// setting must leave room for. Solo blocks (mode 'solo') have no PPLNS
// window and hold no share back.
const neededSQL = `
WITH factor AS (SELECT max(pplns_factor) AS f FROM block_splits),
pending AS (
	SELECT share_time, share_instance::int AS share_instance, share_seq, network_difficulty
	FROM blocks WHERE mode = 'pplns' AND (status IN ('submitted', 'confirmed', 'matured')
	   -- payout rechecks an orphaned block until it is deeper than the
	   -- coinbase maturity: a reorganization may still bring it back
	   OR (status = 'orphaned' AND found_at > now() - interval '2 days'))
	UNION ALL
	SELECT 'infinity'::timestamptz, 256, 0,
		(SELECT network_difficulty FROM blocks ORDER BY found_at DESC, id DESC LIMIT 1)
)
SELECT (
	SELECT s.oldest_time FROM blocks b JOIN block_splits s ON s.block_id = b.id
	WHERE b.status = 'credited' AND s.oldest_time IS NOT NULL
	  AND (b.share_time, b.share_instance, b.share_seq) <= (p.share_time, p.share_instance, p.share_seq)
	  AND (s.window_counted < s.window_target OR s.window_target >= p.network_difficulty * factor.f)
	ORDER BY b.share_time DESC, b.share_instance DESC, b.share_seq DESC
	LIMIT 1)
FROM pending p, factor`

// ApplyRetention drops the daily share partitions older than retention
// before now, never one a payout may still need (see RetentionResult). It
// runs in one transaction under the payout advisory lock; when a payout run
// (or another instance's retention) holds it, it returns an error wrapping
// ErrConflict and drops nothing. A retention of 0 or less keeps everything.
// It is safe to run from several instances at once.
func (s *Store) ApplyRetention(ctx context.Context, now time.Time, retention time.Duration) (RetentionResult, error) {
	var res RetentionResult
	if retention <= 0 {
		res.KeepAll = true
		return res, nil
	}
	parts, err := s.Partitions(ctx)
	if err != nil {
		return res, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, payoutLockKey).Scan(&locked); err != nil {
			return mapErr("retention: advisory lock", err)
		}
		if !locked {
			return fmt.Errorf("retention: a payout run holds the lock: %w", ErrConflict)
		}
		needed, keepAll, err := oldestNeeded(ctx, tx)
		if err != nil {
			return err
		}
		if keepAll {
			res.KeepAll = true
			return nil
		}
		res.Needed = needed
		res.Cutoff = now.Add(-retention).UTC()
		if needed.Before(res.Cutoff) {
			res.Cutoff = needed.UTC()
		}
		for _, p := range parts {
			if p.Day.AddDate(0, 0, 1).After(res.Cutoff) {
				break
			}
			if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{p.Name}.Sanitize()); err != nil {
				return mapErr("retention: drop partition "+p.Name, err)
			}
			res.Dropped = append(res.Dropped, p.Name)
		}
		return nil
	})
	if err != nil {
		res.Dropped = nil
		return res, err
	}
	s.partMu.Lock()
	for _, p := range parts {
		if p.Day.AddDate(0, 0, 1).Compare(res.Cutoff) <= 0 {
			delete(s.partDays, p.Day)
		}
	}
	s.partMu.Unlock()
	return res, nil
}

// OldestNeededShare returns the oldest share time a block not yet credited
// (or the round in progress) may still need, and false when no bound can be
// worked out (keep every share). See ApplyRetention.
func (s *Store) OldestNeededShare(ctx context.Context) (time.Time, bool, error) {
	t, keepAll, err := oldestNeeded(ctx, s.pool)
	return t, !keepAll, err
}

type rowQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func oldestNeeded(ctx context.Context, q rowQuerier) (time.Time, bool, error) {
	rows, err := q.Query(ctx, neededSQL)
	if err != nil {
		return time.Time{}, false, mapErr("retention: oldest needed share", err)
	}
	bounds, err := pgx.CollectRows(rows, pgx.RowTo[*time.Time])
	if err != nil {
		return time.Time{}, false, mapErr("retention: oldest needed share", err)
	}
	var oldest time.Time
	for _, b := range bounds {
		if b == nil {
			return time.Time{}, true, nil
		}
		if oldest.IsZero() || b.Before(oldest) {
			oldest = *b
		}
	}
	if oldest.IsZero() {
		return time.Time{}, true, nil // cannot happen: the round in progress is always a row
	}
	return oldest, false, nil
}
