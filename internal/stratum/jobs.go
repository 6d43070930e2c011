package stratum

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/backoff"
	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

// Template retry backoff after an error.
const (
	minTemplateRetry = 100 * time.Millisecond
	maxTemplateRetry = 10 * time.Second
)

// jobEntry is a job as the server sends it: the chain.Job, its notify lines
// (built once, written to every session) and what share checks need.
type jobEntry struct {
	job         *chain.Job
	num         uint32 // job number, unique for the process
	gen         uint64 // tip generation the job belongs to
	notify      []byte // clean_jobs=false
	notifyClean []byte // clean_jobs=true
	minTime     uint32
	version     uint32
	height      int32
	built       time.Time // server clock time the job was built
	branch      []string  // the merkle branch as notify sends it
	solo        soloJobs  // per solo address: coinbase and notify lines (solo.go)
	coinb2At    int       // where coinb2's hex starts in notify and notifyClean; -1: not found
}

// aliasLine returns the job's notify line with job id "<id>.<n>" and
// clean_jobs=false: how a retargeted session gets the current job again.
func (e *jobEntry) aliasLine(n uint32) []byte {
	return wire.NotifyAlias(e.notify, e.job.ID, "."+strconv.FormatUint(uint64(n), 10))
}

// jobManager holds the current job and tip generation.
type jobManager struct {
	cur    atomic.Pointer[jobEntry]
	tipGen atomic.Uint64 // incremented whenever the previous block changes
	num    uint32        // last job number; only Run touches it

	lastPrev  chainhash.Hash
	lastBuilt time.Time // clock time of the last job built

	// notSynced is set while the chain source says its node is still
	// syncing: new miners are refused with a clear error and the current
	// jobs are stale until a template comes again.
	notSynced atomic.Bool
}

// currentJob returns the current job, or nil before the first one.
func (s *Server) currentJob() *jobEntry { return s.jobs.cur.Load() }

// Run is the job manager: it builds a job at once, then one for every new
// tip (sent with clean_jobs=true) and, while the mempool changes, at most
// one per JobInterval (clean_jobs=false), sending each to every ready
// session. Template errors are logged and retried with backoff. It also
// retargets quiet sessions every VardiffTick. It returns nil when ctx ends.
// Run must not be called more than once at a time.
func (s *Server) Run(ctx context.Context) error {
	updates := s.cfg.Source.Updates()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	tick := time.NewTicker(s.cfg.VardiffTick)
	defer tick.Stop()

	failing := backoff.Backoff{Min: minTemplateRetry, Max: maxTemplateRetry}
	pending := false // a mempool job is owed
	build := func() {
		if err := s.buildJob(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.st.templateErrors.Add(1)
			wait := failing.Next()
			if errors.Is(err, chain.ErrNotSynced) {
				if !s.jobs.notSynced.Swap(true) {
					// Work on a tip the node may not have right is worthless.
					s.jobs.tipGen.Add(1)
					s.jobs.cur.Store(nil)
					s.log.Warn("stratum: the node is syncing the block chain; refusing miners until it is synced")
				}
			} else {
				s.log.Warn("stratum: no template; retrying", "err", err, "in", wait)
			}
			retry.Reset(wait)
			return
		}
		failing.Reset()
		pending = false
	}
	build()
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				updates = nil
				s.log.Warn("stratum: chain source closed its updates")
				continue
			}
			if u.Kind == chain.NewTip || failing.Retrying() {
				build()
				continue
			}
			if wait := s.cfg.JobInterval - s.now().Sub(s.jobs.lastBuilt); wait > 0 {
				if !pending {
					pending = true
					retry.Reset(wait)
				}
				continue
			}
			build()
		case <-retry.C:
			if pending && !failing.Retrying() {
				if wait := s.cfg.JobInterval - s.now().Sub(s.jobs.lastBuilt); wait > 0 {
					retry.Reset(wait)
					continue
				}
			}
			build()
		case <-tick.C:
			s.vardiffTick()
		}
	}
}

// buildJob asks the source for a template, turns it into a job and sends it.
func (s *Server) buildJob(ctx context.Context) error {
	t, err := s.cfg.Source.Template(ctx)
	if err != nil {
		return err
	}
	m := &s.jobs
	m.num++
	id := strconv.FormatUint(uint64(s.cfg.InstanceID)<<32|uint64(m.num), 16)
	job, err := chain.NewJob(id, t, s.cbCfg)
	if err != nil {
		return err
	}
	newTip := m.cur.Load() == nil || t.PrevHash != m.lastPrev
	gen := m.tipGen.Load()
	if newTip {
		gen++
	}
	e := &jobEntry{
		job:     job,
		num:     m.num,
		gen:     gen,
		minTime: uint32(t.MinTime.Unix()),
		version: uint32(t.Version),
		height:  t.Height,
		built:   s.now(),
	}
	if t.MinTime.Unix() < 0 {
		e.minTime = 0
	}
	branch := job.MerkleBranchHex()
	e.branch = branch
	coinb1, coinb2 := hex.EncodeToString(job.Coinb1), hex.EncodeToString(job.Coinb2)
	e.notify = wire.EncodeNotify(id, job.PrevHashStratum, coinb1, coinb2, branch, job.VersionHex, job.BitsHex, job.NTimeHex, false)
	e.notifyClean = wire.EncodeNotify(id, job.PrevHashStratum, coinb1, coinb2, branch, job.VersionHex, job.BitsHex, job.NTimeHex, true)
	e.coinb2At = coinb2Offset(e.notify, coinb2) // solo.go

	// Stale first: from here on, shares of the old tip get 21.
	if newTip {
		m.tipGen.Store(gen)
	}
	m.cur.Store(e)
	// Synced again: a miner that sees the new job is not refused.
	if m.notSynced.Swap(false) {
		s.log.Info("stratum: the node is synced; serving miners")
	}
	m.lastPrev = t.PrevHash
	m.lastBuilt = s.now()
	s.st.jobs.Add(1)
	s.log.Debug("stratum: new job", "id", id, "height", t.Height, "clean", newTip, "txs", len(t.Transactions))
	s.fanout(e, newTip)
	if s.hookJob != nil {
		s.hookJob(e)
	}
	return nil
}

// fanout writes e's notify line to every ready session with bounded
// workers; a session whose write times out is closed. The snapshot takes
// every session and the workers skip those not ready: reading each
// session's flag before the first write would delay it by a cache miss
// per session (half a millisecond at 10,000 sessions).
func (s *Server) fanout(e *jobEntry, clean bool) {
	list := s.snapshot(func(*session) bool { return true })
	start := time.Now() // real time: a measurement, not logic
	var first atomic.Bool
	var firstAt int64
	var ready atomic.Int64
	s.forEach(list, func(c *session) {
		if !c.ready.Load() {
			return
		}
		ready.Add(1)
		if c.sendJob(e) && !first.Load() && first.CompareAndSwap(false, true) {
			firstAt = time.Now().UnixNano() // read after forEach returns
		}
	})
	n := ready.Load()
	if n > 0 {
		d := time.Since(start)
		s.st.lastFanout.Store(int64(d))
		for {
			old := s.st.maxFanout.Load()
			if int64(d) <= old || s.st.maxFanout.CompareAndSwap(old, int64(d)) {
				break
			}
		}
		s.log.Debug("stratum: notify fan-out", "job", e.job.ID, "clean", clean, "sessions", n, "took", d)
	}
	s.st.fanoutStart.Store(start.UnixNano())
	s.st.fanoutFirstWrite.Store(firstAt)
	s.st.fanoutSessions.Store(n)
	s.st.fanouts.Add(1)
}

// vardiffTick lets every ready session's vardiff lower a quiet miner's
// difficulty.
func (s *Server) vardiffTick() {
	list := s.snapshot(func(c *session) bool { return c.ready.Load() })
	now := s.now()
	s.forEach(list, func(c *session) { c.tick(now) })
}
