package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// running is an open spool with Run going in a goroutine.
type running struct {
	*Spool
	stopOnce sync.Once
	cancel   context.CancelFunc
	errc     chan error
}

// start opens cfg and runs the committer until the test ends or stop is
// called.
func start(t testing.TB, cfg Config) *running {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return run(t, s)
}

// run starts s's committer.
func run(t testing.TB, s *Spool) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Spool: s, cancel: cancel, errc: make(chan error, 1)}
	go func() { r.errc <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run and closes the spool.
func (r *running) stop(t testing.TB) {
	r.stopOnce.Do(func() {
		r.cancel()
		if err := <-r.errc; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// payload returns a test payload of varying length for index i.
func payload(i int) []byte {
	return fmt.Appendf(nil, "share-%d-%s", i, strings.Repeat("x", i%97))
}

// appendN appends payload(i) for i in [from, to) one by one and checks the
// seqs follow on from Durable.
func appendN(t testing.TB, s *Spool, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		want := s.Durable() + 1
		seq, err := s.Append(context.Background(), payload(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		if seq != want {
			t.Fatalf("Append %d: seq %d, want %d", i, seq, want)
		}
	}
}

// readAll reads every record from from on in small chunks.
func readAll(t testing.TB, s *Spool, from uint64) []Record {
	t.Helper()
	var all []Record
	for {
		recs, err := s.Read(from, 37, 0)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		if len(recs) == 0 {
			return all
		}
		all = append(all, recs...)
		from = recs[len(recs)-1].Seq + 1
	}
}

// checkRecords checks recs are seqs first, first+1, ... with payload(seq-1+offset).
func checkRecords(t testing.TB, recs []Record, first uint64, n int, offset int) {
	t.Helper()
	if len(recs) != n {
		t.Fatalf("got %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		if want := first + uint64(i); r.Seq != want {
			t.Fatalf("record %d: seq %d, want %d", i, r.Seq, want)
		}
		if want := payload(int(r.Seq) - 1 + offset); !bytes.Equal(r.Data, want) {
			t.Fatalf("record seq %d: data %q, want %q", r.Seq, r.Data, want)
		}
	}
}

// segmentFiles lists the segment files in dir, sorted.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// copyDir copies the regular files of src into a new temporary directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// waitQueued yields until n appends are queued (without a committer).
func waitQueued(t testing.TB, s *Spool, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		q := len(s.queue)
		s.mu.Unlock()
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d appends queued, want %d", q, n)
		}
		runtime.Gosched()
	}
}

// mustErr fails unless errors.Is(err, target).
func mustErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}
