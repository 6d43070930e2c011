package httpapi_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/httpapi"
	"github.com/stratumd/stratumd/internal/testutil"
)

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// TestTrackerRates: hashrate is assigned difficulty × 2^32 over the time
// the window covers, per pool, user and worker; the window slides; shares
// older than the window only count in the totals.
func TestTrackerRates(t *testing.T) {
	// A bucket boundary (30 s buckets) plus 15 s.
	start := time.Unix(1_800_000_000, 0).Truncate(30 * time.Second)
	clk := testutil.NewClock(start.Add(-time.Hour)) // the tracker is an hour old
	tr := httpapi.NewTracker(httpapi.TrackerConfig{Window: 10 * time.Minute, Buckets: 20, Now: clk.Now})
	clk.Advance(time.Hour + 15*time.Second)
	now := clk.Now()

	tr.ObserveShare("alice", "rig1", 1000, now.Add(-9*time.Minute)) // in the oldest bucket
	tr.ObserveShare("alice", "rig1", 1000, now.Add(-time.Minute))
	tr.ObserveShare("alice", "rig2", 500, now)
	tr.ObserveShare("bob", "", 4000, now.Add(-5*time.Minute))
	tr.ObserveShare("bob", "", 4000, now.Add(-11*time.Minute)) // outside the window
	tr.ObserveShare("bob", "", 0, now)                         // ignored
	tr.ObserveShare("bob", "", math.NaN(), now)                // ignored

	// The window covers 19 whole buckets plus the 15 s of the current one.
	span := 19*30.0 + 15
	pool, users, workers := tr.Pool()
	if want := (1000 + 1000 + 500 + 4000) * 4294967296 / span; !near(pool.Hashrate, want) {
		t.Errorf("pool hashrate %v, want %v", pool.Hashrate, want)
	}
	if pool.Shares != 4 || !near(pool.SharesPerSecond, 4/span) || users != 2 || workers != 3 {
		t.Errorf("pool %+v users %d workers %d", pool, users, workers)
	}
	if d, n := tr.Totals(); d != 1000+1000+500+4000+4000 || n != 5 {
		t.Errorf("totals %v, %d", d, n)
	}
	a, ok := tr.User("alice")
	if !ok || len(a.Workers) != 2 || a.Workers[0].Name != "rig1" || a.Workers[1].Name != "rig2" {
		t.Fatalf("alice %+v", a)
	}
	if !near(a.Rate.Hashrate, 2500*4294967296/span) || !near(a.Workers[0].Rate.Hashrate, 2000*4294967296/span) ||
		!a.LastShare.Equal(now) || !a.Workers[0].LastShare.Equal(now.Add(-time.Minute)) {
		t.Errorf("alice %+v", a)
	}
	if _, ok := tr.User("nobody"); ok {
		t.Error("unknown user found")
	}
	top := tr.Users(1)
	if len(top) != 1 || top[0].Name != "bob" || !near(top[0].Rate.Hashrate, 4000*4294967296/span) {
		t.Errorf("top user %+v", top)
	}

	// Four minutes on, the share of 9 minutes ago has left the window.
	clk.Advance(4 * time.Minute)
	pool, _, _ = tr.Pool()
	if want := (1000 + 500 + 4000) * 4294967296 / span; !near(pool.Hashrate, want) {
		t.Errorf("after 4 min: pool hashrate %v, want %v", pool.Hashrate, want)
	}
	// Eleven minutes on, every share is older than the window.
	clk.Advance(7 * time.Minute)
	if pool, users, workers := tr.Pool(); pool.Hashrate != 0 || users != 0 || workers != 0 {
		t.Errorf("after 11 min: %+v %d %d", pool, users, workers)
	}
	// Sample forgets idle workers and records the (zero) rate.
	if _, ok := tr.User("alice"); !ok {
		t.Fatal("alice forgotten before Sample")
	}
	tr.Sample()
	if _, ok := tr.User("alice"); ok {
		t.Error("idle alice kept after Sample")
	}
	if h := tr.History(); len(h) != 1 || h[0].Hashrate != 0 || !h[0].Time.Equal(clk.Now()) {
		t.Errorf("history %+v", h)
	}
}

// TestTrackerYoungWindow: a tracker younger than its window divides by its
// age, not by the whole window.
func TestTrackerYoungWindow(t *testing.T) {
	clk := testutil.NewClock(time.Unix(1_800_000_000, 0))
	tr := httpapi.NewTracker(httpapi.TrackerConfig{Window: 10 * time.Minute, Now: clk.Now})
	clk.Advance(2 * time.Minute)
	tr.ObserveShare("u", "w", 3, clk.Now())
	pool, _, _ := tr.Pool()
	if want := 3 * 4294967296 / 120.0; !near(pool.Hashrate, want) {
		t.Fatalf("hashrate %v, want %v", pool.Hashrate, want)
	}
}

// TestTrackerHistoryRing: History keeps the newest HistoryLen samples,
// oldest first.
func TestTrackerHistoryRing(t *testing.T) {
	clk := testutil.NewClock(time.Unix(1_800_000_000, 0))
	tr := httpapi.NewTracker(httpapi.TrackerConfig{Window: time.Minute, HistoryLen: 3, Now: clk.Now})
	var times []time.Time
	for i := range 5 {
		clk.Advance(time.Minute)
		tr.ObserveShare("u", "w", float64(i+1), clk.Now())
		tr.Sample()
		times = append(times, clk.Now())
	}
	h := tr.History()
	if len(h) != 3 {
		t.Fatalf("%d samples", len(h))
	}
	for i, s := range h {
		if !s.Time.Equal(times[i+2]) || s.Workers != 1 || !(s.Hashrate > 0) {
			t.Errorf("sample %d: %+v, want time %v", i, s, times[i+2])
		}
	}
	if !(h[2].Hashrate > h[1].Hashrate && h[1].Hashrate > h[0].Hashrate) {
		t.Errorf("hashrates not rising with difficulty: %+v", h)
	}
}

// TestTrackerConcurrent exercises the tracker from many goroutines (for
// the race detector) and checks that no share is lost.
func TestTrackerConcurrent(t *testing.T) {
	clk := testutil.NewClock(time.Unix(1_800_000_000, 0))
	tr := httpapi.NewTracker(httpapi.TrackerConfig{Now: clk.Now})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				tr.ObserveShare("u"+string(rune('a'+g)), "w", 1, clk.Now())
				if i%100 == 0 {
					tr.Pool()
					tr.Users(3)
					tr.Sample()
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d, n := tr.Totals(); d != 8000 || n != 8000 {
		t.Fatalf("totals %v %d", d, n)
	}
	if pool, users, _ := tr.Pool(); pool.Shares != 8000 || users != 8 {
		t.Fatalf("pool %+v users %d", pool, users)
	}
}
