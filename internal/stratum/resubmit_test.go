package stratum

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/testutil"
)

// serialized is b's bytes, witness included.
func serialized(t *testing.T, b *wire.MsgBlock) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// waitFor polls cond every few milliseconds until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// resubmitRig is a Resubmitter on real PostgreSQL and the fake chain, on a
// fake clock; tests drive its rounds.
type resubmitRig struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	src   *chaintest.Source
	clock *testutil.Clock
	r     *Resubmitter
}

func newResubmitRig(t *testing.T) *resubmitRig {
	t.Helper()
	st, _ := pgtest.NewStore(t)
	t.Cleanup(st.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	g := &resubmitRig{t: t, ctx: ctx, st: st, src: chaintest.New(&chaincfg.RegressionNetParams), clock: newFakeClock()}
	g.src.Now = g.clock.Now
	g.r = g.newResubmitter()
	return g
}

// newResubmitter is a fresh Resubmitter (a restarted stratumd).
func (g *resubmitRig) newResubmitter() *Resubmitter {
	r, err := NewResubmitter(ResubmitterConfig{Source: g.src, Store: g.st, Now: g.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		g.t.Fatal(err)
	}
	return r
}

// solve mines a block on the fake chain's tip, paying a script made
// from seed (so that two blocks on the same tip differ).
func (g *resubmitRig) solve(seed byte) *wire.MsgBlock {
	g.t.Helper()
	tmpl, err := g.src.Template(g.ctx)
	if err != nil {
		g.t.Fatal(err)
	}
	script := append([]byte{0x00, 0x14}, bytes.Repeat([]byte{seed}, 20)...)
	job, err := chain.NewJob("r", tmpl, chain.CoinbaseConfig{PayoutScript: script, Tag: "/resubmit/",
		Extranonce1Size: 4, Extranonce2Size: 4})
	if err != nil {
		g.t.Fatal(err)
	}
	en1, en2 := []byte{0, 0, 0, 1}, []byte{0, 0, 0, seed}
	ntime := uint32(tmpl.CurTime.Unix())
	for nonce := uint32(0); ; nonce++ {
		h, _ := job.Hash(en1, en2, ntime, nonce, tmpl.Version)
		if job.Target.Meets(&h) {
			b, err := job.Block(en1, en2, ntime, nonce, tmpl.Version)
			if err != nil {
				g.t.Fatal(err)
			}
			return b
		}
	}
}

// insert stores b's row as the drainer does (status submitted), with its
// bytes unless noRaw.
func (g *resubmitRig) insert(b *wire.MsgBlock, height int32, noRaw bool) {
	g.t.Helper()
	var raw []byte
	if !noRaw {
		raw = serialized(g.t, b)
	}
	now := g.clock.Now()
	if _, err := g.st.InsertBlock(g.ctx, store.Block{Height: height, Hash: b.BlockHash().String(),
		PrevHash: b.Header.PrevBlock.String(), FoundAt: now, Username: "u", Worker: "w", Reward: 1,
		NetworkDifficulty: 1, StatusReason: "submit error: connection refused", Raw: raw,
		LastShare: store.SharePos{Time: now, Seq: uint64(height)}}); err != nil {
		g.t.Fatal(err)
	}
}

// after advances the clock by d and runs a round.
func (g *resubmitRig) after(d time.Duration) {
	g.clock.Advance(d)
	g.r.round(g.ctx)
}

// row returns b's row and its resubmission columns.
func (g *resubmitRig) row(b *wire.MsgBlock) (store.Block, int, string) {
	g.t.Helper()
	row, err := g.st.BlockByHash(g.ctx, b.BlockHash().String())
	if err != nil {
		g.t.Fatal(err)
	}
	var attempts int
	var result string
	if err := g.st.Pool().QueryRow(g.ctx, `SELECT submit_attempts, last_submit_result FROM blocks WHERE hash = $1`,
		row.Hash).Scan(&attempts, &result); err != nil {
		g.t.Fatal(err)
	}
	return row, attempts, result
}

// TestResubmitNodeDown: a block found while the node is down is handed
// over again after 1 s, then 1, 2, 4 s (doubling), each attempt counted
// in its row; when the node is back the block is accepted, seen in the
// best chain at the next check, and confirmed; then it is not followed any
// more.
func TestResubmitNodeDown(t *testing.T) {
	g := newResubmitRig(t)
	b := g.solve(1)
	g.src.SetDown(errors.New("connection refused"))
	g.insert(b, 1, false)
	g.r.Add(b, 1)
	submits := func() int { return len(g.src.Submitted()) }

	g.after(0) // the scan finds the row: already followed, not due yet
	if n := submits(); n != 0 {
		t.Fatalf("%d submissions at once", n)
	}
	wantAt := []time.Duration{time.Second, time.Second, 2 * time.Second, 4 * time.Second}
	for i, d := range wantAt {
		g.after(d - time.Millisecond)
		if n := submits(); n != i {
			t.Fatalf("attempt %d: %d submissions %v early", i+1, n, time.Millisecond)
		}
		g.after(time.Millisecond)
		if n := submits(); n != i+1 {
			t.Fatalf("attempt %d: %d submissions", i+1, n)
		}
	}
	row, attempts, result := g.row(b)
	if row.Status != store.BlockSubmitted || attempts != 4 || !strings.Contains(result, "connection refused") {
		t.Fatalf("row %s, %d attempts, %q", row.Status, attempts, result)
	}
	if st := g.r.Stats(); st.Pending != 1 || st.Resubmitted != 4 || st.Failed != 4 {
		t.Fatalf("stats %+v", st)
	}

	g.src.SetDown(nil)
	g.after(8 * time.Second)
	if tip, h := g.src.Tip(); tip != b.BlockHash() || h != 1 {
		t.Fatalf("the block did not reach the chain: tip %v at %d", tip, h)
	}
	if row, _, result := g.row(b); row.Status != store.BlockSubmitted || result != "accepted" {
		t.Fatalf("after the accepted resubmission: %s, %q", row.Status, result)
	}
	g.after(time.Second) // accepted: looked for in the best chain a second later
	row, attempts, _ = g.row(b)
	if row.Status != store.BlockConfirmed || attempts != 5 || !strings.HasPrefix(row.StatusReason, "in the best chain of") {
		t.Fatalf("after landing: %+v, %d attempts", row, attempts)
	}
	if st := g.r.Stats(); st.Pending != 0 || st.OnChain != 1 || st.Resubmitted != 5 {
		t.Fatalf("stats %+v", st)
	}
	n := submits()
	g.after(time.Hour)
	if submits() != n {
		t.Fatal("a confirmed block was submitted again")
	}
}

// TestResubmitGiveUp: a block that lost its height to another block (the
// fake node, like Core, keeps it on a side chain and answers duplicate
// when it comes again) is handed over with backoff until the node's best
// chain is 6 blocks past its height; then it is orphaned with the reason.
func TestResubmitGiveUp(t *testing.T) {
	g := newResubmitRig(t)
	ours := g.solve(1)
	g.src.Advance() // another block at height 1
	g.insert(ours, 1, false)
	g.after(0) // found by the scan: due at once
	if sub := g.src.Submitted(); len(sub) != 1 || sub[0].BlockHash() != ours.BlockHash() {
		t.Fatalf("submitted %d", len(sub))
	}
	if _, _, result := g.row(ours); result != "inconclusive: inconclusive-not-best-prevblk" {
		t.Fatalf("first answer %q", result)
	}
	for range 4 {
		g.src.Advance() // the chain grows to height 5
	}
	g.after(time.Minute)
	if _, _, result := g.row(ours); result != "duplicate: duplicate" {
		t.Fatalf("second answer %q", result)
	}
	if row, _, _ := g.row(ours); row.Status != store.BlockSubmitted {
		t.Fatalf("given up at height 5: %s", row.Status)
	}
	g.src.Advance() // height 6: five past
	g.after(time.Hour)
	if row, _, _ := g.row(ours); row.Status != store.BlockSubmitted {
		t.Fatalf("given up at height 6: %s", row.Status)
	}
	g.src.Advance() // height 7: six past
	n := len(g.src.Submitted())
	g.after(time.Hour)
	row, _, _ := g.row(ours)
	if row.Status != store.BlockOrphaned || row.StatusReason != "chain moved 6 blocks past height 1 without it" {
		t.Fatalf("row %s %q", row.Status, row.StatusReason)
	}
	if len(g.src.Submitted()) != n {
		t.Fatal("submitted when given up")
	}
	if st := g.r.Stats(); st.Pending != 0 || st.Orphaned != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestResubmitAcrossRestart: blocks left submitted by an earlier process
// are followed from the table: one with its bytes is read back and
// handed over; one without bytes (recorded before stratumd kept them) is
// only watched, and confirmed once on the chain; a rejected one is marked
// rejected.
func TestResubmitAcrossRestart(t *testing.T) {
	g := newResubmitRig(t)
	lost := g.solve(1)
	g.insert(lost, 1, false)
	g.after(0)
	if sub := g.src.Submitted(); len(sub) != 1 || sub[0].BlockHash() != lost.BlockHash() || len(sub[0].Transactions) != 1 {
		t.Fatalf("submitted %+v", sub)
	}
	g.after(time.Second)
	if row, _, _ := g.row(lost); row.Status != store.BlockConfirmed {
		t.Fatalf("lost block: %s", row.Status)
	}

	old := g.solve(2)
	if res, _ := g.src.SubmitBlock(g.ctx, old); res.Status != chain.Accepted {
		t.Fatalf("old block: %+v", res)
	}
	g.insert(old, 2, true)
	bad := g.solve(3)
	g.insert(bad, 3, false)
	g.src.SetSubmitFunc(func(context.Context, *wire.MsgBlock) (chain.SubmitResult, error) {
		return chain.SubmitResult{Status: chain.Rejected, Reason: "bad-txnmrklroot"}, nil
	})
	n := len(g.src.Submitted())
	g.r = g.newResubmitter() // a restart
	g.after(0)
	if row, _, _ := g.row(old); row.Status != store.BlockConfirmed {
		t.Fatalf("old block: %s", row.Status)
	}
	if row, _, _ := g.row(bad); row.Status != store.BlockRejected || row.StatusReason != "bad-txnmrklroot" {
		t.Fatalf("rejected block: %s %q", row.Status, row.StatusReason)
	}
	if sub := g.src.Submitted(); len(sub) != n+1 || sub[n].BlockHash() != bad.BlockHash() {
		t.Fatalf("%d submissions, want only the third block's", len(sub)-n)
	}
	if st := g.r.Stats(); st.Pending != 0 || st.OnChain != 1 || st.Rejected != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestResubmitRowLater: a block the session hands over before its row is
// stored (the share still in the spool) is not submitted again once on
// the chain; it is confirmed when its row appears.
func TestResubmitRowLater(t *testing.T) {
	g := newResubmitRig(t)
	b := g.solve(1)
	g.src.SetDown(errors.New("connection refused"))
	g.r.Add(b, 1)
	g.src.SetDown(nil)
	g.after(time.Second) // accepted, no row to record it in
	g.after(time.Second) // in the chain, no row to confirm
	n := len(g.src.Submitted())
	g.after(2 * time.Second)
	if len(g.src.Submitted()) != n || n != 1 { // the accepted one only
		t.Fatalf("%d submissions", len(g.src.Submitted()))
	}
	g.insert(b, 1, false)
	g.after(time.Minute)
	if row, _, _ := g.row(b); row.Status != store.BlockConfirmed {
		t.Fatalf("row %s", row.Status)
	}
	if st := g.r.Stats(); st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestResubmitRun: Run on the real clock lands a block added while the
// node was down once it is back, and stops with its context.
func TestResubmitRun(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	defer st.Close()
	src := chaintest.New(&chaincfg.RegressionNetParams)
	g := &resubmitRig{t: t, ctx: context.Background(), st: st, src: src, clock: newFakeClock()}
	src.Now = g.clock.Now
	b := g.solve(1)
	g.insert(b, 1, false)
	src.SetDown(errors.New("connection refused"))
	r, err := NewResubmitter(ResubmitterConfig{Source: src, Store: st, MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 40 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.Run(ctx); err != nil {
			t.Error(err)
		}
	})
	r.Add(b, 1)
	waitFor(t, ctx, "failed resubmissions", func() bool { return r.Stats().Failed >= 3 })
	src.SetDown(nil)
	waitFor(t, ctx, "the block on the chain", func() bool { return r.Stats().OnChain == 1 })
	cancel()
	wg.Wait()
	if row, err := st.BlockByHash(context.Background(), b.BlockHash().String()); err != nil || row.Status != store.BlockConfirmed {
		t.Fatalf("row %+v, %v", row, err)
	}
	if _, err := NewResubmitter(ResubmitterConfig{Store: st}); err == nil {
		t.Fatal("a resubmitter without a source")
	}
}

// TestResubmitStored: a block the drainer stores (a share replayed from
// the spool after a restart) is followed at once, without waiting for the
// next scan of the table; a rejected one is not.
func TestResubmitStored(t *testing.T) {
	g := newResubmitRig(t)
	g.after(0) // the start's scan: nothing yet; the next one is 30 s away
	b := g.solve(1)
	g.insert(b, 1, false)
	row, _, _ := g.row(b)
	rejected := row
	rejected.Hash, rejected.Status = strings.Repeat("ab", 32), store.BlockRejected
	g.r.Stored(g.ctx, []store.Block{row, rejected})
	if st := g.r.Stats(); st.Pending != 1 {
		t.Fatalf("stats %+v", st)
	}
	g.after(time.Millisecond)
	if sub := g.src.Submitted(); len(sub) != 1 || sub[0].BlockHash() != b.BlockHash() {
		t.Fatalf("submitted %d", len(sub))
	}
	g.after(time.Second)
	if row, _, _ := g.row(b); row.Status != store.BlockConfirmed {
		t.Fatalf("row %s", row.Status)
	}
}

// TestResubmitBudget: at most maxResubmitsPerSecond blocks are handed over
// in a second, lowest heights first; the others go a second later.
func TestResubmitBudget(t *testing.T) {
	g := newResubmitRig(t)
	const n = maxResubmitsPerSecond + 20
	var blocks []*wire.MsgBlock
	for i := range n {
		blocks = append(blocks, g.solve(byte(i+1)))
	}
	g.after(0)
	g.src.SetDown(errors.New("connection refused"))
	for _, b := range blocks {
		g.r.Add(b, 1)
	}
	g.after(time.Second)
	if got := len(g.src.Submitted()); got != maxResubmitsPerSecond {
		t.Fatalf("%d submissions in one round", got)
	}
	g.after(100 * time.Millisecond) // 10 more allowed, none due
	if got := len(g.src.Submitted()); got != maxResubmitsPerSecond {
		t.Fatalf("%d submissions a tenth of a second later", got)
	}
	g.after(900 * time.Millisecond)
	seen := map[[32]byte]bool{}
	for _, b := range g.src.Submitted() {
		seen[b.BlockHash()] = true
	}
	if len(seen) != n {
		t.Fatalf("%d of %d blocks handed over after two rounds", len(seen), n)
	}
}
