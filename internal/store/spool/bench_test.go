package spool

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkAppendParallel measures durable appends of 100-byte payloads
// from many goroutines (parallelism × GOMAXPROCS appenders), reported as
// appends/s; each append returns only once its record is fsync'ed.
func BenchmarkAppendParallel(b *testing.B) {
	for _, par := range []int{1, 8, 32, 128} {
		b.Run(fmt.Sprintf("par=%d", par), func(b *testing.B) {
			s := start(b, Config{Dir: b.TempDir()})
			p := make([]byte, 100)
			b.SetParallelism(par)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Append(context.Background(), p); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkRead measures reading records back in drainer-sized chunks.
func BenchmarkRead(b *testing.B) {
	s := start(b, Config{Dir: b.TempDir()})
	const n = 100000
	batch := make([][]byte, n)
	for i := range batch {
		batch[i] = make([]byte, 100)
	}
	if _, err := s.AppendBatch(context.Background(), batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	recs := 0
	for i := 0; i < b.N; i++ {
		from := uint64(i%(n/1000))*1000 + 1
		r, err := s.Read(from, 1000, 0)
		if err != nil || len(r) != 1000 {
			b.Fatalf("Read: %d, %v", len(r), err)
		}
		recs += len(r)
	}
	b.ReportMetric(float64(recs)/b.Elapsed().Seconds(), "records/s")
}
