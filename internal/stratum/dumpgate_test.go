package stratum

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// Concurrent writers of one dump: one writes, the others wait and do not
// write again; after a failure the next waiter writes; other keys do not
// wait.
func TestDumpGate(t *testing.T) {
	var g dumpGate
	ctx := context.Background()

	// write stands for writeBlockDump's closure: it skips an existing file
	// and must never run twice at once for one block.
	var writes, inFlight atomic.Int32
	var exists atomic.Bool
	release := make(chan struct{})
	started := make(chan struct{})
	write := func(first bool) func() error {
		return func() error {
			if inFlight.Add(1) != 1 {
				t.Error("two writes of one dump at once")
			}
			defer inFlight.Add(-1)
			if exists.Load() {
				return nil
			}
			if first {
				close(started)
				<-release
			}
			writes.Add(1)
			exists.Store(true)
			return nil
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := g.do(ctx, "a", write(true)); err != nil {
			t.Errorf("first writer: %v", err)
		}
	})
	<-started
	for range 3 {
		wg.Go(func() {
			if err := g.do(ctx, "a", write(false)); err != nil {
				t.Errorf("waiter: %v", err)
			}
		})
	}
	// Another block is not held up by "a".
	if err := g.do(ctx, "b", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	close(release)
	wg.Wait()
	if n := writes.Load(); n != 1 {
		t.Fatalf("%d writes of one dump, want 1", n)
	}

	// A failed write: a waiter tries again itself.
	fail := errors.New("disk full")
	release = make(chan struct{})
	started = make(chan struct{})
	writes.Store(0)
	errc := make(chan error, 1)
	go func() {
		errc <- g.do(ctx, "c", func() error { writes.Add(1); close(started); <-release; return fail })
	}()
	<-started
	retried := make(chan error, 1)
	go func() { retried <- g.do(ctx, "c", func() error { writes.Add(1); return nil }) }()
	close(release)
	if err := <-errc; !errors.Is(err, fail) {
		t.Fatalf("failed writer returned %v", err)
	}
	if err := <-retried; err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := writes.Load(); n != 2 {
		t.Fatalf("%d writes, want the failed one and the retry", n)
	}

	// A waiter whose context ends stops waiting.
	release = make(chan struct{})
	started = make(chan struct{})
	go func() { _ = g.do(ctx, "d", func() error { close(started); <-release; return nil }) }()
	<-started
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := g.do(cctx, "d", func() error { t.Error("wrote while another write was in flight"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	close(release)
}
