package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
)

// retentionFixture is a database with 40 daily share partitions, the last
// being now's day, and a clock fixed at now.
type retentionFixture struct {
	t    *testing.T
	st   *store.Store
	conn *pgx.Conn
	now  time.Time
	n    int
}

func newRetentionFixture(t *testing.T) *retentionFixture {
	url := pgtest.NewDatabase(t)
	ctx := ctxT(t)
	st, err := store.Open(ctx, store.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	if err := st.EnsurePartitions(ctx, now.AddDate(0, 0, -39), now); err != nil {
		t.Fatal(err)
	}
	return &retentionFixture{t: t, st: st, conn: conn, now: now}
}

func (f *retentionFixture) day(daysAgo int) time.Time {
	return time.Date(f.now.Year(), f.now.Month(), f.now.Day()-daysAgo, 0, 0, 0, 0, time.UTC)
}

// block inserts a block whose last share is at shareTime; a credited one
// gets a split whose window started at oldest (target and counted in
// share-difficulty units).
func (f *retentionFixture) block(status string, shareTime time.Time, netDiff float64, split *[3]float64, oldest time.Time) {
	f.t.Helper()
	ctx := ctxT(f.t)
	f.n++
	var id int64
	err := f.conn.QueryRow(ctx, `INSERT INTO blocks (height, hash, prev_hash, found_at, username, worker, reward,
		network_difficulty, status, instance_id, share_time, share_instance, share_seq)
		VALUES ($1, $2, $3, $4, 'u', 'w', 5000000000, $5, $6, 0, $4, 0, $7) RETURNING id`,
		f.n, fmt.Sprintf("%064x", f.n), fmt.Sprintf("%064x", 1000+f.n), shareTime, netDiff, status, int64(f.n)).Scan(&id)
	if err != nil {
		f.t.Fatal(err)
	}
	if split == nil {
		return
	}
	factor, target, counted := split[0], split[1], split[2]
	_, err = f.conn.Exec(ctx, `INSERT INTO block_splits (block_id, reward, fee_bps, pool_fee, pool_remainder, miners_total,
		pplns_factor, window_target, window_counted, window_shares, oldest_time, oldest_instance, oldest_seq)
		VALUES ($1, 5000000000, 0, 0, 0, 5000000000, $2, $3, $4, 10, $5, 0, 1)`, id, factor, target, counted, oldest)
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *retentionFixture) partitionDays() []time.Time {
	parts, err := f.st.Partitions(ctxT(f.t))
	if err != nil {
		f.t.Fatal(err)
	}
	var out []time.Time
	for _, p := range parts {
		out = append(out, p.Day)
	}
	return out
}

// daysFrom lists the days from daysAgo to today, oldest first.
func (f *retentionFixture) daysFrom(daysAgo int) []time.Time {
	var out []time.Time
	for d := daysAgo; d >= 0; d-- {
		out = append(out, f.day(d))
	}
	return out
}

func TestRetentionKeepsEverythingWithoutACreditedBlock(t *testing.T) {
	f := newRetentionFixture(t)
	ctx := ctxT(t)
	// No block at all: the first block's window is unknown.
	res, err := f.st.ApplyRetention(ctx, f.now, 7*24*time.Hour)
	if err != nil || !res.KeepAll || len(res.Dropped) != 0 {
		t.Fatalf("no blocks: %+v, %v", res, err)
	}
	// A pending block and nothing credited: still unknown.
	f.block("confirmed", f.now.Add(-48*time.Hour), 100, nil, time.Time{})
	res, err = f.st.ApplyRetention(ctx, f.now, 7*24*time.Hour)
	if err != nil || !res.KeepAll || len(res.Dropped) != 0 {
		t.Fatalf("pending only: %+v, %v", res, err)
	}
	if got := len(f.partitionDays()); got != 40 {
		t.Fatalf("%d partitions left, want 40", got)
	}
	// Retention 0: keep forever.
	if res, err := f.st.ApplyRetention(ctx, f.now, 0); err != nil || !res.KeepAll {
		t.Fatalf("retention 0: %+v, %v", res, err)
	}
}

func TestRetentionDropsOldPartitions(t *testing.T) {
	f := newRetentionFixture(t)
	ctx := ctxT(t)
	// A credited block whose (full) window reached back 30 days and a half;
	// the round in progress runs at the same difficulty.
	oldest := f.day(30).Add(12 * time.Hour)
	f.block("credited", f.now.Add(-20*24*time.Hour), 100, &[3]float64{2, 200, 200}, oldest)
	f.block("orphaned", f.now.Add(-24*time.Hour), 1e9, nil, time.Time{})
	f.block("rejected", f.now.Add(-24*time.Hour), 1e9, nil, time.Time{})
	f.block("credited", f.now.Add(-10*24*time.Hour), 100, &[3]float64{2, 200, 200}, f.day(12))
	f.block("submitted", f.now.Add(-time.Hour), 100, nil, time.Time{})

	// Retention 14 days: the cutoff is now-14d, and the newest credited
	// window (from day 12) covers both the pending block and the round.
	res, err := f.st.ApplyRetention(ctx, f.now, 14*24*time.Hour)
	if err != nil || res.KeepAll {
		t.Fatalf("%+v, %v", res, err)
	}
	if !res.Needed.Equal(f.day(12)) || !res.Cutoff.Equal(f.now.Add(-14*24*time.Hour)) {
		t.Fatalf("needed %v cutoff %v", res.Needed, res.Cutoff)
	}
	if len(res.Dropped) != 25 || res.Dropped[0] != "shares_p20260204" || res.Dropped[24] != "shares_p20260228" {
		t.Fatalf("dropped %v", res.Dropped)
	}
	if got, want := f.partitionDays(), f.daysFrom(14); !reflect.DeepEqual(got, want) {
		t.Fatalf("left %v, want %v", got, want)
	}
	// Running again drops nothing more; the drainer can still create a
	// dropped day again when late shares need it.
	res, err = f.st.ApplyRetention(ctx, f.now, 14*24*time.Hour)
	if err != nil || len(res.Dropped) != 0 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	if err := f.st.EnsurePartitions(ctx, f.day(20), f.day(20)); err != nil {
		t.Fatal(err)
	}
	if got := f.partitionDays(); !got[0].Equal(f.day(20)) {
		t.Fatalf("partition of day 20 not recreated: %v", got)
	}
}

// TestRetentionKeepsWhatAPendingBlockNeeds: a pending block at a higher
// network difficulty than the last credited window may reach further back;
// the bound falls back to an older credited block whose window was big
// enough, and no partition from that day on is dropped however short the
// retention.
func TestRetentionKeepsWhatAPendingBlockNeeds(t *testing.T) {
	f := newRetentionFixture(t)
	ctx := ctxT(t)
	// Big window (target 1000 = 2 × 500) starting on day 33 at 18:00.
	f.block("credited", f.now.Add(-30*24*time.Hour), 500, &[3]float64{2, 1000, 1000}, f.day(33).Add(18*time.Hour))
	// Small window (2 × 100) starting on day 11.
	f.block("credited", f.now.Add(-10*24*time.Hour), 100, &[3]float64{2, 200, 200}, f.day(11))
	// Pending at difficulty 400: window 800 > 200, so the day-11 bound does
	// not hold for it; the day-33 one does.
	f.block("matured", f.now.Add(-3*24*time.Hour), 400, nil, time.Time{})

	res, err := f.st.ApplyRetention(ctx, f.now, 24*time.Hour)
	if err != nil || res.KeepAll {
		t.Fatalf("%+v, %v", res, err)
	}
	if !res.Needed.Equal(f.day(33).Add(18*time.Hour)) || !res.Cutoff.Equal(res.Needed) {
		t.Fatalf("needed %v cutoff %v", res.Needed, res.Cutoff)
	}
	if got, want := f.partitionDays(), f.daysFrom(33); !reflect.DeepEqual(got, want) {
		t.Fatalf("left %v, want %v (the day the pending block's window may start is kept)", got, want)
	}

	// A pending block at a difficulty no credited window covers: keep all.
	f.block("confirmed", f.now.Add(-time.Hour), 1e6, nil, time.Time{})
	res, err = f.st.ApplyRetention(ctx, f.now, 24*time.Hour)
	if err != nil || !res.KeepAll || len(res.Dropped) != 0 {
		t.Fatalf("uncovered pending block: %+v, %v", res, err)
	}
	if got := len(f.partitionDays()); got != 34 {
		t.Fatalf("%d partitions left, want 34", got)
	}
}

// TestRetentionYoungPoolWindow: a credited block whose window was not full
// counted every share there was, so its start bounds any later block.
func TestRetentionYoungPoolWindow(t *testing.T) {
	f := newRetentionFixture(t)
	ctx := ctxT(t)
	f.block("credited", f.now.Add(-5*24*time.Hour), 100, &[3]float64{2, 200, 50}, f.day(6))
	f.block("submitted", f.now.Add(-time.Hour), 1e9, nil, time.Time{})
	res, err := f.st.ApplyRetention(ctx, f.now, 2*24*time.Hour)
	if err != nil || res.KeepAll || !res.Needed.Equal(f.day(6)) {
		t.Fatalf("%+v, %v", res, err)
	}
	if got, want := f.partitionDays(), f.daysFrom(6); !reflect.DeepEqual(got, want) {
		t.Fatalf("left %v, want %v", got, want)
	}
}

func TestRetentionWaitsForPayout(t *testing.T) {
	f := newRetentionFixture(t)
	ctx := ctxT(t)
	f.block("credited", f.now.Add(-5*24*time.Hour), 100, &[3]float64{2, 200, 200}, f.day(6))
	// A payout run holds its advisory lock.
	if _, err := f.conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(0x7061796f7574)); err != nil {
		t.Fatal(err)
	}
	res, err := f.st.ApplyRetention(ctx, f.now, 24*time.Hour)
	if !errors.Is(err, store.ErrConflict) || len(res.Dropped) != 0 {
		t.Fatalf("under the payout lock: %+v, %v", res, err)
	}
	if got := len(f.partitionDays()); got != 40 {
		t.Fatalf("%d partitions left under the payout lock", got)
	}
	if _, err := f.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(0x7061796f7574)); err != nil {
		t.Fatal(err)
	}
	res, err = f.st.ApplyRetention(ctx, f.now, 24*time.Hour)
	if err != nil || len(res.Dropped) != 33 {
		t.Fatalf("after the payout: %+v, %v", res, err)
	}
	needed, ok, err := f.st.OldestNeededShare(ctx)
	if err != nil || !ok || !needed.Equal(f.day(6)) {
		t.Fatalf("OldestNeededShare = %v, %v, %v", needed, ok, err)
	}
}
