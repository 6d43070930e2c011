package stratum_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/store/spool"
	"github.com/stratumd/stratumd/internal/stratum"
	"github.com/stratumd/stratumd/internal/testutil"
)

// realStore is PostgreSQL behind a real spool, ShareWriter and Drainer, as
// the daemon runs them.
type realStore struct {
	st      *store.Store
	sp      *spool.Spool
	drainer *store.Drainer
	shares  *store.ShareWriter
}

func startRealStore(t *testing.T) *realStore {
	t.Helper()
	st, _ := pgtest.NewStore(t)
	sp, err := spool.Open(spool.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	drainer, err := store.NewDrainer(store.DrainerConfig{Store: st, Spool: sp, QuarantineDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { sp.Run(ctx) })
	wg.Go(func() { drainer.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		sp.Close()
		st.Close()
	})
	return &realStore{st: st, sp: sp, drainer: drainer, shares: store.NewShareWriter(sp)}
}

// serve runs srv's job manager and serves it on a loopback listener; stop
// shuts both down and waits for them (it is idempotent).
func serve(t *testing.T, srv *stratum.Server) (addr string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ctx, l) })
	wg.Go(func() { srv.Run(ctx) })
	var once sync.Once
	return l.Addr().String(), func() { once.Do(func() { cancel(); wg.Wait() }) }
}

// firmware is how a miner takes a new difficulty: the difficulty it works
// a job at.
type firmware struct {
	name string
	opts miner.Options
	// suggest, when positive, is sent with mining.suggest_difficulty once
	// authorized, as ESP-Miner does.
	suggest float64
	// workAt is the difficulty the firmware works job at, now.
	workAt func(m *miner.Miner, job *miner.Job) float64
}

// The firmwares, from their published sources:
//   - cpuminer (pooler/cpuminer util.c at
//     46e919f93cb16756a92fe8c957e78ed1fc634384): subscribe, authorize, no
//     suggestion; stratum_set_difficulty sets sctx->next_diff, which
//     stratum_notify copies into the job: a job keeps the difficulty in
//     force when its notify arrived.
//   - ESP-Miner (bitaxeorg/ESP-Miner main/tasks/stratum_task.c at
//     04fd4aadcc704cc722db4734b2a8485f3f573826): mining.configure
//     (version-rolling, mask "ffffffff", components/stratum/stratum_api.c
//     at 04a3186820fe53cc633023f5b5ae42e799bc9a2a), subscribe, authorize,
//     and mining.suggest_difficulty (an integer) once the authorize result
//     is true; main/tasks/create_jobs_task.c (same commit) takes the
//     latest set_difficulty when it dequeues a notify, which may be one
//     queued before the retarget, so an older job id can be worked at the
//     new difficulty (main/tasks/asic_result_task.c then checks each
//     result against its job's pool_diff).
//   - cgminer (util.c parse_diff sets pool->sdiff, cgminer.c
//     gen_stratum_work copies it into new work from the current job): the
//     latest difficulty at once.
func firmwares() []firmware {
	own := func(_ *miner.Miner, job *miner.Job) float64 { return job.Difficulty }
	latest := func(m *miner.Miner, _ *miner.Job) float64 { return m.Difficulty() }
	return []firmware{
		{name: "cpuminer", opts: miner.Options{UserAgent: miner.UserAgentCPUMiner}, workAt: own},
		// Pipeline: configure, subscribe and authorize are written before
		// any reply is read, as ESP-Miner writes them; the suggestion goes
		// out after the authorize result (the miner sends it once the
		// first job is in, which the server sends right after that result:
		// the server reads the same lines in the same order).
		{name: "esp-miner", opts: miner.Options{UserAgent: miner.UserAgentBitaxe, VersionRolling: true,
			VersionRollingMask: 0xffffffff, Pipeline: true}, suggest: 1000, workAt: latest},
		{name: "cgminer", opts: miner.Options{UserAgent: "cgminer/4.12.1", VersionRolling: true}, workAt: latest},
	}
}

// credit is a submitted share and the difficulty it must be credited at.
type credit struct {
	job  string
	diff float64
}

// TestHonestWorkAcrossRetargets: cpuminer-, ESP-Miner- and cgminer-style
// sessions, against the real server and store, through a retarget down
// (vardiff: the miner went quiet) and up (vardiff: shares came fast),
// ESP-Miner's after its suggest_difficulty (a hint of 1000, bounded to the
// port's maximum). Around each retarget the miner submits work it had in
// flight at the old difficulty and work it took from the older job at the
// difficulty its firmware gives it, then work on the new job: every share
// is accepted, none is rejected, and PostgreSQL credits each at the
// difficulty of the job id it names when the share meets it (a new
// difficulty applies from the next job; earlier jobs keep theirs), else at
// the lower one it was worked at.
func TestHonestWorkAcrossRetargets(t *testing.T) {
	rs := startRealStore(t)
	clock := testutil.NewClock(time.Now())
	params := &chaincfg.RegressionNetParams
	src := chaintest.New(params)
	src.Now = clock.Now
	src.SetBits(0x1c00ffff) // network difficulty 256: no test share is a block
	pkScript, err := txscript.PayToAddrScript(addr(t, 0x42))
	if err != nil {
		t.Fatal(err)
	}
	const maxDiff = 1.0 / (1 << 14)
	srv, err := stratum.New(stratum.Config{
		Source: src, Network: params, Users: rs.st, Shares: rs.shares, Blocks: rs.st,
		PayoutScript: pkScript, Auth: stratum.AuthOpen,
		Limits:      stratum.Limits{MinDiff: 1.0 / (1 << 24), MaxDiff: maxDiff, StartDiff: 1.0 / (1 << 16), VardiffTarget: 10 * time.Second},
		VardiffTick: 5 * time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	poolAddr, stop := serve(t, srv)
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var want []credit
	for i, fw := range firmwares() {
		t.Run(fw.name, func(t *testing.T) {
			opts := fw.opts
			opts.User = addr(t, byte(0x10+i)).EncodeAddress()
			m, err := miner.Dial(ctx, poolAddr, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			h := &honest{t: t, ctx: ctx, m: m, fw: fw, now: clock.Now}
			if fw.suggest > 0 {
				h.retarget("suggest_difficulty after authorize", func() {
					if _, rerr, err := m.Call(ctx, "mining.suggest_difficulty", fw.suggest); err != nil || rerr != nil {
						t.Fatalf("suggest_difficulty: %v %v", rerr, err)
					}
				}, func(d, old float64) bool { return d > old && d <= maxDiff })
			}
			h.retarget("down: the miner went quiet", func() {
				clock.Advance(2*time.Minute + time.Second) // vardiff's quiet time: 12 × 10 s
			}, func(d, old float64) bool { return d < old })
			h.retarget("up: shares came fast", func() {
				// Vardiff's fast path: 10 shares 8× faster than the target
				// (the server's clock stands still).
				start := m.Difficulty()
				for n := 0; m.Difficulty() == start; n++ {
					if n == 20 {
						t.Fatalf("no retarget up after %d fast shares", n)
					}
					h.mine(m.CurrentJob())
				}
			}, func(d, old float64) bool { return d > old })
			want = append(want, h.credits...)
		})
	}
	if t.Failed() {
		return
	}
	if st := srv.Stats(); st.SharesAccepted != uint64(len(want)) {
		t.Errorf("%d shares accepted, %d submitted; rejected: %v", st.SharesAccepted, len(want), st.SharesRejected)
	}
	for r, n := range srv.Stats().SharesRejected {
		if n != 0 {
			t.Errorf("%d shares rejected as %s", n, r)
		}
	}

	// PostgreSQL has every share, credited as stated.
	if err := rs.drainer.WaitStored(ctx, rs.sp.Durable()); err != nil {
		t.Fatal(err)
	}
	rows, err := rs.st.Pool().Query(ctx, `SELECT job_id, difficulty FROM shares ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var got []credit
	for rows.Next() {
		var c credit
		if err := rows.Scan(&c.job, &c.diff); err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(got) != len(want) {
		t.Fatalf("%d shares stored, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("share %d: stored %+v, want %+v", i, got[i], want[i])
		}
	}
}

// honest plays one firmware's session: it mines, submits and expects
// every share accepted. It models the credit rule of stratum.RetargetGrace
// to say what each share must be credited at.
type honest struct {
	t       *testing.T
	ctx     context.Context
	m       *miner.Miner
	fw      firmware
	now     func() time.Time // the server's clock
	credits []credit

	// The lower difficulty after the last retarget down: until when, the
	// job ids it covers, and whether a share met only it.
	lower     float64
	lowerEnd  time.Time
	lowerJobs map[string]bool
	lowerUsed bool
}

// retargeted updates the model of the lower difficulty for a retarget to
// d; jobs are the ids sent before it.
func (h *honest) retargeted(d float64, jobs map[string]bool) {
	if h.lowerJobs != nil && !h.now().After(h.lowerEnd) && h.lower <= d {
		h.lowerJobs = jobs
		return
	}
	h.lower, h.lowerEnd, h.lowerJobs, h.lowerUsed = d, h.now().Add(stratum.RetargetGrace), jobs, false
}

// submit submits s, found on job, and records the credit it must get.
func (h *honest) submit(s miner.Share, job *miner.Job, what string) {
	h.t.Helper()
	r, err := h.m.Submit(h.ctx, s)
	if err != nil {
		h.t.Fatal(err)
	}
	if !r.Accepted {
		h.t.Fatalf("%s: share on job %s (sent at difficulty %v) worked at %v rejected: %v",
			what, job.ID, job.Difficulty, s.Difficulty, r.Error)
	}
	// Credited at the job id's own difficulty, or at the lower one within
	// the grace after a retarget down (stratum.RetargetGrace).
	own := chain.NewTarget(chain.DifficultyToTarget(job.Difficulty))
	meetsOwn := own.Meets(&s.Hash)
	c := credit{job: baseJobID(job.ID), diff: job.Difficulty}
	if h.lowerJobs[job.ID] && !h.now().After(h.lowerEnd) && job.Difficulty > h.lower {
		switch {
		case meetsOwn && !h.lowerUsed:
		case meetsOwn:
			c.diff = h.lower
		default:
			c.diff, h.lowerUsed = h.lower, true
		}
	} else if !meetsOwn {
		h.t.Fatalf("%s: the server accepted a share below its job's difficulty and outside any grace", what)
	}
	h.credits = append(h.credits, c)
}

// mine finds a share on job at the firmware's difficulty and submits it.
func (h *honest) mine(job *miner.Job) {
	h.t.Helper()
	s, err := h.m.FindShareAt(h.ctx, job, h.fw.workAt(h.m, job))
	if err != nil {
		h.t.Fatal(err)
	}
	h.submit(s, job, "work on the current job")
}

// retarget runs trigger and expects a retarget that changed checks: a
// mining.set_difficulty and then the job again under a new id. Work found
// on the older job before the retarget is submitted after it (in flight);
// then work taken from the older job after it, at the firmware's
// difficulty; then work on the new job.
func (h *honest) retarget(what string, trigger func(), changed func(d, old float64) bool) {
	h.t.Helper()
	before := h.m.CurrentJob()
	old := h.m.Difficulty()
	inFlight, err := h.m.FindShareAt(h.ctx, before, h.fw.workAt(h.m, before))
	if err != nil {
		h.t.Fatal(err)
	}
	evs := h.m.Events()
	mark := evs[len(evs)-1].Seq
	trigger()
	set, err := h.m.WaitEvent(h.ctx, func(e miner.Event) bool {
		return e.Seq > mark && e.Method == "mining.set_difficulty" && e.Difficulty != old
	})
	if err != nil {
		h.t.Fatalf("%s: no mining.set_difficulty: %v", what, err)
	}
	if !changed(set.Difficulty, old) {
		h.t.Fatalf("%s: difficulty %v → %v", what, old, set.Difficulty)
	}
	alias, err := h.m.WaitEvent(h.ctx, func(e miner.Event) bool { return e.Seq > set.Seq && e.Job != nil })
	if err != nil {
		h.t.Fatal(err)
	}
	if alias.Job.Clean || baseJobID(alias.Job.ID) != baseJobID(before.ID) || alias.Job.Difficulty != set.Difficulty {
		h.t.Fatalf("%s: after set_difficulty %v got job %s clean %v at %v; want job %s again under a new id",
			what, set.Difficulty, alias.Job.ID, alias.Job.Clean, alias.Job.Difficulty, before.ID)
	}
	h.t.Logf("%s: difficulty %v → %v, job %s → %s", what, old, set.Difficulty, before.ID, alias.Job.ID)
	sent := map[string]bool{}
	for _, e := range h.m.Events() {
		if e.Job != nil && e.Seq < alias.Seq {
			sent[e.Job.ID] = true
		}
	}
	h.retargeted(set.Difficulty, sent)
	h.submit(inFlight, before, what+": in flight at the old difficulty")
	// Work on the older job after the retarget, until (when the firmware
	// works it at a lower difficulty now) a share meets only that one.
	own := chain.NewTarget(chain.DifficultyToTarget(before.Difficulty))
	for n := 0; ; n++ {
		late, err := h.m.FindShareAt(h.ctx, before, h.fw.workAt(h.m, before))
		if err != nil {
			h.t.Fatal(err)
		}
		h.submit(late, before, what+": the older job, worked after the retarget")
		if late.Difficulty >= before.Difficulty || !own.Meets(&late.Hash) || n == 100 {
			break
		}
	}
	for range 2 {
		h.mine(alias.Job)
	}
}

// baseJobID is the job id without the alias suffix a retarget adds.
func baseJobID(id string) string {
	for i := len(id) - 1; i >= 0; i-- {
		if id[i] == '.' {
			return id[:i]
		}
	}
	return id
}
