package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
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

// BenchmarkStoreSharesWorkers measures StoreShares on batches of 10,000
// shares (the drainer's transaction: COPY, the worker_daily rollup of
// migration 00009, the spool's progress) spread over few or many distinct
// workers: with 10,000 workers every share is a row of the rollup's
// upsert, the worst case.
func BenchmarkStoreSharesWorkers(b *testing.B) {
	for _, workers := range []int{20, 10000} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			st, _ := pgtest.NewStore(b)
			ctx := context.Background()
			start := time.Now().UTC()
			const batch = 10000
			shares := make([]store.StoredShare, batch)
			seq := uint64(0)
			b.ResetTimer()
			for range b.N {
				for i := range shares {
					seq++
					s := sampleShare(int(seq), start)
					s.Username = fmt.Sprintf("user%d", int(seq)%workers%500)
					s.Worker = fmt.Sprintf("rig%d", int(seq)%workers)
					shares[i] = store.StoredShare{Share: s, Seq: seq}
				}
				if err := st.StoreShares(ctx, [16]byte{4}, 1, shares); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "shares/s")
		})
	}
}
