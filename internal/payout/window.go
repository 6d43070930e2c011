package payout

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/stratumd/stratumd/internal/store"
)

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
// PostgreSQL (src.ShareBuckets), so that each share is read about once:
// chunk sizes follow the observed share rate, and only the bucket holding
// the boundary is read again (split into finer buckets, then row by row,
// src.WalkShares). Sums of integer-valued difficulties are exact in float64
// whatever the order.
func SelectWindow(ctx context.Context, src ShareSource, last store.SharePos, target float64) (Window, error) {
	if !(target > 0) || math.IsInf(target, 0) {
		return Window{}, fmt.Errorf("pplns window: target %v: %w", target, ErrInvalid)
	}
	wk := walker{src: src, last: last, target: target, sums: map[string]float64{}}
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
		older, err := src.ShareTimeBefore(ctx, lo)
		if errors.Is(err, store.ErrNotFound) {
			wk.w.Counted = wk.acc
			wk.w.Weights = weights(wk.sums)
			return wk.w, wk.w.oldest(ctx, src, lo, last)
		}
		if err != nil {
			return Window{}, fromStore("pplns window", err)
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
	src    ShareSource
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
	sums, err := wk.src.ShareBuckets(ctx, lo, hi, wk.last, width)
	if err != nil {
		return false, 0, fromStore("pplns window", err)
	}
	byStart := map[time.Time]*bucket{}
	for _, sb := range sums {
		bk := byStart[sb.Start]
		if bk == nil {
			bk = &bucket{start: sb.Start, users: map[string]float64{}}
			byStart[sb.Start] = bk
		}
		bk.users[sb.Username] += sb.Difficulty
		bk.total += sb.Difficulty
		bk.n += sb.Shares
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
	err := wk.src.WalkShares(ctx, lo, hi, wk.last, func(sh store.WindowShare) bool {
		part := min(sh.Difficulty, wk.target-wk.acc)
		wk.sums[sh.Username] += part
		wk.acc += part
		wk.w.Shares++
		pos := sh.Pos
		wk.w.Oldest = &pos
		return wk.acc < wk.target
	})
	return fromStore("pplns window", err)
}

// oldest sets w.Oldest to the oldest share at or after lo (a young pool's
// first share).
func (w *Window) oldest(ctx context.Context, src ShareSource, lo time.Time, last store.SharePos) error {
	if w.Shares == 0 {
		return nil
	}
	pos, err := src.FirstShareFrom(ctx, lo, last)
	if err != nil {
		return fromStore("pplns window: oldest share", err)
	}
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
