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
// stratum_notify), and the server re-sends the current job under an alias
// id right after mining.set_difficulty for it. ESP-Miner takes it when its
// job task dequeues the next notify (create_jobs_task.c), which may be one
// it had queued before the retarget; cgminer and the firmwares built on it
// take it at once, for new work from the job they have (parse_diff sets
// pool->sdiff, gen_stratum_work reads it). So work in flight on an older
// id may carry the new, lower difficulty: rejecting it as low difficulty
// would punish an honest miner. Shares that meet the job's own difficulty
// are credited at it; shares that meet only the lower one, at the lower
// one. Fifteen seconds cover queued work and a slow job task; the bound
// keeps a miner from mining an old id at the lower difficulty for long
// (a share that happens to meet the job's higher difficulty is credited
// at it, at most twice its worth on average, and only within the grace).
const RetargetGrace = 15 * time.Second

// lowerDiff is the lower difficulty a sent job also accepts until a
// deadline, after a retarget below its own; zero when none.
type lowerDiff struct {
	diff   float64
	target *chain.Target
	until  time.Time
}

// meets reports whether h meets the lower difficulty while it applies at
// now, and returns the difficulty to credit.
func (l *lowerDiff) meets(h *chainhash.Hash, now time.Time) (float64, bool) {
	if l.target == nil || now.After(l.until) || !l.target.Meets(h) {
		return 0, false
	}
	return l.diff, true
}

// lowerInFlightLocked is called by a retarget once the session's
// difficulty is the new one: every job already sent whose difficulty is
// higher accepts the new one too for RetargetGrace (see there). A lower
// difficulty still in force from an earlier retarget is kept as it is.
func (c *session) lowerInFlightLocked() {
	now := c.srv.now()
	for i := range c.ring {
		sj := &c.ring[i]
		if sj.e == nil || sj.diff <= c.diff {
			continue
		}
		if sj.lower.target != nil && sj.lower.diff <= c.diff && !now.After(sj.lower.until) {
			continue
		}
		sj.lower = lowerDiff{diff: c.diff, target: c.target, until: now.Add(RetargetGrace)}
	}
}
