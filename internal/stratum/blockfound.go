package stratum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"
	"unicode/utf8"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/store"
)

const (
	// submitBlockTimeout bounds handing a block to the chain source.
	submitBlockTimeout = 30 * time.Second
	// insertBlockTimeout bounds recording a block in the database.
	insertBlockTimeout = 30 * time.Second
	// roundWait bounds waiting for the block's share to reach the database
	// and summing the round.
	roundWait = 2 * time.Minute
	// shutdownGrace is how long a pending dump may still take once the
	// server is shutting down.
	shutdownGrace = 10 * time.Second
)

// foundBlock is a share that met the network target, after SubmitBlock.
type foundBlock struct {
	e      *jobEntry
	hash   chainhash.Hash
	user   string
	worker string
	res    chain.SubmitResult
	err    error // the block could not be assembled or handed over
}

// BlockDump is the content of <ShareDir>/<height>-<hash>.json, written for
// every block the pool finds.
type BlockDump struct {
	Height            int32      `json:"height"`
	Hash              string     `json:"hash"`
	PrevHash          string     `json:"prev_hash"`
	Time              time.Time  `json:"time"` // RFC 3339, UTC: when the share was accepted
	Finder            DumpFinder `json:"finder"`
	Reward            int64      `json:"reward"` // satoshis: the coinbase value
	NetworkDifficulty float64    `json:"network_difficulty"`
	Status            string     `json:"status"` // the blocks row's status when it was recorded
	Round             RoundDump  `json:"round"`
}

// DumpFinder names the worker whose share was the block.
type DumpFinder struct {
	User   string `json:"user"`
	Worker string `json:"worker"`
}

// RoundDump sums the round ending with the block: every share after the
// pool's previous (not rejected) block, through the block's own share.
type RoundDump struct {
	// From is the previous block's hash; null for the pool's first block.
	From  *string           `json:"from"`
	Users []store.RoundUser `json:"users"`
}

// submitBlock assembles the block of an accepted share and hands it to the
// chain source at once, before anything else is done with the share.
func (c *session) submitBlock(cs *checkedShare, p *SubmitParams, now time.Time) *foundBlock {
	fb := &foundBlock{e: cs.e, hash: cs.hash, user: cs.w.user, worker: cs.w.worker}
	blk, err := cs.e.job.Block(c.en1[:], p.Extranonce2, p.NTime, p.Nonce, cs.version)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.group.ctx), submitBlockTimeout)
		fb.res, fb.err = c.srv.cfg.Source.SubmitBlock(ctx, blk)
		cancel()
	} else {
		fb.err = err
	}
	if fb.err == nil && fb.res.Status == chain.Accepted {
		// Our block is the new tip: from now on shares of the old tip are
		// stale (21) instead of becoming blocks that can only lose the race,
		// even before the job manager has built the next job.
		c.srv.jobs.tipGen.CompareAndSwap(cs.e.gen, cs.e.gen+1)
	}
	c.srv.st.blocks.Add(1)
	log := c.logger().With("height", cs.e.height, "hash", cs.hash.String(), "user", cs.w.user, "worker", cs.w.worker)
	switch {
	case fb.err != nil:
		c.srv.st.blocksRejected.Add(1)
		log.Error("stratum: BLOCK FOUND BUT NOT HANDED OVER", "err", fb.err)
	case fb.res.Status == chain.Rejected:
		c.srv.st.blocksRejected.Add(1)
		log.Error("stratum: BLOCK FOUND BUT REJECTED BY THE NODE", "reason", fb.res.Reason)
	default:
		log.Info("stratum: block found", "status", fb.res.Status.String(), "reason", fb.res.Reason)
	}
	return fb
}

// recordBlock records fb in the database and writes its dump, in a
// goroutine of the session's listener group (Serve waits for it).
func (s *Server) recordBlock(g *serveGroup, fb *foundBlock, share store.Share, seq uint64) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				s.st.panics.Add(1)
				s.log.Error("stratum: block recording panicked", "hash", fb.hash.String(), "panic", r, "stack", string(debug.Stack()))
			}
		}()
		if err := s.recordBlockSync(g.ctx, fb, share, seq); err != nil {
			s.log.Error("stratum: block not fully recorded", "height", fb.e.height, "hash", fb.hash.String(), "err", err)
		}
	}()
}

// status is the blocks status and reason of fb.
func (fb *foundBlock) status() (store.BlockStatus, string) {
	switch {
	case fb.err != nil:
		return store.BlockSubmitted, "submit error: " + fb.err.Error()
	case fb.res.Status == chain.Rejected:
		return store.BlockRejected, fb.res.Reason
	case fb.res.Status != chain.Accepted:
		reason := fb.res.Status.String()
		if fb.res.Reason != "" {
			reason += ": " + fb.res.Reason
		}
		return store.BlockSubmitted, reason
	}
	return store.BlockSubmitted, ""
}

// spooled is the block as it travels with its share through the spool, so
// that the blocks row is stored even when the insert below cannot be.
func (fb *foundBlock) spooled() *store.BlockFound {
	t := fb.e.job.Template
	st, reason := fb.status()
	if len(reason) > 255 {
		reason = reason[:255]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	return &store.BlockFound{Hash: fb.hash, PrevHash: t.PrevHash, Reward: t.CoinbaseValue,
		NetworkDifficulty: chain.TargetDifficulty(t.Target()), Status: st, Reason: reason}
}

// blockRow is the blocks row for fb.
func (s *Server) blockRow(fb *foundBlock, share store.Share, seq uint64) store.Block {
	t := fb.e.job.Template
	st, reason := fb.status()
	return store.Block{
		Height:            fb.e.height,
		Hash:              fb.hash.String(),
		PrevHash:          t.PrevHash.String(),
		FoundAt:           share.Time,
		Username:          fb.user,
		Worker:            fb.worker,
		Reward:            t.CoinbaseValue,
		NetworkDifficulty: chain.TargetDifficulty(t.Target()),
		Status:            st,
		StatusReason:      reason,
		InstanceID:        s.cfg.InstanceID,
		LastShare:         store.SharePos{Time: share.Time, Instance: s.cfg.InstanceID, Seq: seq},
	}
}

// recordBlockSync inserts the block, waits for its share to be stored, sums
// the round and writes the dump.
func (s *Server) recordBlockSync(ctx context.Context, fb *foundBlock, share store.Share, seq uint64) error {
	row := s.blockRow(fb, share, seq)
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), insertBlockTimeout)
	b, err := s.cfg.Blocks.InsertBlock(ictx, row)
	cancel()
	switch {
	case errors.Is(err, store.ErrExists):
		b = row // the drainer stored it with its share first
	case err != nil && seq > 0:
		// The row travels with the share through the spool and is stored
		// with it; the dump is written then (WriteBlockDump).
		return fmt.Errorf("insert block (it is stored with its share later): %w", err)
	case err != nil:
		return fmt.Errorf("insert block: %w", err)
	}

	// The round summary needs the block's share in the database; wait for
	// the drainer, but not much past a shutdown.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), roundWait)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(shutdownGrace, cancel) })
	defer stop()
	if seq > 0 {
		if err := s.cfg.Stored.WaitStored(wctx, seq); err != nil {
			return fmt.Errorf("wait for the block's share: %w", err)
		}
	}
	return s.WriteBlockDump(wctx, b)
}

// WriteBlockDump writes <ShareDir>/<height>-<hash>.json for the stored block
// b (its share must be in the database) unless it exists or no ShareDir is
// set. Both the finding session and stratumd's drainer callback (for the
// dump that could not be written when the block was found: the database
// was down, or the process restarted) call it, usually at the same moment:
// one write runs at a time per block, and a caller that waited for a
// successful one does not repeat it.
func (s *Server) WriteBlockDump(ctx context.Context, b store.Block) error {
	if s.cfg.ShareDir == "" {
		return nil
	}
	name := filepath.Join(s.cfg.ShareDir, fmt.Sprintf("%d-%s.json", b.Height, b.Hash))
	return s.dumps.do(ctx, b.Hash, func() error {
		if _, err := os.Stat(name); err == nil {
			return nil
		}
		return s.buildBlockDump(ctx, b)
	})
}

func (s *Server) buildBlockDump(wctx context.Context, b store.Block) error {
	var after store.SharePos
	var from *string
	prev, err := s.cfg.Blocks.PreviousBlock(wctx, b.LastShare)
	switch {
	case err == nil:
		after, from = prev.LastShare, &prev.Hash
	case errors.Is(err, store.ErrNotFound):
	default:
		return fmt.Errorf("previous block: %w", err)
	}
	users, err := s.cfg.Blocks.RoundSummary(wctx, after, b.LastShare)
	if err != nil {
		return fmt.Errorf("round summary: %w", err)
	}
	if users == nil {
		users = []store.RoundUser{}
	}
	dump := BlockDump{
		Height:            b.Height,
		Hash:              b.Hash,
		PrevHash:          b.PrevHash,
		Time:              b.FoundAt.UTC(),
		Finder:            DumpFinder{User: b.Username, Worker: b.Worker},
		Reward:            b.Reward,
		NetworkDifficulty: b.NetworkDifficulty,
		Status:            string(b.Status),
		Round:             RoundDump{From: from, Users: users},
	}
	name, err := writeDump(s.cfg.ShareDir, &dump)
	if err != nil {
		return err
	}
	s.log.Info("stratum: block share dump written", "file", name, "users", len(users))
	return nil
}

// writeDump writes d to dir/<height>-<hash>.json through a temporary file,
// fsync and rename, so that a reader never sees a partial file.
func writeDump(dir string, d *BlockDump) (string, error) {
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode block dump: %w", err)
	}
	data = append(data, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("share dir: %w", err)
	}
	name := filepath.Join(dir, fmt.Sprintf("%d-%s.json", d.Height, d.Hash))
	f, err := os.CreateTemp(dir, ".dump-*.tmp")
	if err != nil {
		return "", fmt.Errorf("block dump: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("block dump %s: %w", name, err)
	}
	if dh, err := os.Open(dir); err == nil {
		_ = dh.Sync()
		dh.Close()
	}
	return name, nil
}
