package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// dailyKey is one row of worker_daily.
type dailyKey struct {
	user, worker string
	day          time.Time // UTC midnight
}

// dailySum is what one batch adds to a worker_daily row.
type dailySum struct {
	shares    int64
	diff      float64
	best      float64
	bestAt    time.Time
	lastShare time.Time
}

// workerDailyUpsert returns the statement and arguments that add the
// shares of a batch to worker_daily (migration 00009), for the transaction
// that stores them: one upsert for the whole batch. Rows are upserted in
// key order, so that two drainers (two instances) writing the same workers
// lock the rows in the same order and never deadlock.
func workerDailyUpsert(shares []StoredShare) (string, []any) {
	sums := make(map[dailyKey]*dailySum)
	for i := range shares {
		s := &shares[i].Share
		k := dailyKey{user: s.Username, worker: s.Worker, day: utcDay(s.Time)}
		d := sums[k]
		if d == nil {
			d = new(dailySum)
			sums[k] = d
		}
		d.shares++
		d.diff += s.Difficulty
		if s.ShareDifficulty > d.best {
			d.best, d.bestAt = s.ShareDifficulty, s.Time
		}
		if s.Time.After(d.lastShare) {
			d.lastShare = s.Time
		}
	}
	keys := make([]dailyKey, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b dailyKey) int {
		return cmp.Or(cmp.Compare(a.user, b.user), cmp.Compare(a.worker, b.worker), a.day.Compare(b.day))
	})
	n := len(keys)
	users, workers := make([]string, n), make([]string, n)
	days, bestAt, last := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	count := make([]int64, n)
	diff, best := make([]float64, n), make([]float64, n)
	for i, k := range keys {
		d := sums[k]
		users[i], workers[i], days[i] = k.user, k.worker, k.day
		count[i], diff[i], best[i], bestAt[i], last[i] = d.shares, d.diff, d.best, d.bestAt, d.lastShare
	}
	return `
		INSERT INTO worker_daily AS w (username, worker, day, shares, difficulty_sum, best_share_difficulty, best_share_at, last_share)
		SELECT u, wk, d::date, n, ds, b, ba, l
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::float8[], $6::float8[],
		            $7::timestamptz[], $8::timestamptz[]) WITH ORDINALITY AS v(u, wk, d, n, ds, b, ba, l, ord)
		ORDER BY ord
		ON CONFLICT (username, worker, day) DO UPDATE SET
			shares = w.shares + EXCLUDED.shares,
			difficulty_sum = w.difficulty_sum + EXCLUDED.difficulty_sum,
			best_share_at = CASE WHEN EXCLUDED.best_share_difficulty > w.best_share_difficulty
			                     THEN EXCLUDED.best_share_at ELSE w.best_share_at END,
			best_share_difficulty = GREATEST(w.best_share_difficulty, EXCLUDED.best_share_difficulty),
			last_share = GREATEST(w.last_share, EXCLUDED.last_share)`,
		[]any{users, workers, utcDates(days), count, diff, best, bestAt, last}
}

// utcDates formats the days as YYYY-MM-DD for a text-to-date cast: a
// timestamptz cast to date would take the session's time zone, and the
// rows are UTC days (as the share partitions are).
func utcDates(days []time.Time) []string {
	out := make([]string, len(days))
	for i, d := range days {
		out[i] = d.UTC().Format(time.DateOnly)
	}
	return out
}

// WorkerDetail is one worker's statistics as user_worker_stats (migration
// 00009) reports them: what a miner shows on its own screen, from the
// pool's side. The round is the time since the pool's last found block
// (the shares after the share of the newest block not rejected).
type WorkerDetail struct {
	Worker string
	// Accepted counts the worker's accepted shares of all time and
	// AcceptedDifficulty sums their assigned difficulty.
	Accepted           int64
	AcceptedDifficulty float64
	// Rejected counts its rejected submits of all time (as flushed by a
	// RejectCounter), RejectedByReason by stratum's reason name.
	Rejected         int64
	RejectedByReason map[string]int64
	// BestShareDifficulty is the highest achieved difficulty of an accepted
	// share's hash, of all time; zero without shares.
	BestShareDifficulty float64
	BestShareAt         time.Time
	// RoundShares counts its accepted shares of this round;
	// RoundBestShareDifficulty is the best of them (zero without any).
	RoundShares              int64
	RoundBestShareDifficulty float64
	RoundBestShareAt         time.Time
	// Hashrate10m and Hashrate1h are in hashes per second: the assigned
	// difficulty of the shares of the last 10 minutes (hour) × 2^32 over
	// the window's seconds.
	Hashrate10m, Hashrate1h float64
	LastShare, LastReject   time.Time
}

// Round says where the pool's round in progress starts: after the share
// of the block AfterHash (at AfterHeight), or at the pool's start when
// AfterHash is empty.
type Round struct {
	Start       time.Time // the share time of the block the round follows; zero before the first block
	AfterHeight int32
	AfterHash   string
}

// WorkerDetails returns the statistics of user's workers (every worker
// with an accepted or a rejected share on record), sorted by worker name,
// and the round they count "this round" in.
func (s *Store) WorkerDetails(ctx context.Context, user string) ([]WorkerDetail, Round, error) {
	op := fmt.Sprintf("worker details of %q", user)
	var r Round
	var start *time.Time
	var height *int32
	var hash *string
	err := s.pool.QueryRow(ctx, `
		SELECT CASE WHEN after_block_id IS NULL THEN NULL ELSE start_time END, after_height, after_hash
		FROM current_round`).Scan(&start, &height, &hash)
	if err != nil {
		return nil, r, mapErr(op, err)
	}
	if start != nil && height != nil && hash != nil {
		r.Start, r.AfterHeight, r.AfterHash = *start, *height, *hash
	}
	rows, err := s.pool.Query(ctx, `
		SELECT worker, accepted, accepted_difficulty, rejected, rejected_by_reason,
			coalesce(best_share_difficulty, 0), best_share_at, round_shares,
			coalesce(round_best_share_difficulty, 0), round_best_share_at,
			hashrate_10m, hashrate_1h, last_share, last_reject
		FROM user_worker_stats($1) ORDER BY worker`, user)
	if err != nil {
		return nil, r, mapErr(op, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (WorkerDetail, error) {
		var w WorkerDetail
		var byReason []byte
		var bestAt, roundAt, last, lastRej *time.Time
		err := row.Scan(&w.Worker, &w.Accepted, &w.AcceptedDifficulty, &w.Rejected, &byReason,
			&w.BestShareDifficulty, &bestAt, &w.RoundShares, &w.RoundBestShareDifficulty, &roundAt,
			&w.Hashrate10m, &w.Hashrate1h, &last, &lastRej)
		if err != nil {
			return w, err
		}
		if err := json.Unmarshal(byReason, &w.RejectedByReason); err != nil {
			return w, fmt.Errorf("rejected_by_reason: %w", err)
		}
		w.BestShareAt, w.RoundBestShareAt = deref(bestAt), deref(roundAt)
		w.LastShare, w.LastReject = deref(last), deref(lastRej)
		return w, nil
	})
	return out, r, mapErr(op, err)
}

// deref returns *t, or the zero time for nil (a NULL column).
func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
