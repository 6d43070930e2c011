package miner

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/stratum"
	"github.com/stratumd/stratumd/internal/stratum/stratumtest"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

func TestMineCPUMiner(t *testing.T) {
	ctx := testContext(t)
	p := startPool(t, stratumtest.Config{Configure: func(c *stratum.Config) { c.Extranonce2Size = 4 }}, hardBits, 5)
	user := stratumtest.Address(1)
	m, rec := dialRecorded(t, ctx, p.Addr, Options{User: user, Workers: []string{"w1"}})

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
	if got := m.Workers(); !slices.Equal(got, []string{user + ".w1"}) {
		t.Fatalf("authorized workers %q", got)
	}

	results, err := m.Mine(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstPool(t, p, results)
	for _, r := range results {
		if r.HasVersionBits || r.Version != chaintest.DefaultVersion {
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

	reqs := rec.requests(t)
	want := []string{"mining.subscribe", "mining.authorize"}
	if got := methods(reqs); !slices.Equal(got[:2], want) {
		t.Fatalf("handshake %q, want %q", got[:2], want)
	}
	if ua := string(reqs[0].Params); ua != `["cpuminer/2.5.1"]` {
		t.Fatalf("subscribe params %s", ua)
	}
}

func TestMineBlockOnRegtest(t *testing.T) {
	ctx := testContext(t)
	p := startPool(t, stratumtest.Config{}, 0x207fffff, 2)
	m := dial(t, ctx, p.Addr, Options{User: stratumtest.Address(2)})
	// Each block moves the server to a new tip; the next share is mined
	// on the new tip's job, not submitted stale.
	var results []Result
	for range 2 {
		rs, err := m.Mine(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, rs...)
		if _, err := m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil && e.Job.Clean && e.Job.PrevHash == rs[0].Hash }); err != nil {
			t.Fatal(err)
		}
	}
	checkAgainstPool(t, p, results)
	// On regtest the share target (2^240) is below the block target: every
	// share is a block.
	for _, r := range results {
		if !r.MeetsNetwork {
			t.Fatalf("regtest share not a block: %v", r.Hash)
		}
	}
	for _, s := range p.Shares() {
		if s.Block == nil {
			t.Fatal("pool disagrees: not a block")
		}
	}
}

func TestVersionRollingESPMiner(t *testing.T) {
	ctx := testContext(t)
	// The server rounds a difficulty below 1 to three significant digits,
	// then clamps it to the limits: the suggestion is the minimum here, so
	// it is kept exact, and the start difficulty is another.
	p := startPool(t, stratumtest.Config{
		Limits:    stratum.Limits{MinDiff: 1.0 / 32768, StartDiff: 1.0 / 16384, MaxDiff: 1.0 / 16384},
		Configure: func(c *stratum.Config) { c.VersionMask = 0x00fff000 },
	}, hardBits, 3)
	m, rec := dialRecorded(t, ctx, p.Addr, Options{
		User:              stratumtest.Address(3),
		Workers:           []string{"bitaxe"},
		UserAgent:         UserAgentBitaxe,
		VersionRolling:    true,
		SuggestDifficulty: 1.0 / 32768,
		Pipeline:          true,
	})
	if got := m.VersionMask(); got != 0x00ffe000 { // 1fffe000 ∩ 00fff000
		t.Fatalf("negotiated mask %08x", got)
	}
	want := []string{"mining.configure", "mining.subscribe", "mining.suggest_difficulty", "mining.authorize"}
	if got := methods(rec.requests(t)); !slices.Equal(got[:4], want) {
		t.Fatalf("handshake order %q, want %q", got[:4], want)
	}
	if m.Difficulty() != 1.0/32768 {
		t.Fatalf("suggested difficulty not used: %v", m.Difficulty())
	}

	results, err := m.Mine(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstPool(t, p, results)
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
}

// TestSetVersionMask: the pool narrows the mask with
// mining.set_version_mask, which the real server never sends; a scripted
// peer does, and later shares stay inside the new mask.
func TestSetVersionMask(t *testing.T) {
	ctx := testContext(t)
	en1 := []byte{0, 0, 0, 1}
	job := peerJob(t, "1", 3)
	m, p := dialPeer(t, ctx, Options{
		User: "u", Workers: []string{"bitaxe"}, UserAgent: UserAgentBitaxe, VersionRolling: true, Pipeline: true,
	}, func(p *peer) {
		req := p.expect(wire.MethodConfigure)
		p.send(wire.EncodeConfigureResult(req.ID, wire.ConfigureResult{
			AnswerVersionRolling: true, VersionRolling: true, VersionRollingMask: 0x00ffe000,
		}))
		p.handshake(en1, job)
	})
	if got := m.VersionMask(); got != 0x00ffe000 {
		t.Fatalf("negotiated mask %08x", got)
	}
	for _, r := range p.mine(ctx, m, 2, job, en1, 0x00ffe000) {
		if !r.Accepted || r.VersionBits&^0x00ffe000 != 0 {
			t.Fatalf("share before set_version_mask: accepted %v, bits %08x", r.Accepted, r.VersionBits)
		}
	}

	p.send(wire.EncodeSetVersionMask(0x0000e000))
	if _, err := m.WaitEvent(ctx, func(e Event) bool { return e.Method == "mining.set_version_mask" }); err != nil {
		t.Fatal(err)
	}
	if got := m.VersionMask(); got != 0x0000e000 {
		t.Fatalf("mask after set_version_mask %08x", got)
	}
	// The mask applies to jobs from now on.
	job2 := peerJob(t, "2", 3)
	p.send(notify(job2, false))
	if _, err := m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil && e.Job.ID == job2.ID }); err != nil {
		t.Fatal(err)
	}
	for _, r := range p.mine(ctx, m, 4, job2, en1, 0x0000e000) {
		if !r.Accepted {
			t.Fatalf("share rejected: %v", r.Error)
		}
		if r.VersionBits&^0x0000e000 != 0 {
			t.Fatalf("version bits %08x outside the narrowed mask", r.VersionBits)
		}
	}
}

func TestCleanJobs(t *testing.T) {
	ctx := testContext(t)
	p := startPool(t, stratumtest.Config{}, hardBits, 1)
	m := dial(t, ctx, p.Addr, Options{User: stratumtest.Address(4)})
	first := m.CurrentJob()

	// A refreshed job (same tip, the mempool changed) keeps the older one
	// valid.
	p.Source.AddTx(witnessTx(0x80))
	ev, err := m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil && e.Job.ID != first.ID })
	if err != nil {
		t.Fatal(err)
	}
	refreshed := ev.Job
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
	tipHash := p.Source.Advance()
	ev, err = m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil && e.Job.PrevHash == tipHash })
	if err != nil {
		t.Fatal(err)
	}
	tip := ev.Job
	jobs := m.Jobs()
	if len(jobs) != 1 || jobs[0].ID != tip.ID || !jobs[0].Clean {
		t.Fatalf("jobs after clean: %+v", jobs)
	}
	if jobs[0].PrevHash == first.PrevHash {
		t.Fatal("prevhash unchanged by a new tip")
	}
	if jobs[0].PrevHash != tipHash {
		t.Fatal("prevhash not un-swapped to internal order")
	}

	// The share found before the tip is now stale.
	r, err := m.Submit(ctx, oldShare)
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted || r.Error == nil || r.Error.Code != wire.CodeJobNotFound {
		t.Fatalf("stale share: accepted %v error %v", r.Accepted, r.Error)
	}
	results, err := m.Mine(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstPool(t, p, results)
	for _, r := range results {
		if r.JobID != tip.ID {
			t.Fatalf("mined stale job %s", r.JobID)
		}
	}
}

func TestFractionalDifficulty(t *testing.T) {
	ctx := testContext(t)
	const d1 = 0.00003 // not a power of two: the target is diff1 / d1 exactly
	const d2 = 1.0 / 20000
	p := startPool(t, stratumtest.Config{Limits: stratum.Limits{MinDiff: d1, StartDiff: d1, MaxDiff: d2}}, hardBits, 2)
	m := dial(t, ctx, p.Addr, Options{User: stratumtest.Address(5)})
	if m.Difficulty() != d1 || m.CurrentJob().Difficulty != d1 {
		t.Fatalf("difficulty %v", m.Difficulty())
	}
	results, err := m.Mine(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstPool(t, p, results)
	for _, r := range results {
		if r.Difficulty != d1 {
			t.Fatalf("mined at %v", r.Difficulty)
		}
	}

	// A retarget (asked for here with mining.suggest_difficulty) is
	// mining.set_difficulty and then the current job again under a new id;
	// the miner mines at the larger of the job's and the latest
	// difficulty, so its shares satisfy both.
	if _, rpcErr, err := m.Call(ctx, "mining.suggest_difficulty", d2); err != nil || rpcErr != nil {
		t.Fatalf("suggest_difficulty: %v %v", rpcErr, err)
	}
	diffEv, err := m.WaitEvent(ctx, func(e Event) bool { return e.Difficulty == d2 })
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.FindShare(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Difficulty != d2 || chain.HashDifficulty(s.Hash) < d2 {
		t.Fatalf("share at %v, hash difficulty %v", s.Difficulty, chain.HashDifficulty(s.Hash))
	}
	ev, err := m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil && e.Seq > diffEv.Seq })
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
	checkAgainstPool(t, p, results)
	shares := p.Shares()
	for _, s := range shares[len(shares)-2:] {
		if s.Difficulty != d2 {
			t.Fatalf("pool checked at %v", s.Difficulty)
		}
	}
}

func TestCraftedShares(t *testing.T) {
	ctx := testContext(t)
	p := startPool(t, stratumtest.Config{}, hardBits, 2)
	user := stratumtest.Address(6)
	m := dial(t, ctx, p.Addr, Options{User: user, Workers: []string{"a"}, VersionRolling: true})
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
		{"duplicate", func() Share { return good }, wire.CodeDuplicate},
		{"low difficulty", func() Share { return low }, wire.CodeLowDifficulty},
		{"bad ntime", func() Share { s := good; s.NTime += 3 * 3600; return s }, wire.CodeOther},
		{"ntime before mintime", func() Share { s := good; s.NTime = 1000; return s }, wire.CodeOther},
		{"bad version", func() Share { s := good; s.VersionBits = 0x80000000; return s }, wire.CodeOther},
		{"short extranonce2", func() Share { s := good; s.Extranonce2 = s.Extranonce2[1:]; return s }, wire.CodeOther},
		// The server's ids are at most 8 hex digits with instance id 0.
		{"unknown job", func() Share { s := good; s.JobID = "ffffffffffff"; return s }, wire.CodeJobNotFound},
		{"unauthorized worker", func() Share { s := good; s.Worker = user + ".other"; return s }, wire.CodeUnauthorized},
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
	tipHash := p.Source.Advance()
	ev, err := m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil && e.Job.PrevHash == tipHash })
	if err != nil {
		t.Fatal(err)
	}
	s := good
	s.Nonce++ // not a duplicate
	r, err := m.Submit(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if r.Error == nil || r.Error.Code != wire.CodeJobNotFound {
		t.Fatalf("stale: %v", r.Error)
	}

	// The raw escape hatch: a malformed submit gets an error reply.
	res, rpcErr, err := m.Call(ctx, "mining.submit", user+".a", ev.Job.ID, "zz", "00000000", "00000000")
	if err != nil {
		t.Fatal(err)
	}
	if rpcErr == nil || string(res) != "null" {
		t.Fatalf("bad hex: result %s error %v", res, rpcErr)
	}
	if rej := p.Server.Stats().SharesRejected; rej["low-difficulty"] != 1 || rej["duplicate"] != 1 {
		t.Fatalf("pool rejections %v", rej)
	}
}

// TestExtranonceChange: the real server never changes a live session's
// extranonce1, so a scripted peer sends mining.set_extranonce (as
// NiceHash-style pools do), and checks with chain.Job.Hash that the shares
// after it are hashed with the new extranonce1.
func TestExtranonceChange(t *testing.T) {
	ctx := testContext(t)
	oldEn1, newEn1 := []byte{0, 0, 0, 1}, []byte{0, 0, 0, 2}
	job := peerJob(t, "1", 2)
	m, p := dialPeer(t, ctx, Options{User: "u", ExtranonceSubscribe: true}, func(p *peer) {
		p.handshake(oldEn1, job)
		p.sendTrue(p.expect(wire.MethodExtranonceSubscribe))
	})
	if en1, _ := m.Extranonce1(); !bytes.Equal(en1, oldEn1) {
		t.Fatalf("extranonce1 %x", en1)
	}
	p.send(wire.EncodeSetExtranonce(newEn1, 4), notify(job, true))
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
	// The peer hashes under its new extranonce1: accepted shares used it.
	for _, r := range p.mine(ctx, m, 2, job, newEn1, 0) {
		if !r.Accepted {
			t.Fatalf("rejected after set_extranonce: %v", r.Error)
		}
	}
	if !bytes.Equal(newEn1, ev.Extranonce1) {
		t.Fatalf("pool's extranonce1 %x, miner saw %x", newEn1, ev.Extranonce1)
	}
}

func TestReconnectEvent(t *testing.T) {
	ctx := testContext(t)
	// The form naming another host, which the real server sends on no
	// event of its own: written by a scripted peer with the server's
	// encoder.
	m, server := pipeMiner(t, Options{User: "u"})
	if _, err := server.Write(wire.EncodeReconnect("127.0.0.1", 3334, 5)); err != nil {
		t.Fatal(err)
	}
	rc, err := m.WaitReconnect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if *rc != (Reconnect{Host: "127.0.0.1", Port: 3334, Wait: 5 * time.Second}) {
		t.Fatalf("reconnect %+v", rc)
	}

	// The graceful shutdown form, empty params, from the real server.
	p := startPool(t, stratumtest.Config{}, hardBits, 0)
	m2 := dial(t, ctx, p.Addr, Options{User: stratumtest.Address(7)})
	p.Stop()
	ev, err := m2.WaitEvent(ctx, func(e Event) bool { return e.Reconnect != nil && e.Reconnect.Host == "" })
	if err != nil {
		t.Fatal(err)
	}
	if string(ev.Params) != "[]" {
		t.Fatalf("params %s", ev.Params)
	}
}

func TestUnauthorized(t *testing.T) {
	ctx := testContext(t)
	// Open authorization refuses a user that is not a regtest address.
	p := startPool(t, stratumtest.Config{}, hardBits, 0)
	_, err := Dial(ctx, p.Addr, Options{User: "u", Password: "wrong"})
	var rpcErr *RPCError
	if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &rpcErr) || rpcErr.Code != wire.CodeUnauthorized {
		t.Fatalf("err %v", err)
	}
	m := dial(t, ctx, p.Addr, Options{User: stratumtest.Address(8), Password: "secret"})
	if len(m.Workers()) != 1 {
		t.Fatal("not authorized")
	}
}

func TestCloseFailsPending(t *testing.T) {
	ctx := testContext(t)
	p := startPool(t, stratumtest.Config{Limits: stratum.Limits{MinDiff: 1e6, MaxDiff: 1e6, StartDiff: 1e6}}, hardBits, 0) // no share will be found
	m := dial(t, ctx, p.Addr, Options{User: stratumtest.Address(9)})
	errc := make(chan error, 1)
	go func() {
		_, err := m.FindShare(ctx)
		errc <- err
	}()
	p.Stop()
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
