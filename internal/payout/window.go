package payout

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stratumd/stratumd/internal/store"
)

// querier is what the window and ledger SQL need: a pool, a connection or a
// transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Window is a block's PPLNS window: the last Target of share difficulty up to
// and including the block's last share.
type Window struct {
	Target  float64         `json:"target"`  // N = factor × network difficulty
	Counted float64         `json:"counted"` // difficulty counted; < Target when the pool is young
	Shares  int64           `json:"shares"`  // shares counted, the partial one included
	Weights []Weight        `json:"-"`       // per user, sorted by name
	Oldest  *store.SharePos `json:"-"`       // the oldest share counted (in part); nil: none
}

// Full reports whether the window reached its target.
func (w *Window) Full() bool { return w.Counted >= w.Target }

// Tuning of the window walk: each chunk is summed per user in chunkBuckets
// time buckets; the bucket holding the boundary is split the same way until
// it holds at most streamRows shares, which are then read one by one.
const (
	streamRows   = 20000
	chunkBuckets = 16
	initialSpan  = 10 * time.Minute
	minSpan      = time.Minute
	maxSpanGrow  = 16
	spanHeadroom = 1.25
)

type bucket struct {
	start time.Time
	users map[string]float64
	total float64
	n     int64
}

// SelectWindow walks the shares table backwards from last (inclusive) in
// (time, instance_id, seq) order, adding share difficulty until target is
// reached; the share that crosses target counts only for the part still
// missing. When the table runs out first (a young pool) every share up to
// last is counted.
//
// The walk reads time chunks summed per user and per time bucket by
// PostgreSQL, so that each share is read about once: chunk sizes follow the
// observed share rate, and only the bucket holding the boundary is read
// again (split into finer buckets, then row by row). Sums of integer-valued
// difficulties are exact in float64 whatever the order. The queries run in
// pgx's exec mode (unnamed statements), so that PostgreSQL plans each for
// its actual time range: partitions pruned at plan time and a parallel scan
// for big chunks; a cached generic plan is several times slower.
func SelectWindow(ctx context.Context, q querier, last store.SharePos, target float64) (Window, error) {
	if !(target > 0) || math.IsInf(target, 0) {
		return Window{}, fmt.Errorf("pplns window: target %v: %w", target, ErrInvalid)
	}
	wk := walker{q: q, last: last, target: target, sums: map[string]float64{}}
	wk.w.Target = target
	hi := last.Time.Truncate(time.Microsecond).Add(time.Microsecond) // exclusive
	span := initialSpan
	for {
		lo := hi.Add(-span)
		done, tot, err := wk.walk(ctx, lo, hi)
		if err != nil {
			return Window{}, err
		}
		if done {
			break
		}
		// Is there anything older? Jump over gaps in one step.
		var older time.Time
		err = q.QueryRow(ctx, `SELECT time FROM shares WHERE time < $1 ORDER BY time DESC LIMIT 1`, lo).Scan(&older)
		if err == pgx.ErrNoRows {
			wk.w.Counted = wk.acc
			wk.w.Weights = weights(wk.sums)
			return wk.w, wk.w.oldest(ctx, q, lo, last)
		}
		if err != nil {
			return Window{}, dbErr("pplns window: older shares", err)
		}
		prev := span
		if tot > 0 {
			est := time.Duration(float64(span) * (target - wk.acc) / tot * spanHeadroom)
			span = min(max(est, minSpan), prev*maxSpanGrow)
		} else {
			span = prev * 2
		}
		hi = older.Truncate(time.Microsecond).Add(time.Microsecond)
	}
	wk.w.Counted = min(wk.acc, target)
	wk.w.Weights = weights(wk.sums)
	return wk.w, nil
}

type walker struct {
	q      querier
	last   store.SharePos
	target float64
	acc    float64
	sums   map[string]float64
	w      Window
}

// walk adds the shares of [lo, hi), newest first, until the target is
// reached (done) and returns the difficulty the range held in whole
// buckets that were added.
func (wk *walker) walk(ctx context.Context, lo, hi time.Time) (done bool, added float64, err error) {
	width := (hi.Sub(lo) + chunkBuckets - 1) / chunkBuckets
	width = max(width.Truncate(time.Microsecond), time.Microsecond)
	rows, err := wk.q.Query(ctx, `
		SELECT date_bin($6 * interval '1 microsecond', time, $1), username, sum(difficulty), count(*) FROM shares
		WHERE time >= $1 AND time < $2 AND time <= $3
		  AND (time, instance_id, seq) <= ($3, $4, $5)
		GROUP BY 1, 2`, pgx.QueryExecModeExec, lo, hi, wk.last.Time, int16(wk.last.Instance), int64(wk.last.Seq), width.Microseconds())
	if err != nil {
		return false, 0, dbErr("pplns window: sum chunk", err)
	}
	byStart := map[time.Time]*bucket{}
	var b time.Time
	var u string
	var d float64
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&b, &u, &d, &n}, func() error {
		bk := byStart[b]
		if bk == nil {
			bk = &bucket{start: b, users: map[string]float64{}}
			byStart[b] = bk
		}
		bk.users[u] += d
		bk.total += d
		bk.n += n
		return nil
	}); err != nil {
		return false, 0, dbErr("pplns window: sum chunk", err)
	}
	buckets := make([]*bucket, 0, len(byStart))
	for _, bk := range byStart {
		buckets = append(buckets, bk)
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].start.After(buckets[j].start) })
	for _, bk := range buckets {
		if wk.acc+bk.total < wk.target {
			for u, d := range bk.users {
				wk.sums[u] += d
			}
			wk.acc += bk.total
			wk.w.Shares += bk.n
			added += bk.total
			continue
		}
		blo, bhi := bk.start, bk.start.Add(width)
		if bhi.After(hi) {
			bhi = hi
		}
		if bk.n <= streamRows || width <= time.Microsecond {
			return true, added, wk.stream(ctx, blo, bhi)
		}
		d, _, err := wk.walk(ctx, blo, bhi)
		if err == nil && !d {
			err = fmt.Errorf("pplns window: boundary bucket lost: %w", ErrConflict)
		}
		return true, added, err
	}
	return false, added, nil
}

// stream reads [lo, hi) row by row, newest first, up to the target.
func (wk *walker) stream(ctx context.Context, lo, hi time.Time) error {
	rows, err := wk.q.Query(ctx, `
		SELECT time, instance_id, seq, username, difficulty FROM shares
		WHERE time >= $1 AND time < $2 AND time <= $3
		  AND (time, instance_id, seq) <= ($3, $4, $5)
		ORDER BY time DESC, instance_id DESC, seq DESC`, pgx.QueryExecModeExec, lo, hi, wk.last.Time, int16(wk.last.Instance), int64(wk.last.Seq))
	if err != nil {
		return dbErr("pplns window: boundary", err)
	}
	defer rows.Close()
	for rows.Next() && wk.acc < wk.target {
		var pos store.SharePos
		var inst int16
		var seq int64
		var u string
		var d float64
		if err := rows.Scan(&pos.Time, &inst, &seq, &u, &d); err != nil {
			return dbErr("pplns window: scan boundary", err)
		}
		pos.Instance, pos.Seq = uint8(inst), uint64(seq)
		part := min(d, wk.target-wk.acc)
		wk.sums[u] += part
		wk.acc += part
		wk.w.Shares++
		wk.w.Oldest = &pos
	}
	rows.Close()
	return dbErr("pplns window: boundary", rows.Err())
}

// oldest sets w.Oldest to the oldest share at or after lo (a young pool's
// first share).
func (w *Window) oldest(ctx context.Context, q querier, lo time.Time, last store.SharePos) error {
	if w.Shares == 0 {
		return nil
	}
	var pos store.SharePos
	var inst int16
	var seq int64
	err := q.QueryRow(ctx, `SELECT time, instance_id, seq FROM shares
		WHERE time >= $1 AND (time, instance_id, seq) <= ($2, $3, $4)
		ORDER BY time, instance_id, seq LIMIT 1`,
		lo, last.Time, int16(last.Instance), int64(last.Seq)).Scan(&pos.Time, &inst, &seq)
	if err != nil {
		return dbErr("pplns window: oldest share", err)
	}
	pos.Instance, pos.Seq = uint8(inst), uint64(seq)
	w.Oldest = &pos
	return nil
}

func weights(sums map[string]float64) []Weight {
	out := make([]Weight, 0, len(sums))
	for u, d := range sums {
		if d > 0 {
			out = append(out, Weight{Username: u, Difficulty: d})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return out
}
