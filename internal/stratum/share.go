package stratum

import (
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

const (
	// maxNTimeAhead is how far past the clock a share's ntime may be.
	maxNTimeAhead = 2 * time.Hour
	// maxSeen bounds a session's duplicate set; at the bound, entries of
	// jobs the session no longer remembers are dropped first.
	maxSeen = 1 << 16
)

// reason is why a submit was rejected.
type reason uint8

const (
	reasonStale reason = iota
	reasonUnauthorized
	reasonNotSubscribed
	reasonExtranonce2
	reasonNTime
	reasonVersionBits
	reasonDuplicate
	reasonLowDifficulty
	reasonNotRecorded
	reasonInvalidParams
	reasonTooManyShares
	numReasons

	reasonNone reason = 255 // accepted
)

var reasonNames = [numReasons]string{
	"stale", "unauthorized", "not-subscribed", "extranonce2-size", "ntime", "version-bits",
	"duplicate", "low-difficulty", "not-recorded", "invalid-params", "too-many-shares",
}

// String returns the reason's name as Stats reports it.
func (r reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "none"
}

// code and message are the Stratum error sent for r.
func (r reason) code() (int, string) {
	switch r {
	case reasonStale:
		return wire.CodeJobNotFound, "job not found"
	case reasonUnauthorized:
		return wire.CodeUnauthorized, "unauthorized worker"
	case reasonNotSubscribed:
		return wire.CodeNotSubscribed, "not subscribed"
	case reasonExtranonce2:
		return wire.CodeOther, "wrong extranonce2 size"
	case reasonNTime:
		return wire.CodeOther, "ntime out of range"
	case reasonVersionBits:
		return wire.CodeOther, "invalid version bits"
	case reasonDuplicate:
		return wire.CodeDuplicate, "duplicate share"
	case reasonLowDifficulty:
		return wire.CodeLowDifficulty, "low difficulty share"
	case reasonNotRecorded:
		return wire.CodeOther, "share not recorded"
	case reasonTooManyShares:
		return wire.CodeOther, "too many shares for this job"
	default:
		return wire.CodeOther, "invalid params"
	}
}

// shareKey identifies a share for duplicate detection within a session
// (whose extranonce1 is fixed): job number, extranonce2 (zero-padded to
// wire.MaxExtranonce2Size), ntime, nonce and final version.
type shareKey [4 + wire.MaxExtranonce2Size + 12]byte

// checkedShare is a share that passed every check.
type checkedShare struct {
	e       *jobEntry
	job     *chain.Job // the job as sent to the session: the pool's or its solo one
	diff    float64    // assigned difficulty: the one in force when its job id was sent
	w       *worker
	hash    chainhash.Hash
	version int32
	key     shareKey
	// unnegotiated: version bits rolled without mining.configure.
	unnegotiated bool
}

// checkShare runs the share checks in their documented order on a decoded
// submit of a subscribed, authorized session. It records an accepted share
// in the duplicate set.
func (c *session) checkShare(p *wire.SubmitParams, now time.Time, cs *checkedShare) reason {
	c.mu.Lock()
	defer c.mu.Unlock()

	sj := c.findJobLocked(p.JobID)
	if sj == nil || sj.e.gen != c.srv.jobs.tipGen.Load() {
		return reasonStale
	}
	cs.e, cs.diff = sj.e, sj.diff
	cs.w = nil
	for i := range c.workers {
		if c.workers[i].name == p.Worker {
			cs.w = &c.workers[i]
			break
		}
	}
	if cs.w == nil {
		return reasonUnauthorized
	}
	if len(p.Extranonce2) != c.srv.cfg.Extranonce2Size {
		return reasonExtranonce2
	}
	if p.NTime < sj.e.minTime || int64(p.NTime) > now.Add(maxNTimeAhead).Unix() {
		return reasonNTime
	}
	version := sj.e.version
	cs.unnegotiated = false
	if p.HasVersionBits && p.VersionBits != 0 {
		mask := c.mask
		if !c.rolling {
			// Rolled without mining.configure (quirks.go): judged
			// against the pool's mask.
			mask, cs.unnegotiated = c.srv.cfg.VersionMask, true
		}
		if p.VersionBits&^mask != 0 {
			return reasonVersionBits
		}
		version = version&^mask | p.VersionBits&mask
	}
	cs.version = int32(version)

	k := &cs.key
	binary.LittleEndian.PutUint32(k[0:], sj.e.num)
	n := copy(k[4:4+wire.MaxExtranonce2Size], p.Extranonce2)
	clear(k[4+n : 4+wire.MaxExtranonce2Size])
	binary.LittleEndian.PutUint32(k[4+wire.MaxExtranonce2Size:], p.NTime)
	binary.LittleEndian.PutUint32(k[8+wire.MaxExtranonce2Size:], p.Nonce)
	binary.LittleEndian.PutUint32(k[12+wire.MaxExtranonce2Size:], version)
	if _, dup := c.seen[*k]; dup {
		return reasonDuplicate
	}

	if cs.job = c.chainJob(sj.e); cs.job == nil { // solo.go
		return reasonStale
	}
	cs.hash, _ = cs.job.Hash(c.en1[:], p.Extranonce2, p.NTime, p.Nonce, cs.version)
	d, ok := c.creditLocked(sj, &cs.hash, now)
	if !ok {
		return reasonLowDifficulty
	}
	cs.diff = d
	if c.seen == nil {
		c.seen = make(map[shareKey]struct{}, 8)
	} else if len(c.seen) >= maxSeen {
		c.pruneSeenLocked()
		if len(c.seen) >= maxSeen {
			return reasonTooManyShares
		}
	}
	c.seen[*k] = struct{}{}
	return reasonNone
}

// findJobLocked returns the ring entry sent under id ("<job id>" or
// "<job id>.<alias>"), or nil.
func (c *session) findJobLocked(id string) *sentJob {
	base, alias := id, uint64(0)
	if i := strings.LastIndexByte(id, '.'); i >= 0 {
		a, err := strconv.ParseUint(id[i+1:], 10, 32)
		if err != nil || a == 0 {
			return nil
		}
		base, alias = id[:i], a
	}
	for i := range c.ring {
		sj := &c.ring[i]
		if sj.e != nil && uint64(sj.alias) == alias && sj.e.job.ID == base {
			return sj
		}
	}
	return nil
}

// pruneSeenLocked drops duplicate-set entries of jobs no longer in the ring.
func (c *session) pruneSeenLocked() {
	var live [ringSize]uint32
	for i := range c.ring {
		if c.ring[i].e != nil {
			live[i] = c.ring[i].e.num
		}
	}
	for k := range c.seen {
		num := binary.LittleEndian.Uint32(k[0:])
		keep := false
		for _, l := range live {
			if l == num && l != 0 {
				keep = true
				break
			}
		}
		if !keep {
			delete(c.seen, k)
		}
	}
}

// handleSubmit checks a share; an accepted one that meets the network
// target is handed to the chain source first; then the share is spooled
// durably and only then acknowledged. An error ends the session.
func (c *session) handleSubmit(req wire.Request) error {
	if !c.subscribed {
		return c.reject(req.ID, reasonNotSubscribed)
	}
	if len(c.workers) == 0 {
		return c.reject(req.ID, reasonUnauthorized)
	}
	p, err := wire.DecodeSubmit(req.Params)
	if err != nil {
		c.srv.st.rejected[reasonInvalidParams].Add(1)
		return c.invalidParams(req.ID, err)
	}
	now := c.srv.now()
	var cs checkedShare
	if r := c.checkShare(&p, now, &cs); r != reasonNone {
		c.observeReject(p.Worker, r, now)
		return c.reject(req.ID, r)
	}

	var fb *foundBlock
	if cs.e.job.Target.Meets(&cs.hash) {
		fb = c.submitBlock(&cs, &p, now)
	}
	share := store.Share{
		Time:            now,
		Username:        cs.w.user,
		Worker:          cs.w.worker,
		JobID:           cs.e.job.ID,
		Height:          cs.e.height,
		Difficulty:      cs.diff,
		ShareDifficulty: chain.HashDifficulty(cs.hash),
		InstanceID:      c.srv.cfg.InstanceID,
		RemoteAddr:      c.ip,
	}
	if fb != nil {
		share.Block = fb.spooled()
	}
	var werr error // the reply's write
	_, err = c.srv.cfg.Shares.Write(c.group.ctx, &share)
	if err != nil {
		c.mu.Lock()
		delete(c.seen, cs.key) // not counted: the miner may send it again
		c.mu.Unlock()
		c.logger().Error("stratum: SHARE NOT RECORDED; miner told so", "user", cs.w.user, "job", cs.e.job.ID, "err", err)
		c.srv.st.rejected[reasonNotRecorded].Add(1)
		c.observeReject(cs.w.name, reasonNotRecorded, now)
		code, msg := reasonNotRecorded.code()
		werr = c.replyError(req.ID, code, msg)
	} else {
		c.srv.st.accepted.Add(1)
		if cs.unnegotiated {
			c.srv.st.versionUnnegotiated.Add(1)
		}
		if o := c.srv.cfg.Observer; o != nil {
			o.ObserveShare(cs.w.user, cs.w.worker, cs.diff, now)
		}
		werr = c.replyTrue(req.ID)
	}
	if fb != nil {
		c.srv.foundBlockDone(c.group, fb, share, err)
	}
	if err == nil {
		c.mu.Lock()
		if c.vd != nil {
			if d, changed := c.vd.OnShare(now, cs.diff); changed {
				c.retargetLocked(d)
			}
		}
		c.mu.Unlock()
	}
	if err := c.countSubmit(false); err != nil {
		return err
	}
	return werr
}

// reject answers a rejected submit and applies the ban rule, which may end
// the session even when the reply could not be written.
func (c *session) reject(id []byte, r reason) error {
	c.srv.st.rejected[r].Add(1)
	code, msg := r.code()
	werr := c.replyError(id, code, msg)
	// Stale shares follow every new tip; they are no sign of abuse.
	if err := c.countSubmit(r != reasonStale); err != nil {
		return err
	}
	return werr
}

// countSubmit feeds the ban rule: when more than BanThreshold of at least
// BanMinSubmits recent submits were invalid, the session ends for
// closeInvalidShares, and its exit bans the address for BanDuration. The
// window halves once it holds twice BanMinSubmits, so it follows recent
// behaviour.
func (c *session) countSubmit(invalid bool) error {
	lim := c.srv.limits.Load()
	c.submits++
	if invalid {
		c.invalid++
	}
	if c.submits >= lim.BanMinSubmits && float64(c.invalid) > lim.BanThreshold*float64(c.submits) {
		return endSession(closeInvalidShares, nil)
	}
	if c.submits >= 2*lim.BanMinSubmits {
		c.submits /= 2
		c.invalid /= 2
	}
	return nil
}
