//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/miner"
)

// ack is a share a miner saw accepted, with the times just before its
// submit was written and just after its reply was read.
type ack struct {
	miner         int
	user, worker  string
	job           string
	diff          float64 // chain.HashDifficulty of the share's hash
	block         bool
	hash          string
	before, after time.Time
}

// key identifies the share in the shares table.
func (a *ack) key() shareKey { return shareKey{a.user, a.worker, a.job, a.diff} }

type shareKey struct {
	user, worker, job string
	diff              float64
}

// fleetConfig configures a fleet of reconnecting miners.
type fleetConfig struct {
	addr   string
	users  []string // assigned to miners in turn
	miners int
	// blockEvery submits one in blockEvery of the shares that are blocks
	// and withholds the others (0: withhold all), so that the chain grows
	// at a bounded rate: on regtest half of all shares are blocks.
	blockEvery int
	// pace is the least time between two submits of one miner (0: back to
	// back).
	pace time.Duration
	// versionRolling makes every other miner an ESP-Miner.
	versionRolling bool
}

// fleet is a set of in-repo miners that mine in a loop and dial again
// whenever their connection ends, as real miners do.
type fleet struct {
	cfg    fleetConfig
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// noBlocks makes every miner withhold its block shares (holdBlocks).
	noBlocks atomic.Bool

	mu          sync.Mutex
	acks        []ack
	rejects     map[int]int // by Stratum error code
	rejectMsgs  map[string]int
	dials       int
	dialFails   int
	disconnects int
	withheld    int
	lastErr     error
	wake        chan struct{}
	miners      []*miner.Miner // current connection of each miner (nil while dialling)
}

func startFleet(t *testing.T, cfg fleetConfig) *fleet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{cfg: cfg, cancel: cancel, rejects: map[int]int{}, rejectMsgs: map[string]int{},
		wake: make(chan struct{}), miners: make([]*miner.Miner, cfg.miners)}
	for i := range cfg.miners {
		f.wg.Go(func() { f.run(ctx, i) })
	}
	t.Cleanup(f.stop)
	return f
}

// stop ends every miner and waits for them. Idempotent.
func (f *fleet) stop() {
	f.cancel()
	f.wg.Wait()
}

func (f *fleet) changedLocked() {
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *fleet) run(ctx context.Context, i int) {
	user := f.cfg.users[i%len(f.cfg.users)]
	opts := miner.Options{User: user, Workers: []string{fmt.Sprintf("m%d", i)},
		VersionRolling: f.cfg.versionRolling && i%2 == 1, HandshakeTimeout: 10 * time.Second}
	backoff := 20 * time.Millisecond
	blocks := 0
	for ctx.Err() == nil {
		m, err := miner.Dial(ctx, f.cfg.addr, opts)
		f.mu.Lock()
		if err != nil {
			f.dialFails++
			f.lastErr = err
			f.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(backoff): // a miner's reconnect delay, not a test wait
			}
			backoff = min(2*backoff, 500*time.Millisecond)
			continue
		}
		backoff = 20 * time.Millisecond
		f.dials++
		f.miners[i] = m
		f.changedLocked()
		f.mu.Unlock()
		for ctx.Err() == nil {
			s, err := m.FindShare(ctx)
			if err != nil {
				break
			}
			if s.MeetsNetwork {
				blocks++
				if f.cfg.blockEvery == 0 || blocks%f.cfg.blockEvery != 0 || f.noBlocks.Load() {
					f.mu.Lock()
					f.withheld++
					f.mu.Unlock()
					continue
				}
			}
			before := time.Now()
			r, err := m.Submit(ctx, s)
			after := time.Now()
			if err != nil {
				break
			}
			f.record(i, m, r, before, after)
			if f.cfg.pace > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(f.cfg.pace - after.Sub(before)):
				}
			}
		}
		m.Close()
		f.mu.Lock()
		f.miners[i] = nil
		if ctx.Err() == nil {
			f.disconnects++
			f.lastErr = m.Err()
		}
		f.changedLocked()
		f.mu.Unlock()
	}
}

func (f *fleet) record(i int, m *miner.Miner, r miner.Result, before, after time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Accepted {
		w := m.Workers()[0]
		user, worker := w, ""
		for j := range len(w) {
			if w[j] == '.' {
				user, worker = w[:j], w[j+1:]
				break
			}
		}
		f.acks = append(f.acks, ack{miner: i, user: user, worker: worker, job: r.JobID,
			diff: chain.HashDifficulty(r.Hash), block: r.MeetsNetwork, hash: r.Hash.String(), before: before, after: after})
	} else if r.Error != nil {
		f.rejects[r.Error.Code]++
		f.rejectMsgs[fmt.Sprintf("%d %s", r.Error.Code, r.Error.Message)]++
	}
	f.changedLocked()
}

// fleetStats is a snapshot of a fleet's counters.
type fleetStats struct {
	acks                         []ack
	rejects                      map[int]int
	rejectMsgs                   map[string]int
	dials, dialFails, disconnect int
	withheld                     int
	connected                    int
	lastErr                      error
}

func (f *fleet) stats() fleetStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := fleetStats{acks: slices.Clone(f.acks), rejects: map[int]int{}, rejectMsgs: map[string]int{},
		dials: f.dials, dialFails: f.dialFails, disconnect: f.disconnects, withheld: f.withheld, lastErr: f.lastErr}
	for k, v := range f.rejects {
		s.rejects[k] = v
	}
	for k, v := range f.rejectMsgs {
		s.rejectMsgs[k] = v
	}
	for _, m := range f.miners {
		if m != nil {
			s.connected++
		}
	}
	return s
}

// waitFor waits until cond holds on the fleet's state (checked after every
// change) or ctx ends.
func (f *fleet) waitFor(ctx context.Context, what string, cond func(*fleet) bool) error {
	for {
		f.mu.Lock()
		ok, wake := cond(f), f.wake
		f.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

// waitAcks waits until n more shares than now were accepted.
func (f *fleet) waitAcks(ctx context.Context, n int) error {
	f.mu.Lock()
	want := len(f.acks) + n
	f.mu.Unlock()
	return f.waitFor(ctx, fmt.Sprintf("%d accepted shares", n), func(f *fleet) bool { return len(f.acks) >= want })
}

// waitEveryMinerAcked waits until every miner has had a share accepted
// after since.
func (f *fleet) waitEveryMinerAcked(ctx context.Context, since time.Time) error {
	return f.waitFor(ctx, "every miner to get a share accepted", func(f *fleet) bool {
		seen := make(map[int]bool)
		for i := len(f.acks) - 1; i >= 0 && f.acks[i].before.After(since); i-- {
			seen[f.acks[i].miner] = true
		}
		return len(seen) == f.cfg.miners
	})
}

// holdBlocks makes every miner withhold its block shares until
// releaseBlocks, and returns once stratumd's current job builds on the
// node's tip for good: every miner has had a share accepted since the hold
// began (so no block submit is in flight, and none follows), and then every
// miner has had one more accepted (so the job after the last block is out).
// An accepted block makes the current job stale until the job manager
// fetches the next template; a node that dies in between leaves the miners
// with stale work only, rightly rejected with 21, for its whole outage.
func (f *fleet) holdBlocks(ctx context.Context) error {
	f.noBlocks.Store(true)
	if err := f.waitEveryMinerAcked(ctx, time.Now()); err != nil {
		return fmt.Errorf("holding blocks: %w", err)
	}
	if err := f.waitEveryMinerAcked(ctx, time.Now()); err != nil {
		return fmt.Errorf("holding blocks: %w", err)
	}
	return nil
}

// releaseBlocks lets the miners submit block shares again.
func (f *fleet) releaseBlocks() { f.noBlocks.Store(false) }

// acksBetween counts the shares whose submit was written in [from, to).
func acksBetween(acks []ack, from, to time.Time) int {
	n := 0
	for _, a := range acks {
		if !a.before.Before(from) && a.before.Before(to) {
			n++
		}
	}
	return n
}
