package store_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/pgtest"
)

// BenchmarkDurableShares measures shares per second made durable in the
// spool and stored in PostgreSQL with COPY, with 256 concurrent writers
// standing in for miner sessions. The clock stops when the last share is in
// PostgreSQL.
func BenchmarkDurableShares(b *testing.B) {
	st, _ := pgtest.NewStore(b)
	p := startPipeline(b, st, b.TempDir())
	defer p.stop(b)
	ctx := context.Background()
	start := time.Now().UTC()
	var i atomic.Int64
	b.SetParallelism(128) // × GOMAXPROCS writers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := int(i.Add(1))
			s := sampleShare(n, start)
			if _, err := p.w.Write(ctx, &s); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := p.d.WaitStored(ctx, p.sp.Durable()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "shares/s")
	b.ReportMetric(0, "ns/op")
}
