package stratum

import (
	"testing"
	"unsafe"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

// nonceBetween finds a share of e (as the session c hashes it) that meets
// difficulty lo but not hi, starting at nonce from.
func (h *harness) nonceBetween(c *client, e *jobEntry, lo, hi float64, from uint32) solution {
	h.t.Helper()
	loT := chain.NewTarget(chain.DifficultyToTarget(lo))
	hiT := chain.NewTarget(chain.DifficultyToTarget(hi))
	en2 := make([]byte, c.en2n)
	ntime := uint32(e.job.Template.CurTime.Unix())
	for nonce := from; nonce < from+1<<26; nonce++ {
		hash, _ := e.job.Hash(c.en1, en2, ntime, nonce, int32(e.version))
		if loT.Meets(&hash) && !hiT.Meets(&hash) && !e.job.Target.Meets(&hash) {
			return solution{en2: en2, ntime: ntime, nonce: nonce, version: e.version}
		}
	}
	h.t.Fatalf("no share between difficulty %v and %v", lo, hi)
	return solution{}
}

// After a retarget down, the job ids sent before it also accept the new,
// lower difficulty for RetargetGrace: a share that meets their own
// difficulty is credited at it (cpuminer's work in flight) until one
// meets only the lower one (work a miner that takes a new difficulty at
// once, or at its next dequeue, had in flight), which is credited at the
// lower one, as every later share on those ids in the grace; after the
// grace the lower one no longer applies to the old ids; the alias carries
// it for good.
func TestRetargetDownAcceptsWorkInFlight(t *testing.T) {
	h := startHarness(t, harnessOpts{bits: hardBits, config: func(c *Config) {
		c.MinDiff, c.MaxDiff, c.StartDiff = 1.0/(1<<24), 1, 1.0/(1<<16)
	}})
	c := h.dial()
	w := regtestAddress(t, 6) + ".rig"
	c.handshake(w)
	e := h.srv.currentJob()
	oldDiff, oldID := c.diff, c.jobID
	inFlight := h.mine(c, e, oldDiff, false, 0, 0)

	c.retarget(oldDiff / 16)
	newDiff := c.diff
	if !(newDiff < oldDiff) || c.jobID == oldID {
		t.Fatalf("no retarget down: diff %v job %s", newDiff, c.jobID)
	}
	submit := func(what, id string, s solution, wantCode int) {
		t.Helper()
		r := c.call(wire.MethodSubmit, submitArgs(w, id, s.en2, s.ntime, s.nonce)...)
		if wantCode == 0 && string(r.Result) != "true" || wantCode != 0 && r.errCode() != wantCode {
			t.Fatalf("%s: %s", what, r.raw)
		}
	}
	submit("in flight at the old difficulty", oldID, inFlight, 0)
	low := h.nonceBetween(c, e, newDiff, oldDiff, 0)
	submit("old job id at the new lower difficulty", oldID, low, 0)
	submit("old job id at its own difficulty, after a lower one", oldID, h.mineAfter(c, e, oldDiff, inFlight.nonce), 0)

	h.clock.Advance(RetargetGrace + 1)
	late := h.nonceBetween(c, e, newDiff, oldDiff, low.nonce+1)
	submit("old job id at the lower difficulty after the grace", oldID, late, wire.CodeLowDifficulty)
	submit("alias id at the new difficulty", c.jobID, late, 0)

	var got []float64
	for _, s := range h.shares.list() {
		got = append(got, s.Difficulty)
	}
	want := []float64{oldDiff, newDiff, newDiff, newDiff}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Errorf("credited %v, want %v", got, want)
	}
	if n := h.srv.Stats().SharesRejected["low-difficulty"]; n != 1 {
		t.Errorf("%d low-difficulty rejects, want 1 (after the grace)", n)
	}
}

// retarget sends mining.suggest_difficulty d after the handshake and reads
// the retarget it makes: mining.set_difficulty, then the job again.
func (c *client) retarget(d any) {
	c.t.Helper()
	c.call(wire.MethodSuggestDifficulty, d)
	c.expect(wire.MethodSetDifficulty)
	c.expect(wire.MethodNotify)
}

// mineAfter is mine (not a block) from nonce after+1 on.
func (h *harness) mineAfter(c *client, e *jobEntry, diff float64, after uint32) solution {
	h.t.Helper()
	share := chain.NewTarget(chain.DifficultyToTarget(diff))
	en2 := make([]byte, c.en2n)
	ntime := uint32(e.job.Template.CurTime.Unix())
	for nonce := after + 1; nonce != after; nonce++ {
		hash, _ := e.job.Hash(c.en1, en2, ntime, nonce, int32(e.version))
		if share.Meets(&hash) && !e.job.Target.Meets(&hash) {
			return solution{en2: en2, ntime: ntime, nonce: nonce, version: e.version}
		}
	}
	h.t.Fatal("no solution found")
	return solution{}
}

// What a retarget keeps per session stays small: the idle-miner memory
// budget (docs/BENCHMARKS.md) is per session, and the ring holds
// ringSize sent jobs. The lower difficulty is kept once per session in
// 32 bytes; a sent job stays 32 bytes (its send number fits in padding).
func TestRetargetStateSize(t *testing.T) {
	if n := unsafe.Sizeof(sentJob{}); n > 32 {
		t.Errorf("sentJob is %d bytes, want at most 32 (×%d per session)", n, ringSize)
	}
	if n := unsafe.Sizeof(lowerDiff{}); n > 32 {
		t.Errorf("lowerDiff is %d bytes, want at most 32", n)
	}
}
