package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
)

// workerWant is what user_worker_stats must say of one worker, worked out
// from the shares in Go.
type workerWant struct {
	accepted                 int64
	acceptedDiff             float64
	best                     float64
	bestAt                   time.Time
	roundShares              int64
	roundBest                float64
	diff10m, diff1h          float64
	rejected                 int64
	rejectedByReason         map[string]int64
	lastShare                time.Time
	hasRoundBest, hasAnyBest bool
}

func wantWorkers(shares []store.StoredShare, user string, after *store.SharePos, now time.Time) map[string]*workerWant {
	out := map[string]*workerWant{}
	for _, s := range shares {
		if s.Username != user {
			continue
		}
		w := out[s.Worker]
		if w == nil {
			w = &workerWant{rejectedByReason: map[string]int64{}}
			out[s.Worker] = w
		}
		w.accepted++
		w.acceptedDiff += s.Difficulty
		if s.ShareDifficulty > w.best {
			w.best, w.bestAt, w.hasAnyBest = s.ShareDifficulty, s.Time, true
		}
		if s.Time.After(w.lastShare) {
			w.lastShare = s.Time
		}
		pos := store.SharePos{Time: s.Time, Instance: s.InstanceID, Seq: s.Seq}
		if after == nil || later(pos, *after) {
			w.roundShares++
			w.roundBest = math.Max(w.roundBest, s.ShareDifficulty)
			w.hasRoundBest = true
		}
		if !s.Time.Before(now.Add(-10 * time.Minute)) {
			w.diff10m += s.Difficulty
		}
		if !s.Time.Before(now.Add(-time.Hour)) {
			w.diff1h += s.Difficulty
		}
	}
	return out
}

func later(a, b store.SharePos) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.After(b.Time)
	}
	if a.Instance != b.Instance {
		return a.Instance > b.Instance
	}
	return a.Seq > b.Seq
}

func checkWorkers(t *testing.T, st *store.Store, user string, want map[string]*workerWant, round store.Round) {
	t.Helper()
	got, gotRound, err := st.WorkerDetails(ctxT(t), user)
	if err != nil {
		t.Fatal(err)
	}
	if !gotRound.Start.Equal(round.Start) || gotRound.AfterHash != round.AfterHash || gotRound.AfterHeight != round.AfterHeight {
		t.Errorf("round %+v, want %+v", gotRound, round)
	}
	if len(got) != len(want) {
		t.Fatalf("%d workers, want %d: %+v", len(got), len(want), got)
	}
	const h = 4294967296.0
	for _, g := range got {
		w := want[g.Worker]
		if w == nil {
			t.Errorf("unexpected worker %q", g.Worker)
			continue
		}
		if g.Accepted != w.accepted || !near(g.AcceptedDifficulty, w.acceptedDiff) {
			t.Errorf("%s: accepted %d (%v), want %d (%v)", g.Worker, g.Accepted, g.AcceptedDifficulty, w.accepted, w.acceptedDiff)
		}
		if g.BestShareDifficulty != w.best || (w.hasAnyBest && !g.BestShareAt.Equal(w.bestAt)) {
			t.Errorf("%s: best %v at %v, want %v at %v", g.Worker, g.BestShareDifficulty, g.BestShareAt, w.best, w.bestAt)
		}
		if g.RoundShares != w.roundShares || g.RoundBestShareDifficulty != w.roundBest || g.RoundBestShareAt.IsZero() == w.hasRoundBest {
			t.Errorf("%s: round %d shares best %v (at %v), want %d best %v", g.Worker, g.RoundShares,
				g.RoundBestShareDifficulty, g.RoundBestShareAt, w.roundShares, w.roundBest)
		}
		if !near(g.Hashrate10m, w.diff10m*h/600) || !near(g.Hashrate1h, w.diff1h*h/3600) {
			t.Errorf("%s: hashrate 10m %v 1h %v, want %v %v", g.Worker, g.Hashrate10m, g.Hashrate1h, w.diff10m*h/600, w.diff1h*h/3600)
		}
		if g.Rejected != w.rejected || !maps.Equal(g.RejectedByReason, w.rejectedByReason) {
			t.Errorf("%s: rejected %d %v, want %d %v", g.Worker, g.Rejected, g.RejectedByReason, w.rejected, w.rejectedByReason)
		}
		if w.accepted > 0 && !g.LastShare.Equal(w.lastShare) {
			t.Errorf("%s: last share %v, want %v", g.Worker, g.LastShare, w.lastShare)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestWorkerStats stores shares of two workers over three UTC days in
// several batches and checks user_worker_stats (migration 00009) against
// the same figures worked out in Go: all-time counts and best share from
// the drainer's rollup, this round's from the rollup and the round's first
// day of shares, hashrates over 10 minutes and an hour; then that the
// all-time figures outlive the share partitions retention drops, and that
// rejects counted by a RejectCounter show up by reason.
func TestWorkerStats(t *testing.T) {
	st, url := pgtest.NewStore(t)
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	const user = "alice"
	now := time.Now().UTC().Truncate(time.Microsecond)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	var shares []store.StoredShare
	add := func(worker string, at time.Time, diff, hashDiff float64) {
		shares = append(shares, store.StoredShare{Share: store.Share{Time: at, Username: user, Worker: worker, JobID: "1",
			Height: 100, Difficulty: diff, ShareDifficulty: hashDiff, InstanceID: 2}, Seq: uint64(len(shares) + 1)})
	}
	// Two days ago: the all-time best of rig1 (1e6). Yesterday: 06:00
	// rig1 5000, the block's share at 12:00 (rig2), rig2's round best at
	// 18:00 (7000), rig1 at 13:00 (900). Today: rig1's round best at an
	// hour past midnight or 11 minutes ago (whichever is earlier), and
	// work within the last hour and 10 minutes.
	add("rig1", today.Add(-48*time.Hour+3*time.Hour), 10, 1e6)
	add("rig2", today.Add(-48*time.Hour+4*time.Hour), 10, 20)
	add("rig1", today.Add(-24*time.Hour+6*time.Hour), 10, 5000)
	blockAt := today.Add(-24*time.Hour + 12*time.Hour)
	add("rig2", blockAt, 10, 9e5)
	add("rig1", today.Add(-24*time.Hour+13*time.Hour), 10, 900)
	add("rig2", today.Add(-24*time.Hour+18*time.Hour), 10, 7000)
	early := today.Add(time.Hour)
	if early.After(now.Add(-11 * time.Minute)) {
		early = now.Add(-11 * time.Minute)
	}
	if early.Before(today) {
		early = today
	}
	add("rig1", early, 20, 8000)
	add("rig1", now.Add(-50*time.Minute), 30, 40)
	add("rig1", now.Add(-5*time.Minute), 40, 50)
	add("rig2", now.Add(-3*time.Minute), 50, 60)
	slicesSortByTime(shares)
	bob := store.StoredShare{Share: store.Share{Time: now.Add(-time.Minute), Username: "bob", Worker: "rig1", JobID: "1",
		Height: 100, Difficulty: 1, ShareDifficulty: 1e9, InstanceID: 2}}

	// Three batches: the rollup adds up across them.
	var stored []store.StoredShare
	for i, b := range [][2]int{{0, 3}, {3, 6}, {6, len(shares)}} {
		batch := shares[b[0]:b[1]]
		if i == 2 {
			bob.Seq = uint64(len(shares) + 1)
			batch = append(append([]store.StoredShare(nil), batch...), bob)
		}
		if err := st.StoreShares(ctx, [16]byte{7}, 2, batch); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, batch...)
	}

	// Before any block the round is all time.
	checkWorkers(t, st, user, wantWorkers(stored, user, nil, now), store.Round{})

	// A block found with the share at 12:00 yesterday starts the round
	// after it; a rejected block later does not.
	var blockShare store.StoredShare
	for _, s := range stored {
		if s.Time.Equal(blockAt) {
			blockShare = s
		}
	}
	pos := store.SharePos{Time: blockShare.Time, Instance: 2, Seq: blockShare.Seq}
	for i, status := range []store.BlockStatus{store.BlockConfirmed, store.BlockRejected} {
		b := store.Block{Height: int32(700 + i), Hash: fmt.Sprintf("%064x", 0xabc+i), PrevHash: fmt.Sprintf("%064x", 1),
			FoundAt: blockAt, Username: user, Worker: "rig2", Reward: 1, NetworkDifficulty: 1e6, Status: status,
			InstanceID: 2, LastShare: pos}
		if i == 1 {
			b.LastShare = store.SharePos{Time: now.Add(-4 * time.Minute), Instance: 2, Seq: 1 << 40}
		}
		if _, err := st.InsertBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	round := store.Round{Start: blockAt, AfterHeight: 700, AfterHash: fmt.Sprintf("%064x", 0xabc)}
	want := wantWorkers(stored, user, &pos, now)
	if w := want["rig2"]; w.roundBest != 7000 || want["rig1"].roundBest != 8000 || want["rig1"].best != 1e6 {
		t.Fatalf("the fixture does not test what it says: %+v %+v", *want["rig1"], *w)
	}
	checkWorkers(t, st, user, want, round)

	// Rejects: counted in memory, added by Flush, by reason.
	rc, err := store.NewRejectCounter(store.RejectCounterConfig{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		rc.ObserveReject(user, "rig1", "stale", now)
	}
	rc.ObserveReject(user, "rig1", "duplicate", now.Add(-time.Hour))
	rc.ObserveReject(user, "rig3", "low-difficulty", now) // a worker with rejects only
	rc.ObserveReject(user, "rig1", "Not A Reason", now)   // refused before the database
	if s := rc.Stats(); s.Pending != 5 || s.Dropped != 1 || s.Observed != 6 {
		t.Fatalf("stats before flush %+v", s)
	}
	if err := rc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rc.ObserveReject(user, "rig1", "stale", now) // a second flush adds up
	if err := rc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := rc.Stats(); s.Pending != 0 || s.Flushed != 6 {
		t.Fatalf("stats after flush %+v", s)
	}
	want["rig1"].rejected, want["rig1"].rejectedByReason = 5, map[string]int64{"stale": 4, "duplicate": 1}
	want["rig3"] = &workerWant{rejected: 1, rejectedByReason: map[string]int64{"low-difficulty": 1}}
	checkWorkers(t, st, user, want, round)

	// Retention drops the oldest day's partition: the all-time figures
	// (rig1's best of 1e6 among them) stay.
	old := "shares_p" + today.Add(-48*time.Hour).Format("20060102")
	if _, err := conn.Exec(ctx, "DROP TABLE "+old); err != nil {
		t.Fatal(err)
	}
	checkWorkers(t, st, user, want, round)

	// The worker_stats view has every user's workers.
	var rows, bobRows int
	var bobBest float64
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE username = 'bob'),
		max(best_share_difficulty) FILTER (WHERE username = 'bob') FROM worker_stats`).Scan(&rows, &bobRows, &bobBest); err != nil {
		t.Fatal(err)
	}
	if rows != 4 || bobRows != 1 || bobBest != 1e9 {
		t.Errorf("worker_stats: %d rows, bob %d best %v; want 4, 1, 1e9", rows, bobRows, bobBest)
	}
}

// slicesSortByTime sorts shares by time and numbers them from 1 in that
// order, as a spool would.
func slicesSortByTime(s []store.StoredShare) {
	slices.SortStableFunc(s, func(a, b store.StoredShare) int { return a.Time.Compare(b.Time) })
	for i := range s {
		s[i].Seq = uint64(i + 1)
	}
}

// failingRejects fails the first fails calls of AddRejects with err, then
// hands them to the real store: it models a database that is unreachable
// for a while (ErrUnavailable) or refuses a value (ErrInvalid), the two
// answers RejectCounter.Flush branches on.
type failingRejects struct {
	st    *store.Store
	fails int
	err   error
}

func (f *failingRejects) AddRejects(ctx context.Context, c []store.RejectCount) error {
	if f.fails > 0 {
		f.fails--
		return f.err
	}
	return f.st.AddRejects(ctx, c)
}

// TestRejectCounterKeepsCountsWhileDatabaseDown: a failed flush keeps the
// counts for the next (which adds them once), the memory bound drops what
// is past it, and a refused batch is dropped rather than retried forever.
func TestRejectCounterKeepsCountsWhileDatabaseDown(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	ctx := ctxT(t)
	now := time.Now()
	fs := &failingRejects{st: st, fails: 2, err: fmt.Errorf("dial: %w", store.ErrUnavailable)}
	rc, err := store.NewRejectCounter(store.RejectCounterConfig{Store: fs, MaxKeys: 2})
	if err != nil {
		t.Fatal(err)
	}
	rc.ObserveReject("alice", "a", "stale", now)
	rc.ObserveReject("alice", "b", "stale", now)
	rc.ObserveReject("alice", "c", "stale", now) // a third key: past MaxKeys
	rc.ObserveReject("alice", "a", "stale", now) // an existing key still counts
	for range 2 {
		if err := rc.Flush(ctx); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("flush while down: %v", err)
		}
	}
	if s := rc.Stats(); s.Pending != 3 || s.Dropped != 1 || s.FlushFailures != 2 {
		t.Fatalf("while down: %+v", s)
	}
	if err := rc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	d, _, err := st.WorkerDetails(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 || d[0].Worker != "a" || d[0].Rejected != 2 || d[1].Rejected != 1 {
		t.Fatalf("after the database is back: %+v", d)
	}

	fs.fails, fs.err = 1, fmt.Errorf("check: %w", store.ErrInvalid)
	rc.ObserveReject("alice", "a", "stale", now)
	if err := rc.Flush(ctx); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("refused flush: %v", err)
	}
	if s := rc.Stats(); s.Pending != 0 || s.Dropped != 2 {
		t.Fatalf("after a refused flush: %+v", s)
	}
}
