package stratum

import (
	"context"
	"sync"
)

// dumpGate lets one goroutine at a time write a block's share dump. The
// session that found the block and the drainer that stored its share both
// want to write it, usually within the same millisecond; the second waits
// for the first and writes only if the first failed. Safe for concurrent
// use; the zero value is ready.
type dumpGate struct {
	mu sync.Mutex
	m  map[string]*dumpRun // by block hash: runs in flight
}

// dumpRun is one write in flight; ok is set before done is closed.
type dumpRun struct {
	done chan struct{}
	ok   bool
}

// do runs write for key unless another call for key is running, in which
// case it waits for that one and returns nil if it succeeded, or runs
// write itself if it failed. Later calls run write again: WriteBlockDump's
// write returns at once when the dump file exists.
func (g *dumpGate) do(ctx context.Context, key string, write func() error) error {
	for {
		g.mu.Lock()
		run := g.m[key]
		if run == nil {
			run = &dumpRun{done: make(chan struct{})}
			if g.m == nil {
				g.m = make(map[string]*dumpRun)
			}
			g.m[key] = run
			g.mu.Unlock()
			err := write()
			g.mu.Lock()
			run.ok = err == nil
			delete(g.m, key)
			close(run.done)
			g.mu.Unlock()
			return err
		}
		g.mu.Unlock()
		select {
		case <-run.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if run.ok {
			return nil
		}
	}
}
