package stratum

import (
	"testing"

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

// After a retarget down, a share for a job id sent before it that meets
// only the new, lower difficulty (work a miner that takes a new difficulty
// at once, or at its next dequeue, had in flight) is accepted within
// RetargetGrace and credited at the lower difficulty; one that meets the
// job's own difficulty keeps it; after the grace the lower one no longer
// applies to the old id.
func TestRetargetDownAcceptsWorkInFlight(t *testing.T) {
	h := startHarness(t, harnessOpts{bits: hardBits, config: func(c *Config) {
		c.MinDiff, c.MaxDiff, c.StartDiff = 1.0/(1<<24), 1, 1.0/(1<<16)
	}})
	c := h.dial()
	w := regtestAddress(t, 6) + ".rig"
	c.handshake(w)
	e := h.srv.currentJob()
	oldDiff, oldID := c.diff, c.jobID

	c.call(wire.MethodSuggestDifficulty, oldDiff/16)
	c.expect(wire.MethodSetDifficulty)
	c.expect(wire.MethodNotify)
	newDiff := c.diff
	if !(newDiff < oldDiff) || c.jobID == oldID {
		t.Fatalf("no retarget down: diff %v job %s", newDiff, c.jobID)
	}

	low := h.nonceBetween(c, e, newDiff, oldDiff, 0)
	if r := c.call(wire.MethodSubmit, submitArgs(w, oldID, low.en2, low.ntime, low.nonce)...); string(r.Result) != "true" {
		t.Fatalf("old job id at the new lower difficulty: %s", r.raw)
	}
	full := h.mine(c, e, oldDiff, false, 0, 0)
	if r := c.call(wire.MethodSubmit, submitArgs(w, oldID, full.en2, full.ntime, full.nonce)...); string(r.Result) != "true" {
		t.Fatalf("old job id at its own difficulty: %s", r.raw)
	}

	h.clock.Advance(RetargetGrace + 1)
	late := h.nonceBetween(c, e, newDiff, oldDiff, low.nonce+1)
	if late.nonce == full.nonce {
		late = h.nonceBetween(c, e, newDiff, oldDiff, late.nonce+1)
	}
	if r := c.call(wire.MethodSubmit, submitArgs(w, oldID, late.en2, late.ntime, late.nonce)...); r.errCode() != wire.CodeLowDifficulty {
		t.Errorf("old job id at the lower difficulty after the grace: %s", r.raw)
	}
	// The alias carries the new difficulty for good.
	if r := c.call(wire.MethodSubmit, submitArgs(w, c.jobID, late.en2, late.ntime, late.nonce)...); string(r.Result) != "true" {
		t.Errorf("alias id at the new difficulty: %s", r.raw)
	}

	shares := h.shares.list()
	if len(shares) != 3 || shares[0].Difficulty != newDiff || shares[1].Difficulty != oldDiff || shares[2].Difficulty != newDiff {
		var got []float64
		for _, s := range shares {
			got = append(got, s.Difficulty)
		}
		t.Errorf("credited %v, want [%v %v %v]", got, newDiff, oldDiff, newDiff)
	}
	if n := h.srv.Stats().SharesRejected["low-difficulty"]; n != 1 {
		t.Errorf("%d low-difficulty rejects, want 1 (after the grace)", n)
	}
}

// A retarget up leaves no lower difficulty behind: the jobs sent before it
// keep theirs (lower than the new one) and the alias is judged at the new.
func TestRetargetUpLowersNothing(t *testing.T) {
	h := startHarness(t, harnessOpts{bits: hardBits})
	c := h.dial()
	w := regtestAddress(t, 7) + ".rig"
	c.handshake(w)
	oldDiff := c.diff
	c.call(wire.MethodSuggestDifficulty, oldDiff*8)
	c.expect(wire.MethodSetDifficulty)
	c.expect(wire.MethodNotify)
	h.srv.mu.Lock()
	var list []*session
	for s := range h.srv.sessions {
		list = append(list, s)
	}
	h.srv.mu.Unlock()
	if len(list) != 1 {
		t.Fatalf("%d sessions", len(list))
	}
	s := list[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sj := range s.ring {
		if sj.e != nil && sj.lower.target != nil {
			t.Errorf("job %s.%d got a lower difficulty %v on a retarget up", sj.e.job.ID, sj.alias, sj.lower.diff)
		}
	}
}
