package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/httpapi"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/store/spool"
	"github.com/stratumd/stratumd/internal/stratum"
	"github.com/stratumd/stratumd/internal/stratum/stratumtest"
)

// minerDifficulty is a share's difficulty as the miner's own screen shows
// it: ESP-Miner's test_nonce_value (and cgminer's, which it copies) divides
// truediffone, 0x00000000FFFF0000...0000, by the hash read as a
// little-endian 256-bit number. Computed here with exact big-number
// arithmetic, apart from the pool's chain.HashDifficulty.
func minerDifficulty(h chainhash.Hash) float64 {
	be := make([]byte, 32)
	for i := range h {
		be[31-i] = h[i]
	}
	hash := new(big.Int).SetBytes(be)
	if hash.Sign() == 0 {
		return math.Inf(1)
	}
	one := new(big.Int).Lsh(big.NewInt(0xffff), 208)
	d, _ := new(big.Rat).SetFrac(one, hash).Float64()
	return d
}

// workerBook is what the miner knows of one of its workers.
type workerBook struct {
	accepted   int64
	difficulty float64 // assigned difficulty summed
	best       float64
	round      int64
	roundBest  float64
	rejected   map[string]int64
}

// TestWorkerStatsMatchTheMiner mines with the in-repo miner (two workers)
// against the real stratum server, spool, drainer and PostgreSQL, finds
// blocks, sends rejected shares of several kinds, and checks that the JSON
// API and the worker_stats SQL view report per worker what the miner itself
// counted: accepted and rejected by reason, the best share difficulty of
// all time and of this round (as ESP-Miner computes a share's difficulty),
// and the 10-minute and 1-hour hashrates from the accepted work; that a
// submit naming a worker the session never authorized is counted pool-wide
// only; and that /metrics carries pool-level rejects by reason and no
// per-worker series.
func TestWorkerStatsMatchTheMiner(t *testing.T) {
	st, url := pgtest.NewStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	sp, err := spool.Open(spool.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	drainer, err := store.NewDrainer(store.DrainerConfig{Store: st, Spool: sp, InstanceID: 5, QuarantineDir: t.TempDir(),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rejects, err := store.NewRejectCounter(store.RejectCounterConfig{Store: st, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	storeCtx, stopStore := context.WithCancel(context.Background())
	var storeWG sync.WaitGroup
	storeWG.Go(func() { sp.Run(storeCtx) })
	storeWG.Go(func() { drainer.Run(storeCtx) })
	defer func() {
		stopStore()
		storeWG.Wait()
		sp.Close()
	}()

	tracker := httpapi.NewTracker(httpapi.TrackerConfig{})
	// Network difficulty 2^-13 and shares at 2^-16: about one share in
	// eight is a block, so the test sees rounds end.
	pool := stratumtest.Start(t, stratumtest.Config{Bits: 0x1e1fffe0, Configure: func(c *stratum.Config) {
		c.Users, c.Shares, c.Blocks = st, store.NewShareWriter(sp), st
		c.InstanceID = 5
		c.Observer, c.Rejects = tracker, rejects
	}})
	defer pool.Stop()
	api, err := httpapi.New(httpapi.Config{Stratum: pool.Server, Drainer: drainer, Store: st, Tracker: tracker,
		Rejects: rejects, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(api.Handler())
	defer web.Close()

	user := stratumtest.Address(0x31)
	m, err := miner.Dial(ctx, pool.Addr, miner.Options{User: user, Workers: []string{"rig1", "rig2"}, VersionRolling: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	books := map[string]*workerBook{}
	book := func(w string) *workerBook {
		if books[w] == nil {
			books[w] = &workerBook{rejected: map[string]int64{}}
		}
		return books[w]
	}
	blocks := 0
	submit := func(s miner.Share) miner.Result {
		t.Helper()
		r, err := m.Submit(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	mine := func(worker string) miner.Result {
		t.Helper()
		s, err := m.FindShare(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.Worker = user + "." + worker
		r := submit(s)
		if !r.Accepted {
			t.Fatalf("share of %s rejected: %v", worker, r.Error)
		}
		b := book(worker)
		d := minerDifficulty(r.Hash)
		b.accepted++
		b.difficulty += r.Difficulty
		b.best = math.Max(b.best, d)
		b.round++
		b.roundBest = math.Max(b.roundBest, d)
		if r.MeetsNetwork {
			// The block's share ends the round: the next one starts after it.
			blocks++
			for _, wb := range books {
				wb.round, wb.roundBest = 0, 0
			}
			// Wait for the job on the new tip, so that the next share is
			// not stale.
			if _, err := m.WaitEvent(ctx, func(e miner.Event) bool { return e.Job != nil && e.Job.PrevHash == r.Hash }); err != nil {
				t.Fatal(err)
			}
		}
		return r
	}
	// Mine until at least two blocks, and then until both workers have a
	// share in the round in progress.
	var last miner.Result
	for i := 0; blocks < 2 || book("rig1").round == 0 || book("rig2").round == 0; i++ {
		if i > 400 {
			t.Fatalf("no two blocks in 400 shares (%d)", blocks)
		}
		last = mine([]string{"rig1", "rig2"}[i%2])
	}

	// Rejected submits: a duplicate and a low-difficulty share of rig1, a
	// duplicate of rig2, and a share naming a worker never authorized.
	expectReject := func(s miner.Share, worker, reason string) {
		t.Helper()
		s.Worker = user + "." + worker
		if r := submit(s); r.Accepted {
			t.Fatalf("%s of %s accepted", reason, worker)
		}
		if reason != "" {
			book(worker).rejected[reason]++
		}
	}
	expectReject(last.Share, "rig1", "duplicate")
	expectReject(last.Share, "rig2", "duplicate")
	low := last.Share
	job := m.CurrentJob()
	for {
		low.Nonce++
		h := job.Hash(low.Extranonce2, low.NTime, low.Nonce, low.Version)
		if target := job.ShareTarget(); !target.Meets(&h) {
			break
		}
	}
	expectReject(low, "rig1", "low-difficulty")
	expectReject(last.Share, "ghost", "") // unauthorized: pool-wide only

	if err := drainer.WaitStored(ctx, sp.Durable()); err != nil {
		t.Fatal(err)
	}
	if err := rejects.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// The JSON API.
	var u httpapi.UserJSON
	get(t, web.URL, "/api/users/"+user, &u)
	if len(u.Workers) != 2 {
		t.Fatalf("workers %+v, want rig1 and rig2", u.Workers)
	}
	if u.Round.AfterHash == "" || u.Round.Start == nil {
		t.Errorf("round %+v: the pool found blocks", u.Round)
	}
	const h = 4294967296.0
	for _, w := range u.Workers {
		b := books[w.Name]
		if b == nil {
			t.Fatalf("worker %q the miner never used", w.Name)
		}
		if w.Accepted != b.accepted || w.RoundShares != b.round {
			t.Errorf("%s: accepted %d, round %d; the miner counted %d, %d", w.Name, w.Accepted, w.RoundShares, b.accepted, b.round)
		}
		if !closeRel(w.BestShareDifficulty, b.best) {
			t.Errorf("%s: best share %v, the miner's best %v", w.Name, w.BestShareDifficulty, b.best)
		}
		if w.RoundBestShareDifficulty == nil || !closeRel(*w.RoundBestShareDifficulty, b.roundBest) {
			t.Errorf("%s: round best %v, the miner's %v", w.Name, w.RoundBestShareDifficulty, b.roundBest)
		}
		var rejected int64
		for _, n := range b.rejected {
			rejected += n
		}
		if w.Rejected != rejected || len(w.RejectedByReason) != len(b.rejected) {
			t.Errorf("%s: rejected %d %v, the miner saw %d %v", w.Name, w.Rejected, w.RejectedByReason, rejected, b.rejected)
		}
		for reason, n := range b.rejected {
			if w.RejectedByReason[reason] != n {
				t.Errorf("%s: %d %s rejects, the miner saw %d", w.Name, w.RejectedByReason[reason], reason, n)
			}
		}
		// Every share is from the last minute or two: both windows hold
		// them all.
		if !closeRel(w.Hashrate10m, b.difficulty*h/600) || !closeRel(w.Hashrate1h, b.difficulty*h/3600) {
			t.Errorf("%s: hashrate 10m %v 1h %v, want %v %v", w.Name, w.Hashrate10m, w.Hashrate1h, b.difficulty*h/600, b.difficulty*h/3600)
		}
	}

	// The SQL view says the same.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT worker, accepted, rejected, best_share_difficulty, round_best_share_difficulty
		FROM worker_stats WHERE username = $1`, user)
	if err != nil {
		t.Fatal(err)
	}
	var worker string
	var acc, rej int64
	var best, roundBest float64
	seen := 0
	if _, err := pgx.ForEachRow(rows, []any{&worker, &acc, &rej, &best, &roundBest}, func() error {
		seen++
		b := books[worker]
		if b == nil || acc != b.accepted || !closeRel(best, b.best) || !closeRel(roundBest, b.roundBest) {
			t.Errorf("worker_stats %s: %d %d %v %v; miner %+v", worker, acc, rej, best, roundBest, b)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen != 2 {
		t.Errorf("worker_stats has %d rows of the user, want 2", seen)
	}

	// Prometheus: pool-wide rejects by reason, no per-worker series.
	resp, err := http.Get(web.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	metrics := string(body)
	for _, want := range []string{
		`stratumd_shares_rejected_total{reason="duplicate"} 2`,
		`stratumd_shares_rejected_total{reason="low-difficulty"} 1`,
		`stratumd_shares_rejected_total{reason="unauthorized"} 1`,
		"stratumd_worker_rejects_flushed_total 3",
		"stratumd_worker_rejects_pending 0",
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, name := range []string{"rig1", "rig2", "ghost"} {
		if strings.Contains(metrics, name) {
			t.Errorf("/metrics names worker %s: per-worker series are unbounded", name)
		}
	}
	t.Logf("%d blocks; rig1 %+v; rig2 %+v", blocks, *books["rig1"], *books["rig2"])
}

func closeRel(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }
