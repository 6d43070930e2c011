package stratum

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	btcwire "github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

// hardBits makes blocks rare (network difficulty 2^-12) so that shares at
// 2^-20 are not blocks.
const hardBits = 0x1e0fffff

func TestShareRejections(t *testing.T) {
	h := startHarness(t, harnessOpts{bits: hardBits})
	c := h.dial()
	c.call(wire.MethodConfigure, []string{"version-rolling"}, map[string]any{"version-rolling.mask": "00ffe000"})
	worker := regtestAddress(t, 3) + ".rig"
	c.handshake(worker)
	e := h.srv.currentJob()
	diff := c.diff
	good := h.mine(c, e, diff, false, 0, 0)
	submit := func(args ...any) *msg { return c.call(wire.MethodSubmit, args...) }

	cases := []struct {
		name string
		args []any
		code int
	}{
		{"unknown job", submitArgs(worker, "ffff", good.en2, good.ntime, good.nonce), wire.CodeJobNotFound},
		{"bad alias", submitArgs(worker, e.job.ID+".7", good.en2, good.ntime, good.nonce), wire.CodeJobNotFound},
		{"other worker", submitArgs(regtestAddress(t, 3)+".other", e.job.ID, good.en2, good.ntime, good.nonce), wire.CodeUnauthorized},
		{"short en2", submitArgs(worker, e.job.ID, good.en2[:4], good.ntime, good.nonce), wire.CodeOther},
		{"ntime before mintime", submitArgs(worker, e.job.ID, good.en2, e.minTime-1, good.nonce), wire.CodeOther},
		{"ntime 2h ahead", submitArgs(worker, e.job.ID, good.en2, uint32(h.clock.Now().Add(2*time.Hour+time.Second).Unix()), good.nonce), wire.CodeOther},
		{"version bits outside mask", submitArgs(worker, e.job.ID, good.en2, good.ntime, good.nonce, 0x1f000000), wire.CodeOther},
		{"low difficulty", func() []any {
			s := h.lowNonce(c, e, diff)
			return submitArgs(worker, e.job.ID, s.en2, s.ntime, s.nonce)
		}(), wire.CodeLowDifficulty},
		{"accepted", submitArgs(worker, e.job.ID, good.en2, good.ntime, good.nonce), 0},
		{"duplicate", submitArgs(worker, e.job.ID, good.en2, good.ntime, good.nonce), wire.CodeDuplicate},
		{"bad params", []any{worker, e.job.ID, "zz", "0", "0"}, wire.CodeOther},
	}
	for _, tc := range cases {
		r := submit(tc.args...)
		if got := r.errCode(); got != tc.code {
			t.Errorf("%s: code %d, want %d: %s", tc.name, got, tc.code, r.raw)
		}
		if tc.code == 0 && string(r.Result) != "true" {
			t.Errorf("%s: %s", tc.name, r.raw)
		}
	}
	// Version rolling within the mask is accepted and hashed with the
	// rolled version.
	rolled := h.mine(c, e, diff, false, 0x00ab6000, 0x00ffe000)
	if r := submit(submitArgs(worker, e.job.ID, rolled.en2, rolled.ntime, rolled.nonce, 0x00ab6000)...); string(r.Result) != "true" {
		t.Errorf("rolled share: %s", r.raw)
	}

	shares := h.shares.list()
	if len(shares) != 2 {
		t.Fatalf("%d shares recorded, want 2", len(shares))
	}
	s := shares[0]
	if s.Username != regtestAddress(t, 3) || s.Worker != "rig" || s.JobID != e.job.ID || s.Height != 1 ||
		s.Difficulty != diff || s.ShareDifficulty < diff || s.InstanceID != 1 || s.RemoteAddr != "127.0.0.1" ||
		!s.Time.Equal(h.clock.Now()) {
		t.Errorf("share %+v", s)
	}
	st := h.srv.Stats()
	want := map[string]uint64{"stale": 2, "unauthorized": 1, "extranonce2-size": 1, "ntime": 2,
		"version-bits": 1, "low-difficulty": 1, "duplicate": 1, "invalid-params": 1}
	for k, v := range want {
		if st.SharesRejected[k] != v {
			t.Errorf("rejected[%s] = %d, want %d", k, st.SharesRejected[k], v)
		}
	}
	if st.SharesAccepted != 2 {
		t.Errorf("accepted %d", st.SharesAccepted)
	}

	// A new tip makes the old job stale.
	h.src.Advance()
	h.waitJob()
	c.expect(wire.MethodNotify)
	if !c.clean {
		t.Error("new tip notify not clean")
	}
	other := h.mine(c, e, diff, false, 0, 0)
	other.nonce++ // any nonce: the job is checked first
	if r := submit(submitArgs(worker, e.job.ID, other.en2, other.ntime, other.nonce)...); r.errCode() != wire.CodeJobNotFound {
		t.Errorf("old tip: %s", r.raw)
	}
}

// Version bits rolled without mining.configure are judged against the
// pool's mask: inside it they are accepted and counted, outside refused.
func TestVersionBitsWithoutNegotiation(t *testing.T) {
	h := startHarness(t, harnessOpts{bits: hardBits})
	c := h.dial()
	w := regtestAddress(t, 3) + ".rig"
	c.handshake(w)
	e := h.srv.currentJob()
	s := h.mine(c, e, c.diff, false, 0x00002000, h.srv.cfg.VersionMask)
	if r := c.call(wire.MethodSubmit, submitArgs(w, e.job.ID, s.en2, s.ntime, s.nonce, 0x00002000)...); string(r.Result) != "true" {
		t.Errorf("rolled bits inside the pool mask without configure: %s", r.raw)
	}
	if n := h.srv.Stats().VersionBitsUnnegotiated; n != 1 {
		t.Errorf("VersionBitsUnnegotiated = %d, want 1", n)
	}
	if r := c.call(wire.MethodSubmit, submitArgs(w, e.job.ID, s.en2, s.ntime, s.nonce, 0xe0000000)...); r.errCode() != wire.CodeOther {
		t.Errorf("bits outside the pool mask: %s", r.raw)
	}
	if r := c.call(wire.MethodSubmit, submitArgs(w, e.job.ID, s.en2, s.ntime, s.nonce, 0)...); r.errCode() != wire.CodeLowDifficulty && string(r.Result) != "true" {
		t.Errorf("zero version bits: %s", r.raw)
	}
	if n := h.srv.Stats().VersionBitsUnnegotiated; n != 1 {
		t.Errorf("VersionBitsUnnegotiated = %d after zero bits, want 1", n)
	}
}

// After a retarget, shares for the job ids sent before it are accepted and
// credited at the old difficulty; the alias id carries the new one.
func TestRetargetKeepsOldDifficulty(t *testing.T) {
	h := startHarness(t, harnessOpts{bits: hardBits})
	c := h.dial()
	w := regtestAddress(t, 4) + ".rig"
	c.handshake(w)
	e := h.srv.currentJob()
	oldDiff, oldID := c.diff, c.jobID
	old := h.mine(c, e, oldDiff, false, 0, 0)

	newDiff := oldDiff * 4
	c.retarget(newDiff)
	if c.diff == oldDiff || c.jobID == oldID {
		t.Fatalf("no retarget: diff %v job %s", c.diff, c.jobID)
	}
	// In flight at the old difficulty: accepted, credited at the old one.
	if r := c.call(wire.MethodSubmit, submitArgs(w, oldID, old.en2, old.ntime, old.nonce)...); string(r.Result) != "true" {
		t.Fatalf("in-flight share: %s", r.raw)
	}
	// The same share under the alias is a duplicate (same job).
	if r := c.call(wire.MethodSubmit, submitArgs(w, c.jobID, old.en2, old.ntime, old.nonce)...); r.errCode() != wire.CodeDuplicate && r.errCode() != wire.CodeLowDifficulty {
		t.Errorf("same share under alias: %s", r.raw)
	}
	// A share under the alias is judged and credited at the new difficulty.
	oldT := chain.NewTarget(chain.DifficultyToTarget(oldDiff))
	newT := chain.NewTarget(chain.DifficultyToTarget(c.diff))
	low := solution{en2: old.en2, ntime: old.ntime}
	for ; ; low.nonce++ {
		hash, _ := e.job.Hash(c.en1, low.en2, low.ntime, low.nonce, int32(e.version))
		if low.nonce != old.nonce && oldT.Meets(&hash) && !newT.Meets(&hash) {
			break
		}
	}
	if r := c.call(wire.MethodSubmit, submitArgs(w, c.jobID, low.en2, low.ntime, low.nonce)...); r.errCode() != wire.CodeLowDifficulty {
		t.Errorf("old-difficulty share under the new id: %s", r.raw)
	}
	fresh := h.mine(c, e, c.diff, false, 0, 0)
	if r := c.call(wire.MethodSubmit, submitArgs(w, c.jobID, fresh.en2, fresh.ntime, fresh.nonce)...); string(r.Result) != "true" {
		t.Fatalf("new-difficulty share: %s", r.raw)
	}
	shares := h.shares.list()
	if len(shares) != 2 || shares[0].Difficulty != oldDiff || shares[1].Difficulty != c.diff {
		t.Errorf("credited %v and %v, want %v and %v", shares[0].Difficulty, shares[1].Difficulty, oldDiff, c.diff)
	}
	if shares[1].JobID != e.job.ID {
		t.Errorf("alias share recorded under job %q, want %q", shares[1].JobID, e.job.ID)
	}
}

// lowNonceFrom is lowNonce starting at nonce.
func (h *harness) lowNonceFrom(c *client, e *jobEntry, diff float64, nonce uint32) solution {
	share := chain.NewTarget(chain.DifficultyToTarget(diff))
	en2 := make([]byte, c.en2n)
	ntime := uint32(e.job.Template.CurTime.Unix())
	for ; ; nonce++ {
		hash, _ := e.job.Hash(c.en1, en2, ntime, nonce, int32(e.version))
		if !share.Meets(&hash) {
			return solution{en2: en2, ntime: ntime, nonce: nonce, version: e.version}
		}
	}
}

func TestShareNotRecorded(t *testing.T) {
	h := startHarness(t, harnessOpts{bits: hardBits})
	c := h.dial()
	w := regtestAddress(t, 5) + ".rig"
	c.handshake(w)
	e := h.srv.currentJob()
	s := h.mine(c, e, c.diff, false, 0, 0)
	h.shares.setFail(errors.New("disk full"))
	r := c.call(wire.MethodSubmit, submitArgs(w, e.job.ID, s.en2, s.ntime, s.nonce)...)
	if r.errCode() != wire.CodeOther || string(r.Result) == "true" {
		t.Fatalf("unrecorded share: %s", r.raw)
	}
	h.shares.setFail(nil)
	// Not counted as seen: once the disk is back, it is accepted.
	if r := c.call(wire.MethodSubmit, submitArgs(w, e.job.ID, s.en2, s.ntime, s.nonce)...); string(r.Result) != "true" {
		t.Errorf("retry: %s", r.raw)
	}
	if st := h.srv.Stats(); st.SharesRejected["not-recorded"] != 1 || st.SharesAccepted != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestInvalidSubmitsBan(t *testing.T) {
	h := startHarness(t, harnessOpts{bits: hardBits, config: func(c *Config) { c.BanMinSubmits = 10 }})
	c := h.dial()
	w := regtestAddress(t, 5) + ".rig"
	c.handshake(w)
	e := h.srv.currentJob()
	for i := 0; i < 9; i++ {
		s := h.lowNonceFrom(c, e, c.diff, uint32(i*1000))
		if r := c.call(wire.MethodSubmit, submitArgs(w, e.job.ID, s.en2, s.ntime, s.nonce)...); r.errCode() != wire.CodeLowDifficulty {
			t.Fatalf("submit %d: %s", i, r.raw)
		}
	}
	s := h.lowNonceFrom(c, e, c.diff, 99999)
	c.sendLine(string(mustRequest(t, wire.MethodSubmit, submitArgs(w, e.job.ID, s.en2, s.ntime, s.nonce))))
	got := c.waitClosed()
	if len(got) != 1 || got[0].errCode() != wire.CodeLowDifficulty {
		t.Errorf("before close: %v", got)
	}
	if !h.srv.Banned("127.0.0.1") {
		t.Error("not banned")
	}
}

// mustRequest encodes a request line (without its terminator) as
// client.call does, for a test that reads the replies itself.
func mustRequest(t *testing.T, method string, params []any) []byte {
	b, err := json.Marshal(map[string]any{"id": 77, "method": method, "params": params})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// spooledBlock returns the one spooled share that carries a block.
func spooledBlock(t *testing.T, h *harness) store.Share {
	t.Helper()
	var out []store.Share
	for _, s := range h.shares.list() {
		if s.Block != nil {
			out = append(out, s)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d spooled shares carry a block, want 1", len(out))
	}
	return out[0]
}

// A share that meets the network target is handed to the source before the
// share is spooled and acknowledged; the full block travels with the
// share; the session inserts no row (the drainer does) and the resubmitter
// follows the block until it is seen in the best chain.
func TestBlockFoundOrder(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	h.src.SetSubmitFunc(func(_ context.Context, b *btcwire.MsgBlock) (chain.SubmitResult, error) {
		h.events.add("submitblock")
		return chain.SubmitResult{Status: chain.Accepted}, nil
	})
	c := h.dial()
	w := regtestAddress(t, 6) + ".rig"
	c.handshake(w)
	e := h.srv.currentJob()
	s := h.mine(c, e, c.diff, true, 0, 0)
	r := c.call(wire.MethodSubmit, submitArgs(w, e.job.ID, s.en2, s.ntime, s.nonce)...)
	h.events.add("reply")
	if string(r.Result) != "true" {
		t.Fatalf("block share: %s", r.raw)
	}
	if got := h.events.list(); len(got) < 3 || got[0] != "submitblock" || got[1] != "write" || got[2] != "reply" {
		t.Errorf("order %v, want submitblock, write, reply", got)
	}
	sub := h.src.Submitted()
	if len(sub) != 1 {
		t.Fatalf("%d blocks submitted", len(sub))
	}
	h.stop()
	sh := spooledBlock(t, h)
	b := sh.Block
	if chainhash.Hash(b.Hash) != sub[0].BlockHash() || sh.Height != 1 || b.Status != store.BlockSubmitted || b.Reason != "" ||
		sh.Username != regtestAddress(t, 6) || sh.Worker != "rig" || b.Reward != e.job.Template.CoinbaseValue ||
		chainhash.Hash(b.PrevHash) != e.job.Template.PrevHash {
		t.Errorf("spooled block %+v of share %+v", b, sh)
	}
	if !bytes.Equal(b.Raw, serialized(t, sub[0])) {
		t.Errorf("spooled block bytes differ from the submitted block")
	}
	if n := len(h.blocks.list()); n != 0 {
		t.Errorf("the session inserted %d blocks rows", n)
	}
	if added := h.resub.list(); len(added) != 1 || added[0].block != sub[0] || added[0].height != 1 {
		t.Errorf("resubmitter got %+v", added)
	}
	if st := h.srv.Stats(); st.BlocksFound != 1 || st.BlocksRejected != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestBlockRejectedRecorded(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	h.src.SetSubmitFunc(func(_ context.Context, b *btcwire.MsgBlock) (chain.SubmitResult, error) {
		return chain.SubmitResult{Status: chain.Rejected, Reason: "bad-txnmrklroot"}, nil
	})
	c := h.dial()
	w := regtestAddress(t, 6) + ".rig"
	c.handshake(w)
	e := h.srv.currentJob()
	s := h.mine(c, e, c.diff, true, 0, 0)
	if r := c.call(wire.MethodSubmit, submitArgs(w, e.job.ID, s.en2, s.ntime, s.nonce)...); string(r.Result) != "true" {
		t.Fatalf("share: %s", r.raw)
	}
	h.stop()
	if b := spooledBlock(t, h).Block; b.Status != store.BlockRejected || b.Reason != "bad-txnmrklroot" || len(b.Raw) == 0 {
		t.Errorf("block %+v", b)
	}
	if n := len(h.resub.list()); n != 0 {
		t.Errorf("a rejected block went to the resubmitter (%d)", n)
	}
	if st := h.srv.Stats(); st.BlocksRejected != 1 {
		t.Errorf("blocks rejected %d", st.BlocksRejected)
	}
}

// A block the node cannot take (down, or answering duplicate or
// inconclusive) is still acknowledged; it travels with its share with its
// bytes and goes to the resubmitter.
func TestBlockNotTakenResubmitted(t *testing.T) {
	for _, c := range []struct {
		name   string
		res    chain.SubmitResult
		err    error
		reason string
	}{
		{name: "node down", err: errors.New("connection refused"), reason: "submit error: connection refused"},
		{name: "inconclusive", res: chain.SubmitResult{Status: chain.Inconclusive, Reason: "inconclusive"}, reason: "inconclusive: inconclusive"},
		{name: "duplicate", res: chain.SubmitResult{Status: chain.Duplicate, Reason: "duplicate"}, reason: "duplicate: duplicate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := startHarness(t, harnessOpts{})
			h.src.SetSubmitFunc(func(context.Context, *btcwire.MsgBlock) (chain.SubmitResult, error) { return c.res, c.err })
			mc := h.dial()
			w := regtestAddress(t, 6) + ".rig"
			mc.handshake(w)
			e := h.srv.currentJob()
			s := h.mine(mc, e, mc.diff, true, 0, 0)
			if r := mc.call(wire.MethodSubmit, submitArgs(w, e.job.ID, s.en2, s.ntime, s.nonce)...); string(r.Result) != "true" {
				t.Fatalf("share: %s", r.raw)
			}
			h.stop()
			sub := h.src.Submitted()
			b := spooledBlock(t, h).Block
			if len(sub) != 1 || b.Status != store.BlockSubmitted || b.Reason != c.reason || !bytes.Equal(b.Raw, serialized(t, sub[0])) {
				t.Fatalf("spooled block %+v (%d submitted)", b, len(sub))
			}
			added := h.resub.list()
			if len(added) != 1 || added[0].block.BlockHash() != sub[0].BlockHash() || added[0].height != 1 {
				t.Fatalf("resubmitter got %+v", added)
			}
		})
	}
}

// When the spool refuses a block's share the miner is told so, and the
// session inserts the blocks row itself, with the block's bytes, and hands
// it to the recorder for its dump.
func TestBlockSpoolRefusedInsertedDirectly(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	h.blocks.inserted = make(chan store.Block, 1)
	c := h.dial()
	w := regtestAddress(t, 6) + ".rig"
	c.handshake(w)
	e := h.srv.currentJob()
	s := h.mine(c, e, c.diff, true, 0, 0)
	h.shares.setFail(errors.New("no space left on device"))
	r := c.call(wire.MethodSubmit, submitArgs(w, e.job.ID, s.en2, s.ntime, s.nonce)...)
	if r.Error == nil || string(r.Result) == "true" {
		t.Fatalf("a share the spool refused was acknowledged: %s", r.raw)
	}
	sub := h.src.Submitted()
	if len(sub) != 1 {
		t.Fatalf("%d blocks submitted", len(sub))
	}
	b := <-h.blocks.inserted
	if b.Hash != sub[0].BlockHash().String() || b.Height != 1 || b.Status != store.BlockSubmitted ||
		b.Username != regtestAddress(t, 6) || b.Worker != "rig" || b.InstanceID != 1 || b.LastShare.Seq != 0 ||
		!bytes.Equal(b.Raw, serialized(t, sub[0])) {
		t.Errorf("inserted row %+v", b)
	}
	if rb := <-h.rec.added; rb.Hash != b.Hash || rb.Raw != nil {
		t.Errorf("recorder got %+v", rb)
	}
	h.stop()
}

// BenchmarkShareValidation measures the full check path of a decoded
// submit (job lookup, worker, extranonce2, ntime, version bits, duplicate
// set, header hash, target) without the durable write.
func BenchmarkShareValidation(b *testing.B) {
	src := chaintest.New(&chaincfg.RegressionNetParams)
	src.SetBits(hardBits)
	srv, err := New(Config{
		Source: src, Network: &chaincfg.RegressionNetParams, Users: newFakeUsers(), Shares: &fakeShares{},
		Blocks: &fakeBlocks{}, PayoutScript: payoutScript(b),
		Limits: Limits{MinDiff: 1e-9, StartDiff: 1e-9},
	})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 200 { // a real merkle branch: 8 levels
		src.AddTx(testTx(uint32(i + 1000)))
	}
	if err := srv.buildJob(context.Background()); err != nil {
		b.Fatal(err)
	}
	e := srv.currentJob()
	c := &session{srv: srv, subscribed: true, rolling: true, mask: 0x1fffe000, en1: [4]byte{0, 0, 0, 1}}
	c.workers = []worker{{name: "u.w", user: "u", worker: "w"}}
	c.setDiffLocked(1e-12) // every hash meets it: the whole path runs
	c.recordLocked(e, 0)
	c.lastJob = e
	p := wire.SubmitParams{Worker: "u.w", JobID: e.job.ID, Extranonce2: make([]byte, 8), NTime: e.minTime + 1,
		VersionBits: 0x00002000, HasVersionBits: true}
	now := testEpoch
	var cs checkedShare
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Nonce = uint32(i)
		p.Extranonce2[0] = byte(uint64(i) >> 32)
		if i%maxSeen == 0 {
			c.seen = nil
		}
		if r := c.checkShare(&p, now, &cs); r != reasonNone {
			b.Fatalf("share %d rejected: %v", i, r)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "validations/s")
}
