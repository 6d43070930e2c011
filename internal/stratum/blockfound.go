package stratum

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"runtime/debug"
	"time"
	"unicode/utf8"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	btcwire "github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

const (
	// submitBlockTimeout bounds handing a block to the chain source.
	submitBlockTimeout = 30 * time.Second
	// insertBlockTimeout bounds the direct insert of a block whose share
	// the spool refused.
	insertBlockTimeout = 30 * time.Second
)

// foundBlock is a share that met the network target, after SubmitBlock.
type foundBlock struct {
	e      *jobEntry
	hash   chainhash.Hash
	user   string
	worker string
	block  *btcwire.MsgBlock // nil when it could not be assembled
	raw    []byte            // block serialized (witness included); nil likewise
	res    chain.SubmitResult
	err    error // the block could not be assembled or handed over
}

// submitBlock assembles the block of an accepted share and hands it to the
// chain source at once, before anything else is done with the share; then
// it serializes the block, which travels with the share.
func (c *session) submitBlock(cs *checkedShare, p *wire.SubmitParams, now time.Time) *foundBlock {
	fb := &foundBlock{e: cs.e, hash: cs.hash, user: cs.w.user, worker: cs.w.worker}
	blk, err := cs.job.Block(c.en1[:], p.Extranonce2, p.NTime, p.Nonce, cs.version)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.group.ctx), submitBlockTimeout)
		fb.res, fb.err = c.srv.cfg.Source.SubmitBlock(ctx, blk)
		cancel()
		var buf bytes.Buffer
		buf.Grow(blk.SerializeSize())
		if serr := blk.Serialize(&buf); serr == nil {
			fb.block, fb.raw = blk, buf.Bytes()
		} else {
			c.logger().Error("stratum: found block does not serialize", "hash", cs.hash.String(), "err", serr)
		}
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
	case fb.err != nil && fb.block != nil:
		c.srv.st.blocksRejected.Add(1)
		log.Error("stratum: BLOCK FOUND BUT NOT HANDED OVER", "err", fb.err,
			"then", "stored with its share; handed over again until a node has it")
	case fb.err != nil:
		c.srv.st.blocksRejected.Add(1)
		log.Error("stratum: BLOCK FOUND BUT NOT ASSEMBLED", "err", fb.err)
	case fb.res.Status == chain.Rejected:
		c.srv.st.blocksRejected.Add(1)
		log.Error("stratum: BLOCK FOUND BUT REJECTED BY THE NODE", "reason", fb.res.Reason)
	default:
		log.Info("stratum: block found", "status", fb.res.Status.String(), "reason", fb.res.Reason)
	}
	return fb
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

// follow reports whether fb goes to the resubmitter: every assembled block
// the node did not reject. One that was not handed over, or that the node
// holds as a duplicate or inconclusive, is handed over again; an accepted
// one is followed too, because btcd answers null (accepted) for a block
// it put on a side chain as well, and so that its row becomes confirmed as
// soon as a node has it in its best chain.
func (fb *foundBlock) follow() bool {
	return fb.block != nil && (fb.err != nil || fb.res.Status != chain.Rejected)
}

// spooled is the block as it travels with its share through the spool:
// the blocks row's fields and the serialized block.
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
		NetworkDifficulty: chain.TargetDifficulty(t.Target()), Status: st, Reason: reason, Raw: fb.raw}
}

// foundBlockDone finishes with fb once its share was spooled (spoolErr
// nil) or refused by the spool: a block the node did not reject goes to
// the resubmitter; a block whose share the spool refused is inserted
// into blocks directly (raw included), in a goroutine of the session's
// listener group (Serve waits for it), and its dump is left to the
// recorder. A block whose share was spooled is recorded by the recorder
// behind the drainer: nothing else to do here.
func (s *Server) foundBlockDone(g *serveGroup, fb *foundBlock, share store.Share, spoolErr error) {
	if fb.follow() && s.cfg.Resubmitter != nil {
		s.cfg.Resubmitter.Add(fb.block, fb.e.height)
	}
	if spoolErr == nil {
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				s.st.panics.Add(1)
				s.log.Error("stratum: block insert panicked", "hash", fb.hash.String(), "panic", r, "stack", string(debug.Stack()))
			}
		}()
		s.insertFoundBlock(g.ctx, fb, share)
	}()
}

// insertFoundBlock inserts the blocks row of fb, whose share the spool
// refused, and hands it to the recorder for its dump. When that fails as
// well, the block is logged with its bytes: it is then kept nowhere else
// but in the resubmitter's memory.
func (s *Server) insertFoundBlock(ctx context.Context, fb *foundBlock, share store.Share) {
	// The row the drainer would have stored with the share; its share has
	// no spool position, and seq 0 sorts it before the instance's spooled
	// shares of the same microsecond.
	row := share.BlockRow(0)
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), insertBlockTimeout)
	b, err := s.cfg.Blocks.InsertBlock(ictx, row)
	cancel()
	log := s.log.With("height", fb.e.height, "hash", fb.hash.String())
	switch {
	case err == nil:
		log.Warn("stratum: block inserted directly: the spool refused its share")
		if s.cfg.Recorder != nil {
			s.cfg.Recorder.Add(b)
		}
	case errors.Is(err, store.ErrExists):
		log.Info("stratum: block already recorded")
	default:
		log.Error("stratum: FOUND BLOCK NOT STORED: the spool and the database refused it; kept in memory for resubmission",
			"err", err, "block_hex", hex.EncodeToString(fb.raw))
	}
}
