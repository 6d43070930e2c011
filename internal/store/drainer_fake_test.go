package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/store/spool"
)

// fakeShareStore is a store.DrainerStore in memory, for table tests of the
// drainer's course without PostgreSQL. It models the answers of *Store that
// the course depends on (see store.DrainerStore):
//
//   - a batch is stored whole or not at all, and moves the progress to its
//     last seq;
//   - ErrConflict, writing nothing, when the progress already covers the
//     batch's first seq; this is checked before any row, as the real
//     transaction locks and reads the progress row before its COPY;
//   - ErrInvalid or ErrExists for a batch holding a seq listed in refuse:
//     a row PostgreSQL refuses (a check constraint; a key another spool
//     holds already) fails the whole transaction;
//   - ErrUnavailable for the first failStore, failSkip or failProgress
//     calls of each method, before the call does anything (the database is
//     down), and, for the StoreShares call numbered lostAck, after it
//     committed (the connection broke before COMMIT's answer arrived);
//   - SkipShares never moves the progress back;
//   - progressAt[n]: before the nth StoreShares call, another writer
//     stored up to that seq (a drainer that should not be there, or an
//     earlier run's late commit).
//
// It does not model COPY, daily partitions, SQL types, the blocks row (its
// ON CONFLICT, the raw bytes), row locks between two drainers, or what a
// crash leaves: TestDrainerStoresEverythingOnce,
// TestDrainerResumesAfterPartialStore, TestDrainerQuarantinesBadRecords,
// TestSharesSurvivePostgresOutage, TestSharesSurviveSIGKILL and
// TestDrainerStoresBlocks cover those against a real PostgreSQL.
//
// Every call is logged with the (synctest) time since the fake was made,
// so that a test reads the drainer's course and its waits.
type fakeShareStore struct {
	start time.Time

	// The script, set before the drainer runs.
	refuse                            map[uint64]error
	failStore, failSkip, failProgress int
	lostAck                           int
	progressAt                        map[int]uint64

	mu         sync.Mutex
	progress   uint64
	stored     map[uint64]int // seq → times this drainer stored it
	other      map[uint64]int // seq → stored by the other writer of progressAt
	storeCalls int
	log        []string
}

func newFakeShareStore() *fakeShareStore {
	return &fakeShareStore{start: time.Now(), stored: map[uint64]int{}, other: map[uint64]int{}}
}

var errFakeDown = fmt.Errorf("fake: connection refused: %w", store.ErrUnavailable)

func (f *fakeShareStore) logf(format string, args ...any) {
	f.log = append(f.log, time.Since(f.start).String()+" "+fmt.Sprintf(format, args...))
}

// result names err's class for the log.
func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrConflict):
		return "conflict"
	case errors.Is(err, store.ErrInvalid):
		return "invalid"
	case errors.Is(err, store.ErrExists):
		return "exists"
	case errors.Is(err, store.ErrUnavailable):
		return "unavailable"
	}
	return err.Error()
}

func (f *fakeShareStore) StoreShares(_ context.Context, _ [16]byte, _ uint8, shares []store.StoredShare) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(shares) == 0 {
		return nil
	}
	f.storeCalls++
	first, last := shares[0].Seq, shares[len(shares)-1].Seq
	err := f.storeShares(shares)
	f.logf("store %d-%d %s", first, last, result(err))
	return err
}

func (f *fakeShareStore) storeShares(shares []store.StoredShare) error {
	if p, ok := f.progressAt[f.storeCalls]; ok && p > f.progress {
		for seq := f.progress + 1; seq <= p; seq++ {
			f.other[seq]++
		}
		f.progress = p
	}
	if f.storeCalls <= f.failStore {
		return errFakeDown
	}
	if f.progress >= shares[0].Seq {
		return fmt.Errorf("fake: progress %d, batch starts at %d: %w", f.progress, shares[0].Seq, store.ErrConflict)
	}
	for _, s := range shares {
		if err := f.refuse[s.Seq]; err != nil {
			return fmt.Errorf("fake: share %d: %w", s.Seq, err)
		}
	}
	for _, s := range shares {
		f.stored[s.Seq]++
	}
	f.progress = shares[len(shares)-1].Seq
	if f.storeCalls == f.lostAck {
		return fmt.Errorf("fake: connection lost after COMMIT: %w", store.ErrUnavailable)
	}
	return nil
}

func (f *fakeShareStore) SkipShares(_ context.Context, _ [16]byte, _ uint8, through uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSkip > 0 {
		f.failSkip--
		f.logf("skip %d unavailable", through)
		return errFakeDown
	}
	f.progress = max(f.progress, through)
	f.logf("skip %d ok", through)
	return nil
}

func (f *fakeShareStore) SpoolProgress(context.Context, [16]byte) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failProgress > 0 {
		f.failProgress--
		f.logf("progress unavailable")
		return 0, errFakeDown
	}
	f.logf("progress %d", f.progress)
	return f.progress, nil
}

// fakeSpool is a store.SpoolReader over records in memory, all durable
// from the start. Unlike *spool.Spool it trims record by record.
type fakeSpool struct {
	mu      sync.Mutex
	recs    []spool.Record
	durable uint64
	notify  chan struct{}
}

func (s *fakeSpool) ID() string              { return "00112233445566778899aabbccddeeff" }
func (s *fakeSpool) Durable() uint64         { return s.durable }
func (s *fakeSpool) Notify() <-chan struct{} { return s.notify }

func (s *fakeSpool) First() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recs) == 0 {
		return s.durable + 1
	}
	return s.recs[0].Seq
}

func (s *fakeSpool) Read(from uint64, max int, _ int) ([]spool.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recs) > 0 && from < s.recs[0].Seq {
		return nil, spool.ErrTrimmed
	}
	var out []spool.Record
	for _, r := range s.recs {
		if r.Seq >= from && len(out) < max {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *fakeSpool) Trim(through uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = slices.DeleteFunc(s.recs, func(r spool.Record) bool { return r.Seq <= through })
	return nil
}

var (
	errRefusedInvalid = fmt.Errorf("fake: new row violates check constraint: %w", store.ErrInvalid)
	errRefusedExists  = fmt.Errorf("fake: duplicate key value: %w", store.ErrExists)
)

// TestDrainerCourse table-tests the drainer's retry, bisection, quarantine
// and "already stored" paths against fakeShareStore, in a synctest bubble
// so that every backoff wait is exact and instant. Each case gives the
// course as the fake logged it, with times since the start.
// drainerCase is one case of TestDrainerCourse.
type drainerCase struct {
	name       string
	n          int           // shares, seq 1..n
	first      uint64        // the spool holds first..n (default 1)
	undecoded  []uint64      // records that are not shares
	blocks     []uint64      // block-solving shares
	stopFirst  bool          // the context ends before Run starts
	batchSize  int           // DrainerConfig.BatchSize (default: all)
	maxBackoff time.Duration // DrainerConfig.MaxBackoff (default 5 s)
	progress   uint64        // stored progress before the start
	script     func(*fakeShareStore)
	wantLog    []string
	wantQuar   []uint64 // seqs set aside
	wantOther  int      // shares stored by the other writer
	wantStats  drainerCounts
	wantBlocks []uint64 // seqs whose block OnBlocks heard of
}

// drainerCounts are the DrainerStats a case checks.
type drainerCounts struct{ Stored, Batches, Failures, Quarantined uint64 }

func TestDrainerCourse(t *testing.T) {
	refuse := func(seqs map[uint64]error) func(*fakeShareStore) {
		return func(f *fakeShareStore) { f.refuse = seqs }
	}
	for _, c := range []drainerCase{{
		name:      "one batch",
		n:         8,
		wantLog:   []string{"0s progress 0", "0s store 1-8 ok"},
		wantStats: drainerCounts{Stored: 8, Batches: 1},
	}, {
		name:      "batches of BatchSize",
		n:         7,
		batchSize: 3,
		wantLog:   []string{"0s progress 0", "0s store 1-3 ok", "0s store 4-6 ok", "0s store 7-7 ok"},
		wantStats: drainerCounts{Stored: 7, Batches: 3},
	}, {
		name:   "database down: retried with backoff from 50 ms",
		n:      4,
		script: func(f *fakeShareStore) { f.failStore = 4 },
		wantLog: []string{"0s progress 0", "0s store 1-4 unavailable", "50ms store 1-4 unavailable",
			"150ms store 1-4 unavailable", "350ms store 1-4 unavailable", "750ms store 1-4 ok"},
		wantStats: drainerCounts{Stored: 4, Batches: 1, Failures: 4},
	}, {
		name:       "backoff capped at MaxBackoff",
		n:          4,
		maxBackoff: 120 * time.Millisecond,
		script:     func(f *fakeShareStore) { f.failStore = 5 },
		wantLog: []string{"0s progress 0", "0s store 1-4 unavailable", "50ms store 1-4 unavailable",
			"150ms store 1-4 unavailable", "270ms store 1-4 unavailable", "390ms store 1-4 unavailable",
			"510ms store 1-4 ok"},
		wantStats: drainerCounts{Stored: 4, Batches: 1, Failures: 5},
	}, {
		name:      "progress unreadable at start: retried",
		n:         2,
		script:    func(f *fakeShareStore) { f.failProgress = 2 },
		wantLog:   []string{"0s progress unavailable", "50ms progress unavailable", "150ms progress 0", "150ms store 1-2 ok"},
		wantStats: drainerCounts{Stored: 2, Batches: 1, Failures: 2},
	}, {
		name:   "a refused row is found by halving and set aside",
		n:      8,
		script: refuse(map[uint64]error{5: errRefusedInvalid}),
		wantLog: []string{"0s progress 0", "0s store 1-8 invalid", "0s store 1-4 ok", "0s store 5-8 invalid",
			"0s store 5-6 invalid", "0s store 5-5 invalid", "0s skip 5 ok", "0s store 6-6 ok", "0s store 7-8 ok"},
		wantQuar:  []uint64{5},
		wantStats: drainerCounts{Stored: 7, Batches: 3, Quarantined: 1},
	}, {
		name:   "an odd batch is halved with the smaller half first",
		n:      5,
		script: refuse(map[uint64]error{4: errRefusedInvalid}),
		wantLog: []string{"0s progress 0", "0s store 1-5 invalid", "0s store 1-2 ok", "0s store 3-5 invalid",
			"0s store 3-3 ok", "0s store 4-5 invalid", "0s store 4-4 invalid", "0s skip 4 ok", "0s store 5-5 ok"},
		wantQuar:  []uint64{4},
		wantStats: drainerCounts{Stored: 4, Batches: 3, Quarantined: 1},
	}, {
		name:   "a key another spool holds (ErrExists) is set aside too",
		n:      4,
		script: refuse(map[uint64]error{1: errRefusedExists}),
		wantLog: []string{"0s progress 0", "0s store 1-4 exists", "0s store 1-2 exists", "0s store 1-1 exists",
			"0s skip 1 ok", "0s store 2-2 ok", "0s store 3-4 ok"},
		wantQuar:  []uint64{1},
		wantStats: drainerCounts{Stored: 3, Batches: 2, Quarantined: 1},
	}, {
		name:   "two refused rows",
		n:      8,
		script: refuse(map[uint64]error{2: errRefusedInvalid, 7: errRefusedExists}),
		wantLog: []string{"0s progress 0", "0s store 1-8 invalid",
			"0s store 1-4 invalid", "0s store 1-2 invalid", "0s store 1-1 ok", "0s store 2-2 invalid", "0s skip 2 ok", "0s store 3-4 ok",
			"0s store 5-8 exists", "0s store 5-6 ok", "0s store 7-8 exists", "0s store 7-7 exists", "0s skip 7 ok", "0s store 8-8 ok"},
		wantQuar:  []uint64{2, 7},
		wantStats: drainerCounts{Stored: 6, Batches: 4, Quarantined: 2},
	}, {
		name:   "every row refused",
		n:      2,
		script: refuse(map[uint64]error{1: errRefusedInvalid, 2: errRefusedInvalid}),
		wantLog: []string{"0s progress 0", "0s store 1-2 invalid", "0s store 1-1 invalid", "0s skip 1 ok",
			"0s store 2-2 invalid", "0s skip 2 ok"},
		wantQuar:  []uint64{1, 2},
		wantStats: drainerCounts{Quarantined: 2},
	}, {
		name: "database down, then a refused row",
		n:    2,
		script: func(f *fakeShareStore) {
			f.failStore = 1
			f.refuse = map[uint64]error{2: errRefusedInvalid}
		},
		wantLog: []string{"0s progress 0", "0s store 1-2 unavailable", "50ms store 1-2 invalid",
			"50ms store 1-1 ok", "50ms store 2-2 invalid", "50ms skip 2 ok"},
		wantQuar:  []uint64{2},
		wantStats: drainerCounts{Stored: 1, Batches: 1, Failures: 1, Quarantined: 1},
	}, {
		name: "skipping a set-aside row while the database is down: retried",
		n:    1,
		script: func(f *fakeShareStore) {
			f.refuse = map[uint64]error{1: errRefusedInvalid}
			f.failSkip = 2
		},
		wantLog:   []string{"0s progress 0", "0s store 1-1 invalid", "0s skip 1 unavailable", "50ms skip 1 unavailable", "150ms skip 1 ok"},
		wantQuar:  []uint64{1},
		wantStats: drainerCounts{Failures: 2, Quarantined: 1},
	}, {
		name:      "records that do not decode are set aside without the database's word",
		n:         5,
		undecoded: []uint64{3},
		wantLog:   []string{"0s progress 0", "0s store 1-2 ok", "0s skip 3 ok", "0s store 4-5 ok"},
		wantQuar:  []uint64{3},
		wantStats: drainerCounts{Stored: 4, Batches: 2, Quarantined: 1},
	}, {
		name:      "commit whose answer was lost: already stored, skipped on retry",
		n:         8,
		script:    func(f *fakeShareStore) { f.lostAck = 1 },
		wantLog:   []string{"0s progress 0", "0s store 1-8 unavailable", "50ms store 1-8 conflict", "50ms progress 8"},
		wantStats: drainerCounts{Failures: 1},
	}, {
		name:       "commit whose answer was lost: its blocks still reach OnBlocks",
		n:          4,
		blocks:     []uint64{2, 4},
		script:     func(f *fakeShareStore) { f.lostAck = 1 },
		wantLog:    []string{"0s progress 0", "0s store 1-4 unavailable", "50ms store 1-4 conflict", "50ms progress 4"},
		wantStats:  drainerCounts{Failures: 1},
		wantBlocks: []uint64{2, 4},
	}, {
		name:      "progress past part of the batch: the rest is stored",
		n:         8,
		script:    func(f *fakeShareStore) { f.progressAt = map[int]uint64{1: 3} },
		wantLog:   []string{"0s progress 0", "0s store 1-8 conflict", "0s progress 3", "0s store 4-8 ok"},
		wantOther: 3,
		wantStats: drainerCounts{Stored: 5, Batches: 1},
	}, {
		name:      "resume after the stored progress",
		n:         10,
		progress:  6,
		wantLog:   []string{"0s progress 6", "0s store 7-10 ok"},
		wantStats: drainerCounts{Stored: 4, Batches: 1},
	}, {
		name:      "spool trimmed past the stored progress (database from an older backup)",
		n:         10,
		first:     5,
		progress:  2,
		wantLog:   []string{"0s progress 2", "0s store 5-10 ok"},
		wantStats: drainerCounts{Stored: 6, Batches: 1},
	}, {
		name:       "OnBlocks hears of stored blocks, not of set-aside ones",
		n:          4,
		blocks:     []uint64{2, 3},
		script:     refuse(map[uint64]error{3: errRefusedInvalid}),
		wantLog:    []string{"0s progress 0", "0s store 1-4 invalid", "0s store 1-2 ok", "0s store 3-4 invalid", "0s store 3-3 invalid", "0s skip 3 ok", "0s store 4-4 ok"},
		wantQuar:   []uint64{3},
		wantStats:  drainerCounts{Stored: 3, Batches: 2, Quarantined: 1},
		wantBlocks: []uint64{2},
	}, {
		name:      "stopped before the progress was read: the last pass resumes and drains",
		n:         2,
		stopFirst: true,
		script:    func(f *fakeShareStore) { f.failProgress = 1 },
		wantLog:   []string{"0s progress unavailable", "0s progress 0", "0s store 1-2 ok"},
		wantStats: drainerCounts{Stored: 2, Batches: 1}, // a failure seen while stopping is not counted
	}} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { c.run(t) })
		})
	}
}

// run drains the case's spool into a fakeShareStore until every record is
// stored or set aside, stops the drainer, and checks the outcome.
func (c drainerCase) run(t *testing.T) {
	n, first := c.n, max(c.first, 1)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sp := &fakeSpool{durable: uint64(n), notify: make(chan struct{})}
	for seq := first; seq <= uint64(n); seq++ {
		var data []byte
		if slices.Contains(c.undecoded, seq) {
			data = []byte("not a share")
		} else {
			s := sampleShare(int(seq), at)
			if slices.Contains(c.blocks, seq) {
				raw, hash := rawBlock(byte(seq), 81)
				s.Block = &store.BlockFound{Hash: hash, Reward: 1, NetworkDifficulty: 1, Status: store.BlockSubmitted, Raw: raw}
			}
			var err error
			if data, err = store.AppendShare(nil, &s); err != nil {
				t.Fatal(err)
			}
		}
		sp.recs = append(sp.recs, spool.Record{Seq: seq, Data: data})
	}
	fs := newFakeShareStore()
	fs.progress = c.progress
	if c.script != nil {
		c.script(fs)
	}
	var heard []uint64
	dir := t.TempDir()
	d, err := store.NewDrainer(store.DrainerConfig{Store: fs, Spool: sp, InstanceID: 1, QuarantineDir: dir,
		BatchSize: c.batchSize, MaxBackoff: c.maxBackoff, Logger: slog.New(slog.DiscardHandler),
		OnBlocks: func(_ context.Context, bs []store.Block) {
			for _, b := range bs {
				if b.Raw != nil {
					t.Errorf("OnBlocks got block %s with its bytes", b.Hash)
				}
				heard = append(heard, b.LastShare.Seq)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	if c.stopFirst {
		cancel() // a daemon stopped as soon as it started
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	// An hour of the bubble's time passes at once when the drainer only
	// waits: a drainer that never gets there fails fast.
	wctx, wcancel := context.WithTimeout(t.Context(), time.Hour)
	werr := d.WaitStored(wctx, uint64(n))
	wcancel()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if werr != nil {
		t.Fatalf("not drained: %v; course:\n  %s", werr, strings.Join(fs.log[:min(len(fs.log), 30)], "\n  "))
	}
	stats := d.Stats()

	if !slices.Equal(fs.log, c.wantLog) {
		t.Errorf("course:\n  %s\nwant:\n  %s", strings.Join(fs.log, "\n  "), strings.Join(c.wantLog, "\n  "))
	}
	got := drainerCounts{Stored: stats.Stored, Batches: stats.Batches, Failures: stats.Failures, Quarantined: stats.Quarantined}
	if got != c.wantStats || stats.StoredSeq != uint64(n) || stats.Backlog != 0 {
		t.Errorf("stats %+v (stored through %d, backlog %d), want %+v through %d", got, stats.StoredSeq, stats.Backlog, c.wantStats, n)
	}
	if (stats.Failures == 0) != (stats.LastError == "") {
		t.Errorf("%d failures, last error %q", stats.Failures, stats.LastError)
	}
	oks := 0
	for _, l := range fs.log {
		if strings.Contains(l, " store ") && strings.HasSuffix(l, " ok") {
			oks++
		}
	}
	if stats.StoreLatency.Count != uint64(oks) {
		t.Errorf("store latency observed %d times, %d StoreShares calls succeeded", stats.StoreLatency.Count, oks)
	}
	// Every share after the stored progress is stored once or set aside,
	// none both, none lost.
	var quar []uint64
	for seq := max(first, c.progress+1); seq <= uint64(n); seq++ {
		stored, other := fs.stored[seq], fs.other[seq]
		name := filepath.Join(dir, fmt.Sprintf("%s-%020d.share", sp.ID(), seq))
		b, ferr := os.ReadFile(name)
		switch {
		case ferr == nil:
			quar = append(quar, seq)
			if stored+other != 0 {
				t.Errorf("seq %d set aside and stored", seq)
			}
			if !strings.HasPrefix(string(b), "reason: ") || !strings.Contains(string(b), "\nrecord: ") {
				t.Errorf("quarantine file of seq %d: %q", seq, b)
			}
		case !errors.Is(ferr, os.ErrNotExist):
			t.Fatal(ferr)
		case stored+other != 1:
			t.Errorf("seq %d stored %d times (+%d by the other writer)", seq, stored, other)
		}
	}
	if !slices.Equal(quar, c.wantQuar) {
		t.Errorf("set aside %v, want %v", quar, c.wantQuar)
	}
	if len(fs.other) != c.wantOther {
		t.Errorf("%d shares stored by the other writer, want %d", len(fs.other), c.wantOther)
	}
	if !slices.Equal(heard, c.wantBlocks) {
		t.Errorf("OnBlocks heard of %v, want %v", heard, c.wantBlocks)
	}
	if fs.progress != uint64(n) || len(sp.recs) != 0 {
		t.Errorf("progress %d, %d records left in the spool; want %d, 0", fs.progress, len(sp.recs), n)
	}
}
