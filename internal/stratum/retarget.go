package stratum

import (
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/chain"
)

// RetargetGrace is how long after a retarget the jobs sent before it also
// accept shares at the new difficulty when it is lower than theirs.
//
// Miners do not all take a new difficulty at the same point. cpuminer
// keeps it for the next mining.notify (sctx->next_diff becomes job.diff in
// stratum_notify, pooler/cpuminer util.c), and the server re-sends the
// current job under an alias id right after mining.set_difficulty for it.
// ESP-Miner takes it when its job task dequeues the next notify
// (main/tasks/create_jobs_task.c), which may be one it had queued before
// the retarget; cgminer takes it at once, for new work from the job it
// has (parse_diff sets pool->sdiff, gen_stratum_work copies it). The
// tests play all three (TestHonestWorkAcrossRetargets). So work in flight on an older
// id may carry the new, lower difficulty: rejecting it as low difficulty
// would punish an honest miner. Fifteen seconds cover queued work and a
// slow job task.
//
// Credit: a share for an older job that meets only the lower difficulty
// is credited at it. One that meets the job's own difficulty is credited
// at that (cpuminer's work in flight) until the session has sent, in this
// grace, a share that met only the lower one: from then on the session is
// known to work the older jobs at the lower difficulty, and their shares
// are credited at it. Crediting the job's own difficulty to a share worked
// at the lower one would pay a miner that keeps mining an older id at the
// lower difficulty up to twice its work; this way the excess is at most
// about one share at the lower difficulty per retarget.
const RetargetGrace = 15 * time.Second

// lowerDiff is the lower difficulty that the jobs a session sent before
// its last retarget down also accept until a deadline; zero when none. It
// is kept once per session, not per sent job, so that it costs an idle
// session 32 bytes.
type lowerDiff struct {
	diff   float64
	target *chain.Target
	until  int64  // server clock, Unix nanoseconds
	before uint32 // it applies to jobs sent with a sentJob.seq up to this
	used   bool   // a share met only this difficulty (see RetargetGrace)
}

// creditLocked returns the difficulty a share for sj whose hash is h is
// credited at, and false when it is too low: sj's own difficulty, or,
// for a job sent before a retarget down and within RetargetGrace of it,
// the lower one as RetargetGrace says.
func (c *session) creditLocked(sj *sentJob, h *chainhash.Hash, now time.Time) (float64, bool) {
	own := sj.target.Meets(h)
	l := &c.lower
	if l.target == nil || int32(l.before-sj.seq) < 0 || sj.diff <= l.diff || now.UnixNano() > l.until {
		return sj.diff, own
	}
	switch {
	case own && !l.used:
		return sj.diff, true
	case own:
		return l.diff, true
	case l.target.Meets(h):
		l.used = true
		return l.diff, true
	}
	return 0, false
}

// lowerInFlightLocked is called by a retarget once the session's
// difficulty is the new one: the jobs already sent whose difficulty is
// higher accept the new one too for RetargetGrace (see there). A lower
// difficulty still in force from an earlier retarget, at or below the new
// one, is kept with its deadline and now covers every job sent so far.
func (c *session) lowerInFlightLocked() {
	now := c.srv.now().UnixNano()
	if c.lower.target != nil && now <= c.lower.until && c.lower.diff <= c.diff {
		c.lower.before = c.sentSeq
		return
	}
	c.lower = lowerDiff{diff: c.diff, target: c.target, until: now + int64(RetargetGrace), before: c.sentSeq}
}
