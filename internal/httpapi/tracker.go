package httpapi

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Tracker defaults, used for zero fields of TrackerConfig.
const (
	DefaultWindow          = 10 * time.Minute
	DefaultBuckets         = 20
	DefaultHistoryInterval = time.Minute
	DefaultHistoryLen      = 24 * 60
)

// hashesPerDiff1 is the expected number of hashes per share of difficulty 1.
const hashesPerDiff1 = 1 << 32

// TrackerConfig configures a Tracker. Zero fields take the defaults.
type TrackerConfig struct {
	// Window is the sliding window hashrates are estimated over
	// (default 10 min).
	Window time.Duration
	// Buckets is how many time buckets the window is kept in (default 20):
	// the window slides in steps of Window/Buckets.
	Buckets int
	// HistoryInterval is how often Run samples the pool's hashrate for
	// History (default 1 min).
	HistoryInterval time.Duration
	// HistoryLen is how many samples History keeps (default 1440: a day
	// at the default interval).
	HistoryLen int
	// Now is the clock (default time.Now); ObserveShare's times must come
	// from the same clock.
	Now func() time.Time
}

// Tracker estimates the pool's, each user's and each worker's hashrate
// from the assigned difficulty of accepted shares over a sliding window,
// in memory, and keeps a history of the pool's hashrate for the chart. It
// implements stratum.ShareObserver. Run samples the history; every method
// is safe for concurrent use.
type Tracker struct {
	cfg     TrackerConfig
	bucket  time.Duration
	started time.Time

	mu         sync.Mutex
	pool       window
	users      map[string]*userEntry
	diffTotal  float64 // assigned difficulty of every share observed
	shareTotal uint64
	history    []Sample // ring of at most HistoryLen samples
	histNext   int      // next slot of history once it is full
}

type userEntry struct {
	workers map[string]*workerEntry
}

type workerEntry struct {
	win  window
	last time.Time
}

// window is a ring of per-bucket sums.
type window struct {
	b []bucket
}

type bucket struct {
	idx    int64 // bucket number: unix time / bucket width
	diff   float64
	shares uint32
}

func (w *window) add(n int, idx int64, diff float64) {
	if w.b == nil {
		w.b = make([]bucket, n)
	}
	b := &w.b[int((idx%int64(n)+int64(n))%int64(n))]
	if b.idx != idx {
		*b = bucket{idx: idx}
	}
	b.diff += diff
	b.shares++
}

// sum adds up the buckets numbered in (now-n, now].
func (w *window) sum(now int64) (diff float64, shares uint64) {
	for _, b := range w.b {
		if b.idx <= now && b.idx > now-int64(len(w.b)) {
			diff += b.diff
			shares += uint64(b.shares)
		}
	}
	return diff, shares
}

// Rate is a hashrate estimate over the tracker's window.
type Rate struct {
	// Hashrate is in hashes per second: difficulty × 2^32 / seconds.
	Hashrate float64
	// SharesPerSecond is the accepted shares' rate.
	SharesPerSecond float64
	// Difficulty is the sum of the shares' assigned difficulty and Shares
	// their number, over the window.
	Difficulty float64
	Shares     uint64
}

// WorkerRate is one worker's estimate.
type WorkerRate struct {
	Name      string
	Rate      Rate
	LastShare time.Time
}

// UserRate is one user's estimate: the sum of its workers, which come
// sorted by name.
type UserRate struct {
	Name      string
	Rate      Rate
	LastShare time.Time
	Workers   []WorkerRate
}

// Sample is one point of the pool's hashrate history.
type Sample struct {
	Time     time.Time
	Hashrate float64
	Workers  int
}

// NewTracker returns a Tracker whose window starts now.
func NewTracker(cfg TrackerConfig) *Tracker {
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Buckets <= 0 {
		cfg.Buckets = DefaultBuckets
	}
	if cfg.HistoryInterval <= 0 {
		cfg.HistoryInterval = DefaultHistoryInterval
	}
	if cfg.HistoryLen <= 0 {
		cfg.HistoryLen = DefaultHistoryLen
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	bucket := max(cfg.Window/time.Duration(cfg.Buckets), time.Millisecond)
	return &Tracker{
		cfg:     cfg,
		bucket:  bucket,
		started: cfg.Now(),
		users:   make(map[string]*userEntry),
	}
}

// Window returns the window hashrates are estimated over.
func (t *Tracker) Window() time.Duration { return t.cfg.Window }

// HistoryInterval returns the time between two history samples.
func (t *Tracker) HistoryInterval() time.Duration { return t.cfg.HistoryInterval }

func (t *Tracker) index(at time.Time) int64 { return at.UnixNano() / int64(t.bucket) }

// ObserveShare records an accepted share of the given assigned difficulty.
// Shares older than the window are counted in the totals only.
func (t *Tracker) ObserveShare(user, worker string, difficulty float64, at time.Time) {
	if !(difficulty > 0) {
		return
	}
	idx := t.index(at)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.diffTotal += difficulty
	t.shareTotal++
	if idx <= t.index(t.cfg.Now())-int64(t.cfg.Buckets) {
		return
	}
	t.pool.add(t.cfg.Buckets, idx, difficulty)
	u := t.users[user]
	if u == nil {
		u = &userEntry{workers: make(map[string]*workerEntry, 1)}
		t.users[user] = u
	}
	w := u.workers[worker]
	if w == nil {
		w = &workerEntry{}
		u.workers[worker] = w
	}
	w.win.add(t.cfg.Buckets, idx, difficulty)
	if at.After(w.last) {
		w.last = at
	}
}

// span is the time the window covers at now: from the start of its oldest
// bucket (or the tracker's start, if later) to now, at least one bucket.
func (t *Tracker) span(now time.Time) (int64, float64) {
	idx := t.index(now)
	start := time.Unix(0, (idx-int64(t.cfg.Buckets)+1)*int64(t.bucket))
	if t.started.After(start) {
		start = t.started
	}
	return idx, max(now.Sub(start), t.bucket).Seconds()
}

func rate(diff float64, shares uint64, secs float64) Rate {
	return Rate{Hashrate: diff * hashesPerDiff1 / secs, SharesPerSecond: float64(shares) / secs, Difficulty: diff, Shares: shares}
}

// Pool returns the pool's estimate and how many users and workers sent a
// share within the window.
func (t *Tracker) Pool() (r Rate, users, workers int) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	idx, secs := t.span(now)
	d, n := t.pool.sum(idx)
	users, workers = t.activeLocked(idx)
	return rate(d, n, secs), users, workers
}

// activeLocked counts the users and workers with a share in the window.
func (t *Tracker) activeLocked(idx int64) (users, workers int) {
	for _, u := range t.users {
		active := false
		for _, w := range u.workers {
			if _, n := w.win.sum(idx); n > 0 {
				workers++
				active = true
			}
		}
		if active {
			users++
		}
	}
	return users, workers
}

// Totals returns the assigned difficulty and the number of all shares
// observed since the tracker was made.
func (t *Tracker) Totals() (difficulty float64, shares uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.diffTotal, t.shareTotal
}

// User returns one user's estimate with its workers; false when the user
// sent no share recently (within the window, or since the last Sample
// pruned it).
func (t *Tracker) User(name string) (UserRate, bool) {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.users[name]
	if u == nil {
		return UserRate{}, false
	}
	idx, secs := t.span(now)
	return t.userRateLocked(name, u, idx, secs, true), true
}

func (t *Tracker) userRateLocked(name string, u *userEntry, idx int64, secs float64, withWorkers bool) UserRate {
	ur := UserRate{Name: name}
	var diff float64
	var shares uint64
	for wname, w := range u.workers {
		d, n := w.win.sum(idx)
		diff += d
		shares += n
		if w.last.After(ur.LastShare) {
			ur.LastShare = w.last
		}
		if withWorkers {
			ur.Workers = append(ur.Workers, WorkerRate{Name: wname, Rate: rate(d, n, secs), LastShare: w.last})
		}
	}
	slices.SortFunc(ur.Workers, func(a, b WorkerRate) int { return cmp.Compare(a.Name, b.Name) })
	ur.Rate = rate(diff, shares, secs)
	return ur
}

// Users returns the estimates of the users with a share in the window,
// without their workers, highest hashrate first (ties by name), at most
// limit of them (0: all).
func (t *Tracker) Users(limit int) []UserRate {
	now := t.cfg.Now()
	t.mu.Lock()
	idx, secs := t.span(now)
	out := make([]UserRate, 0, len(t.users))
	for name, u := range t.users {
		if ur := t.userRateLocked(name, u, idx, secs, false); ur.Rate.Shares > 0 {
			out = append(out, ur)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b UserRate) int {
		if c := cmp.Compare(b.Rate.Hashrate, a.Rate.Hashrate); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Sample appends the pool's current hashrate to the history and forgets
// workers (and users) without a share in the window.
func (t *Tracker) Sample() {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	idx, secs := t.span(now)
	for name, u := range t.users {
		for wname, w := range u.workers {
			if _, n := w.win.sum(idx); n == 0 {
				delete(u.workers, wname)
			}
		}
		if len(u.workers) == 0 {
			delete(t.users, name)
		}
	}
	d, n := t.pool.sum(idx)
	_, workers := t.activeLocked(idx)
	s := Sample{Time: now, Hashrate: rate(d, n, secs).Hashrate, Workers: workers}
	if len(t.history) < t.cfg.HistoryLen {
		t.history = append(t.history, s)
		return
	}
	t.history[t.histNext] = s
	t.histNext = (t.histNext + 1) % t.cfg.HistoryLen
}

// History returns the samples, oldest first.
func (t *Tracker) History() []Sample {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Sample, 0, len(t.history))
	out = append(out, t.history[t.histNext:]...)
	return append(out, t.history[:t.histNext]...)
}

// Run samples the history every HistoryInterval (the first sample at
// once) until ctx ends; it returns nil.
func (t *Tracker) Run(ctx context.Context) error {
	tick := time.NewTicker(t.cfg.HistoryInterval)
	defer tick.Stop()
	t.Sample()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			t.Sample()
		}
	}
}
