package miner

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/chain"
)

// checkAgainstPool asserts that every result was accepted and that the
// pool's own chain.Job.Hash gives the hash the miner computed.
func checkAgainstPool(t *testing.T, p *FakePool, m *Miner, results []Result) {
	t.Helper()
	en1, _ := m.Extranonce1()
	for i, r := range results {
		if !r.Accepted {
			t.Fatalf("share %d rejected: %v", i, r.Error)
		}
		job := p.Job(r.JobID)
		if job == nil {
			t.Fatalf("share %d: pool has no job %q", i, r.JobID)
		}
		h, hdr := job.Hash(en1, r.Extranonce2, r.NTime, r.Nonce, int32(r.Version))
		if h != r.Hash {
			t.Fatalf("share %d: miner hash %v, chain.Job.Hash %v", i, r.Hash, h)
		}
		if hdr.BlockHash() != h {
			t.Fatalf("share %d: header hash mismatch", i)
		}
		if d := chain.HashDifficulty(h); d < r.Difficulty {
			t.Fatalf("share %d: hash difficulty %g below share difficulty %g", i, d, r.Difficulty)
		}
		if r.MeetsNetwork != job.Target.Meets(&h) {
			t.Fatalf("share %d: MeetsNetwork %v disagrees with the job target", i, r.MeetsNetwork)
		}
	}
	accepted := p.Accepted()
	if len(accepted) < len(results) {
		t.Fatalf("pool accepted %d shares, miner saw %d accepted", len(accepted), len(results))
	}
}

func TestMineCPUMiner(t *testing.T) {
	ctx := testContext(t)
	p, _ := newPool(t, PoolConfig{}, hardBits, 5)
	m := dial(t, ctx, p, Options{User: "bcrt1qminer", Workers: []string{"w1"}})

	if en1, size := m.Extranonce1(); len(en1) != 4 || size != 4 {
		t.Fatalf("extranonce1 %x size %d", en1, size)
	}
	if m.Difficulty() != 1.0/65536 {
		t.Fatalf("difficulty %v", m.Difficulty())
	}
	job := m.CurrentJob()
	if job == nil || len(job.MerkleBranch) != 3 { // coinbase + 5 txs: 3 levels
		t.Fatalf("job %+v", job)
	}
	if got := m.Workers(); !slices.Equal(got, []string{"bcrt1qminer.w1"}) {
		t.Fatalf("authorized workers %q", got)
	}

	results, err := m.Mine(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstPool(t, p, m, results)
	for _, r := range results {
		if r.HasVersionBits || r.Version != uint32(p.Job(r.JobID).Template.Version) {
			t.Fatalf("cpuminer rolled the version: %+v", r.Share)
		}
		if r.MeetsNetwork {
			t.Fatal("share meets difficulty-1 network target")
		}
		if r.Latency <= 0 {
			t.Fatalf("latency %v", r.Latency)
		}
	}
	// Every share got its own extranonce2.
	seen := map[string]bool{}
	for _, r := range results {
		k := string(r.Extranonce2)
		if seen[k] {
			t.Fatalf("extranonce2 %x reused", r.Extranonce2)
		}
		seen[k] = true
	}

	var methods []string
	for _, r := range p.Requests() {
		methods = append(methods, r.Method)
	}
	want := []string{"mining.subscribe", "mining.authorize"}
	if !slices.Equal(methods[:2], want) {
		t.Fatalf("handshake %q, want %q", methods[:2], want)
	}
	if ua := string(p.Requests()[0].Params); ua != `["cpuminer/2.5.1"]` {
		t.Fatalf("subscribe params %s", ua)
	}
}

func TestMineBlockOnRegtest(t *testing.T) {
	ctx := testContext(t)
	p, _ := newPool(t, PoolConfig{}, 0x207fffff, 2)
	m := dial(t, ctx, p, Options{User: "u"})
	results, err := m.Mine(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstPool(t, p, m, results)
	// On regtest the share target (2^240) is below the block target: every
	// share is a block.
	for _, r := range results {
		if !r.MeetsNetwork {
			t.Fatalf("regtest share not a block: %v", r.Hash)
		}
	}
	for _, s := range p.Accepted() {
		if !s.Block {
			t.Fatal("pool disagrees: not a block")
		}
	}
}

func TestVersionRollingESPMiner(t *testing.T) {
	ctx := testContext(t)
	p, _ := newPool(t, PoolConfig{VersionMask: 0x00fff000}, hardBits, 3)
	m := dial(t, ctx, p, Options{
		User:              "bcrt1qbitaxe",
		Workers:           []string{"bitaxe"},
		UserAgent:         UserAgentBitaxe,
		VersionRolling:    true,
		SuggestDifficulty: 1.0 / 32768,
		Pipeline:          true,
	})
	if got := m.VersionMask(); got != 0x00ffe000 { // 1fffe000 ∩ 00fff000
		t.Fatalf("negotiated mask %08x", got)
	}
	var methods []string
	for _, r := range p.Requests() {
		methods = append(methods, r.Method)
	}
	want := []string{"mining.configure", "mining.subscribe", "mining.suggest_difficulty", "mining.authorize"}
	if !slices.Equal(methods[:4], want) {
		t.Fatalf("handshake order %q, want %q", methods[:4], want)
	}
	if m.Difficulty() != 1.0/32768 {
		t.Fatalf("suggested difficulty not used: %v", m.Difficulty())
	}

	results, err := m.Mine(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstPool(t, p, m, results)
	rolled := 0
	for _, r := range results {
		if !r.HasVersionBits {
			t.Fatal("no version bits sent")
		}
		if r.VersionBits&^0x00ffe000 != 0 {
			t.Fatalf("version bits %08x outside the mask", r.VersionBits)
		}
		if r.Version != RolledVersion(0x20000000, 0x00ffe000, r.VersionBits) {
			t.Fatalf("version %08x from bits %08x", r.Version, r.VersionBits)
		}
		if r.VersionBits != 0 {
			rolled++
		}
	}
	if rolled == 0 {
		t.Fatal("no share rolled any version bit")
	}

	// The pool narrows the mask: later shares stay inside the new one.
	p.SetVersionMask(0x0000e000)
	if _, err := m.WaitEvent(ctx, func(e Event) bool { return e.Method == "mining.set_version_mask" }); err != nil {
		t.Fatal(err)
	}
	if got := m.VersionMask(); got != 0x0000e000 {
		t.Fatalf("mask after set_version_mask %08x", got)
	}
	// The mask applies to jobs from now on.
	job, err := p.NewJob(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil && e.Job.ID == job.ID }); err != nil {
		t.Fatal(err)
	}
	results, err = m.Mine(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstPool(t, p, m, results)
	for _, r := range results {
		if r.VersionBits&^0x0000e000 != 0 {
			t.Fatalf("version bits %08x outside the narrowed mask", r.VersionBits)
		}
	}
}

func TestCleanJobs(t *testing.T) {
	ctx := testContext(t)
	p, src := newPool(t, PoolConfig{}, hardBits, 1)
	m := dial(t, ctx, p, Options{User: "u"})
	first := m.CurrentJob()

	// A refreshed job (same tip) keeps the older one valid.
	refreshed, err := p.NewJob(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil && e.Job.ID == refreshed.ID }); err != nil {
		t.Fatal(err)
	}
	if jobs := m.Jobs(); len(jobs) != 2 || jobs[0].ID != first.ID || jobs[1].Clean {
		t.Fatalf("jobs after refresh: %d", len(jobs))
	}
	oldShare, err := m.FindShare(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if oldShare.JobID != refreshed.ID {
		t.Fatalf("mined job %s, want the newest %s", oldShare.JobID, refreshed.ID)
	}

	// A new tip: clean_jobs drops everything older.
	src.Advance()
	tip, err := p.NewJob(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil && e.Job.ID == tip.ID }); err != nil {
		t.Fatal(err)
	}
	jobs := m.Jobs()
	if len(jobs) != 1 || jobs[0].ID != tip.ID || !jobs[0].Clean {
		t.Fatalf("jobs after clean: %+v", jobs)
	}
	if jobs[0].PrevHash == first.PrevHash {
		t.Fatal("prevhash unchanged by a new tip")
	}
	if jobs[0].PrevHash != tip.Template.PrevHash {
		t.Fatal("prevhash not un-swapped to internal order")
	}

	// The share found before the tip is now stale.
	r, err := m.Submit(ctx, oldShare)
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted || r.Error == nil || r.Error.Code != CodeJobNotFound {
		t.Fatalf("stale share: accepted %v error %v", r.Accepted, r.Error)
	}
	results, err := m.Mine(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstPool(t, p, m, results)
	for _, r := range results {
		if r.JobID != tip.ID {
			t.Fatalf("mined stale job %s", r.JobID)
		}
	}
}

func TestFractionalDifficulty(t *testing.T) {
	ctx := testContext(t)
	const d1 = 0.00003 // not a power of two: the target is diff1 / d1 exactly
	p, _ := newPool(t, PoolConfig{Difficulty: d1}, hardBits, 2)
	m := dial(t, ctx, p, Options{User: "u"})
	if m.Difficulty() != d1 || m.CurrentJob().Difficulty != d1 {
		t.Fatalf("difficulty %v", m.Difficulty())
	}
	results, err := m.Mine(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstPool(t, p, m, results)
	for _, r := range results {
		if r.Difficulty != d1 {
			t.Fatalf("mined at %v", r.Difficulty)
		}
	}

	// A retarget applies to the next job; the miner mines at the larger of
	// the job's and the latest difficulty, so its shares satisfy both.
	const d2 = 1.0 / 20000
	p.SetDifficulty(d2)
	if _, err := m.WaitEvent(ctx, func(e Event) bool { return e.Difficulty == d2 }); err != nil {
		t.Fatal(err)
	}
	s, err := m.FindShare(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Difficulty != d2 || chain.HashDifficulty(s.Hash) < d2 {
		t.Fatalf("share at %v, hash difficulty %v", s.Difficulty, chain.HashDifficulty(s.Hash))
	}
	job, err := p.NewJob(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil && e.Job.ID == job.ID })
	if err != nil {
		t.Fatal(err)
	}
	if ev.Job.Difficulty != d2 {
		t.Fatalf("new job at %v", ev.Job.Difficulty)
	}
	results, err = m.Mine(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstPool(t, p, m, results)
	for _, s := range p.Accepted()[len(p.Accepted())-2:] {
		if s.Difficulty != d2 {
			t.Fatalf("pool checked at %v", s.Difficulty)
		}
	}
}

func TestCraftedShares(t *testing.T) {
	ctx := testContext(t)
	p, src := newPool(t, PoolConfig{}, hardBits, 2)
	m := dial(t, ctx, p, Options{User: "u", Workers: []string{"a"}, VersionRolling: true})
	good, err := m.FindShare(ctx)
	if err != nil {
		t.Fatal(err)
	}
	job := m.CurrentJob()
	target := job.ShareTarget()

	low := good
	for low.Nonce = good.Nonce + 1; ; low.Nonce++ {
		h := job.Hash(low.Extranonce2, low.NTime, low.Nonce, low.Version)
		if !target.Meets(&h) {
			break
		}
	}
	cases := []struct {
		name  string
		share func() Share
		code  int
	}{
		{"good", func() Share { return good }, 0},
		{"duplicate", func() Share { return good }, CodeDuplicate},
		{"low difficulty", func() Share { return low }, CodeLowDifficulty},
		{"bad ntime", func() Share { s := good; s.NTime += 3 * 3600; return s }, CodeOther},
		{"ntime before mintime", func() Share { s := good; s.NTime = 1000; return s }, CodeOther},
		{"bad version", func() Share { s := good; s.VersionBits = 0x80000000; return s }, CodeOther},
		{"short extranonce2", func() Share { s := good; s.Extranonce2 = s.Extranonce2[1:]; return s }, CodeOther},
		{"unknown job", func() Share { s := good; s.JobID = "ffff"; return s }, CodeJobNotFound},
		{"unauthorized worker", func() Share { s := good; s.Worker = "u.other"; return s }, CodeUnauthorized},
	}
	for _, tc := range cases {
		r, err := m.Submit(ctx, tc.share())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		code := 0
		if r.Error != nil {
			code = r.Error.Code
		}
		if code != tc.code || r.Accepted != (tc.code == 0) {
			t.Errorf("%s: accepted %v error %v, want code %d", tc.name, r.Accepted, r.Error, tc.code)
		}
	}

	// Stale after a new tip.
	src.Advance()
	tip, err := p.NewJob(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil && e.Job.ID == tip.ID }); err != nil {
		t.Fatal(err)
	}
	s := good
	s.Nonce++ // not a duplicate
	r, err := m.Submit(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if r.Error == nil || r.Error.Code != CodeJobNotFound {
		t.Fatalf("stale: %v", r.Error)
	}

	// The raw escape hatch: a malformed submit gets an error reply.
	res, rpcErr, err := m.Call(ctx, "mining.submit", "u.a", tip.ID, "zz", "00000000", "00000000")
	if err != nil {
		t.Fatal(err)
	}
	if rpcErr == nil || string(res) != "null" {
		t.Fatalf("bad hex: result %s error %v", res, rpcErr)
	}
	if p.Rejected()[CodeLowDifficulty] != 1 || p.Rejected()[CodeDuplicate] != 1 {
		t.Fatalf("pool rejections %v", p.Rejected())
	}
}

func TestExtranonceChange(t *testing.T) {
	ctx := testContext(t)
	p, _ := newPool(t, PoolConfig{}, hardBits, 2)
	m := dial(t, ctx, p, Options{User: "u", ExtranonceSubscribe: true})
	oldEn1, _ := m.Extranonce1()
	// The extranonce.subscribe reply arrives after the first notify; wait
	// for the pool to have seen it before rotating.
	if _, _, err := m.Call(ctx, "mining.extranonce.subscribe"); err != nil {
		t.Fatal(err)
	}
	p.RotateExtranonce()
	ev, err := m.WaitEvent(ctx, func(e Event) bool { return e.Method == "mining.set_extranonce" })
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ev.Extranonce1, oldEn1) || ev.Extranonce2Size != 4 {
		t.Fatalf("set_extranonce %x/%d", ev.Extranonce1, ev.Extranonce2Size)
	}
	if _, err := m.WaitEvent(ctx, func(e Event) bool { return e.Seq > ev.Seq && e.Job != nil }); err != nil {
		t.Fatal(err)
	}
	if job := m.CurrentJob(); !bytes.Equal(job.Extranonce1, ev.Extranonce1) {
		t.Fatalf("job extranonce1 %x", job.Extranonce1)
	}
	results, err := m.Mine(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.Accepted {
			t.Fatalf("rejected after set_extranonce: %v", r.Error)
		}
	}
	acc := p.Accepted()
	if got := acc[len(acc)-1].Extranonce1; !bytes.Equal(got, ev.Extranonce1) {
		t.Fatalf("pool saw extranonce1 %x", got)
	}
}

func TestReconnectEvent(t *testing.T) {
	ctx := testContext(t)
	p, _ := newPool(t, PoolConfig{}, hardBits, 0)
	m := dial(t, ctx, p, Options{User: "u"})
	p.Reconnect("127.0.0.1", 3334, 5)
	rc, err := m.WaitReconnect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if *rc != (Reconnect{Host: "127.0.0.1", Port: 3334, Wait: 5 * time.Second}) {
		t.Fatalf("reconnect %+v", rc)
	}
	p.Reconnect("", 0, 0) // graceful shutdown form: empty params
	ev, err := m.WaitEvent(ctx, func(e Event) bool { return e.Reconnect != nil && e.Reconnect.Host == "" })
	if err != nil {
		t.Fatal(err)
	}
	if string(ev.Params) != "[]" {
		t.Fatalf("params %s", ev.Params)
	}
}

func TestUnauthorized(t *testing.T) {
	ctx := testContext(t)
	p, _ := newPool(t, PoolConfig{Authorize: func(user, pass string) bool { return pass == "secret" }}, hardBits, 0)
	_, err := Dial(ctx, p.Addr(), Options{User: "u", Password: "wrong"})
	var rpcErr *RPCError
	if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &rpcErr) || rpcErr.Code != CodeUnauthorized {
		t.Fatalf("err %v", err)
	}
	m := dial(t, ctx, p, Options{User: "u", Password: "secret"})
	if len(m.Workers()) != 1 {
		t.Fatal("not authorized")
	}
}

func TestCloseFailsPending(t *testing.T) {
	ctx := testContext(t)
	p, _ := newPool(t, PoolConfig{Difficulty: 1e6}, hardBits, 0) // no share will be found
	m := dial(t, ctx, p, Options{User: "u"})
	errc := make(chan error, 1)
	go func() {
		_, err := m.FindShare(ctx)
		errc <- err
	}()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	<-m.Done()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("FindShare after the pool closed: %v", err)
	}
	if _, _, err := m.Call(ctx, "mining.subscribe"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Call after close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}
