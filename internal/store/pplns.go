package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// The reads of a PPLNS window walk (see payout.SelectWindow, which owns
// the walk). They run in pgx's exec mode (unnamed statements), so that
// PostgreSQL plans each for its actual time range: partitions pruned at
// plan time and a parallel scan for big chunks; a cached generic plan is
// several times slower.
//
// Solo shares (user names starting with username.SoloPrefix, "solo:") are
// stored for statistics but are no part of any PPLNS window: every read
// here skips them.

// ShareBucket is the difficulty one user submitted in one time bucket.
type ShareBucket struct {
	Start      time.Time // the bucket's start (date_bin)
	Username   string
	Difficulty float64
	Shares     int64
}

// WindowShare is one share as the window walk reads it.
type WindowShare struct {
	Pos        SharePos
	Username   string
	Difficulty float64
}

type shareQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ShareBuckets sums, per bucket of width (aligned on lo) and user, the
// shares of [lo, hi) at or before last in (time, instance_id, seq) order.
func (s *Store) ShareBuckets(ctx context.Context, lo, hi time.Time, last SharePos, width time.Duration) ([]ShareBucket, error) {
	return shareBuckets(ctx, s.pool, lo, hi, last, width)
}

// WalkShares calls fn for each share of [lo, hi) at or before last, newest
// first in (time, instance_id, seq) order, until fn returns false.
func (s *Store) WalkShares(ctx context.Context, lo, hi time.Time, last SharePos, fn func(WindowShare) bool) error {
	return walkShares(ctx, s.pool, lo, hi, last, fn)
}

// ShareTimeBefore returns the time of the newest share before t;
// ErrNotFound when there is none.
func (s *Store) ShareTimeBefore(ctx context.Context, t time.Time) (time.Time, error) {
	return shareTimeBefore(ctx, s.pool, t)
}

// FirstShareFrom returns the oldest share at or after lo and at or before
// last; ErrNotFound when there is none.
func (s *Store) FirstShareFrom(ctx context.Context, lo time.Time, last SharePos) (SharePos, error) {
	return firstShareFrom(ctx, s.pool, lo, last)
}

// ShareBuckets is Store.ShareBuckets inside the run.
func (r *PayoutRun) ShareBuckets(ctx context.Context, lo, hi time.Time, last SharePos, width time.Duration) ([]ShareBucket, error) {
	return shareBuckets(ctx, r.db, lo, hi, last, width)
}

// WalkShares is Store.WalkShares inside the run.
func (r *PayoutRun) WalkShares(ctx context.Context, lo, hi time.Time, last SharePos, fn func(WindowShare) bool) error {
	return walkShares(ctx, r.db, lo, hi, last, fn)
}

// ShareTimeBefore is Store.ShareTimeBefore inside the run.
func (r *PayoutRun) ShareTimeBefore(ctx context.Context, t time.Time) (time.Time, error) {
	return shareTimeBefore(ctx, r.db, t)
}

// FirstShareFrom is Store.FirstShareFrom inside the run.
func (r *PayoutRun) FirstShareFrom(ctx context.Context, lo time.Time, last SharePos) (SharePos, error) {
	return firstShareFrom(ctx, r.db, lo, last)
}

func shareBuckets(ctx context.Context, q shareQuerier, lo, hi time.Time, last SharePos, width time.Duration) ([]ShareBucket, error) {
	rows, err := q.Query(ctx, `
		SELECT date_bin($6 * interval '1 microsecond', time, $1), username, sum(difficulty), count(*) FROM shares
		WHERE time >= $1 AND time < $2 AND time <= $3
		  AND (time, instance_id, seq) <= ($3, $4, $5)
		  AND NOT starts_with(username, 'solo:')
		GROUP BY 1, 2`, pgx.QueryExecModeExec, lo, hi, last.Time, int16(last.Instance), int64(last.Seq), width.Microseconds())
	if err != nil {
		return nil, mapErr("pplns window: sum chunk", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ShareBucket, error) {
		var b ShareBucket
		err := r.Scan(&b.Start, &b.Username, &b.Difficulty, &b.Shares)
		return b, err
	})
	return out, mapErr("pplns window: sum chunk", err)
}

func walkShares(ctx context.Context, q shareQuerier, lo, hi time.Time, last SharePos, fn func(WindowShare) bool) error {
	rows, err := q.Query(ctx, `
		SELECT time, instance_id, seq, username, difficulty FROM shares
		WHERE time >= $1 AND time < $2 AND time <= $3
		  AND (time, instance_id, seq) <= ($3, $4, $5)
		  AND NOT starts_with(username, 'solo:')
		ORDER BY time DESC, instance_id DESC, seq DESC`, pgx.QueryExecModeExec, lo, hi, last.Time, int16(last.Instance), int64(last.Seq))
	if err != nil {
		return mapErr("pplns window: boundary", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sh WindowShare
		var inst int16
		var seq int64
		if err := rows.Scan(&sh.Pos.Time, &inst, &seq, &sh.Username, &sh.Difficulty); err != nil {
			return mapErr("pplns window: scan boundary", err)
		}
		sh.Pos.Instance, sh.Pos.Seq = uint8(inst), uint64(seq)
		if !fn(sh) {
			break
		}
	}
	rows.Close()
	return mapErr("pplns window: boundary", rows.Err())
}

func shareTimeBefore(ctx context.Context, q shareQuerier, t time.Time) (time.Time, error) {
	var older time.Time
	err := q.QueryRow(ctx, `SELECT time FROM shares WHERE time < $1 AND NOT starts_with(username, 'solo:') ORDER BY time DESC LIMIT 1`, t).Scan(&older)
	return older, mapErr("pplns window: older shares", err) // no row: ErrNotFound
}

func firstShareFrom(ctx context.Context, q shareQuerier, lo time.Time, last SharePos) (SharePos, error) {
	var pos SharePos
	var inst int16
	var seq int64
	err := q.QueryRow(ctx, `SELECT time, instance_id, seq FROM shares
		WHERE time >= $1 AND (time, instance_id, seq) <= ($2, $3, $4)
		  AND NOT starts_with(username, 'solo:')
		ORDER BY time, instance_id, seq LIMIT 1`,
		lo, last.Time, int16(last.Instance), int64(last.Seq)).Scan(&pos.Time, &inst, &seq)
	if err != nil {
		return SharePos{}, mapErr("pplns window: oldest share", err)
	}
	pos.Instance, pos.Seq = uint8(inst), uint64(seq)
	return pos, nil
}
