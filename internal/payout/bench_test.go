package payout

import (
	"context"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
)

// BenchmarkSelectWindow10M loads 10 million shares (1,000 users, one share
// every 100 ms over 11.6 days, difficulties 1 to 6001, mean 3001) with
// INSERT ... SELECT generate_series, then times the window walk from the
// newest share for windows of about 0.3 M, 3.3 M shares and the whole
// table (a target larger than all shares: the young-pool case).
//
//	go test -run XXX -bench SelectWindow10M -benchtime 5x ./internal/payout/
func BenchmarkSelectWindow10M(b *testing.B) {
	st, _ := pgtest.NewStore(b)
	ctx := context.Background()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 10_000_000
	end := start.Add(n * 100 * time.Millisecond)
	if err := st.EnsurePartitions(ctx, start, end); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if _, err := st.Pool().Exec(ctx, `INSERT INTO shares (time, username, worker, job_id, height, difficulty,
			share_difficulty, instance_id, spool_id, seq)
		SELECT $1::timestamptz + i * interval '100 ms', 'user' || (i % 1000), 'w', 'j', 1, 1 + (i % 7) * 1000, 1e6,
			(i % 2)::smallint, '00000000-0000-0000-0000-000000000000', i
		FROM generate_series(1, $2::bigint) i`, start, n); err != nil {
		b.Fatal(err)
	}
	if _, err := st.Pool().Exec(ctx, `ANALYZE shares`); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d shares in %v", n, time.Since(t0))
	last := store.SharePos{Time: end, Instance: 0, Seq: n}
	for _, bc := range []struct {
		name   string
		target float64
	}{{"window=1e9", 1e9}, {"window=1e10", 1e10}, {"whole-table", 1e12}} {
		b.Run(bc.name, func(b *testing.B) {
			var w Window
			for b.Loop() {
				var err error
				if w, err = SelectWindow(ctx, st, last, bc.target); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(w.Shares), "shares")
			if len(w.Weights) != 1000 {
				b.Fatalf("%d users", len(w.Weights))
			}
		})
	}
}
