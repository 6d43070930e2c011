package rpcsource

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/go-zeromq/zmq4"

	"github.com/stratumd/stratumd/internal/backoff"
)

// zmqTopicHashBlock is Core's ZMQ topic for new tips.
const zmqTopicHashBlock = "hashblock"

// zmqDialTimeout bounds one ZMQ connection attempt.
const zmqDialTimeout = 5 * time.Second

// parseHashBlock decodes a Core ZMQ hashblock message: three frames, the
// topic, the 32-byte block hash in RPC (reversed) byte order and a 4-byte
// little-endian sequence number.
func parseHashBlock(frames [][]byte) (chainhash.Hash, uint32, error) {
	if len(frames) != 3 {
		return chainhash.Hash{}, 0, fmt.Errorf("%w: zmq: %d frames, want 3", ErrBadReply, len(frames))
	}
	if string(frames[0]) != zmqTopicHashBlock {
		return chainhash.Hash{}, 0, fmt.Errorf("%w: zmq: topic %q", ErrBadReply, snippet(frames[0]))
	}
	if len(frames[1]) != chainhash.HashSize || len(frames[2]) != 4 {
		return chainhash.Hash{}, 0, fmt.Errorf("%w: zmq: hash of %d bytes, sequence of %d",
			ErrBadReply, len(frames[1]), len(frames[2]))
	}
	var h chainhash.Hash
	copy(h[:], frames[1])
	slices.Reverse(h[:])
	return h, binary.LittleEndian.Uint32(frames[2]), nil
}

// zmqLoop subscribes to the node's hashblock publisher until ctx ends,
// reconnecting with capped backoff whenever the connection drops. Each
// message makes the node refresh its tip (NewTip if it moved). Failures
// never end the session: long polling and the slow poll remain.
func (n *node) zmqLoop(ctx context.Context) {
	retry := backoff.Backoff{Min: n.src.cfg.BackoffMin, Max: n.src.cfg.BackoffMax}
	warned := false
	for {
		got, err := n.zmqSession(ctx)
		if ctx.Err() != nil {
			return
		}
		if got {
			retry.Reset()
		}
		if !warned || got {
			n.log.Warn("rpcsource: ZMQ subscription lost; reconnecting", "endpoint", n.ep.ZMQBlock, "err", err)
			warned = true
		} else {
			n.log.Debug("rpcsource: ZMQ still down", "err", err)
		}
		if backoff.Sleep(ctx, retry.Next()) != nil {
			return
		}
	}
}

// zmqSeq follows a node's hashblock sequence numbers across ZMQ sessions
// (and RPC sessions), so that messages lost while the subscription was
// down are noticed at the next message. Only the node's ZMQ goroutine uses
// it; a node runs one session at a time.
type zmqSeq struct {
	last uint32
	seen bool
}

// next records seq and reports whether it breaks the sequence, and the
// number seen before it. Core numbers each topic's messages from 0 at
// every start and adds one per message (uint32, wrapping), so anything but
// last+1 means hashblock messages were lost — dropped by the publisher
// (its high-water mark), sent while the subscription was down — or the
// node restarted.
func (z *zmqSeq) next(seq uint32) (gap bool, prev uint32) {
	gap, prev = z.seen && seq != z.last+1, z.last
	z.last, z.seen = seq, true
	return gap, prev
}

// zmqSession runs one ZMQ subscription until it fails; got says whether a
// message arrived. Every hashblock makes the node re-read its tip (NewTip
// if it moved). A break in the sequence (zmqSeq.next) is counted
// (Stats.ZMQGaps), logged, and answered with a fresh template even when
// the tip looks unchanged: what the lost messages announced is unknown.
func (n *node) zmqSession(ctx context.Context) (got bool, err error) {
	sub := zmq4.NewSub(ctx,
		zmq4.WithDialerMaxRetries(0),
		zmq4.WithDialerTimeout(zmqDialTimeout),
		zmq4.WithLogger(slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)))
	defer sub.Close()
	if err := sub.Dial(n.ep.ZMQBlock); err != nil {
		return false, err
	}
	if err := sub.SetOption(zmq4.OptionSubscribe, zmqTopicHashBlock); err != nil {
		return false, err
	}
	for {
		msg, err := sub.Recv()
		if err != nil {
			return got, err
		}
		hash, seq, err := parseHashBlock(msg.Frames)
		if err != nil {
			n.src.invalidReplies.Add(1)
			n.log.Warn("rpcsource: bad ZMQ message", "err", err)
			continue
		}
		got = true
		gap, prev := n.zmqSeq.next(seq)
		if gap {
			n.zmqGaps.Add(1)
			n.log.Warn("rpcsource: ZMQ hashblock sequence gap (messages lost or the node restarted); fetching a fresh template",
				"after", prev, "got", seq, "hash", hash)
		} else {
			n.log.Debug("rpcsource: ZMQ hashblock", "hash", hash, "seq", seq)
		}
		if err := n.zmqRefresh(ctx, gap); err != nil && ctx.Err() == nil {
			n.log.Debug("rpcsource: tip refresh after ZMQ failed", "err", err)
		}
	}
}

// zmqRefresh re-reads the node's tip (NewTip if it moved); with resync it
// also signals MempoolChanged when the tip did not move, so the consumer
// builds a fresh template either way.
func (n *node) zmqRefresh(ctx context.Context, resync bool) error {
	n.src.mu.Lock()
	before := n.tip
	n.src.mu.Unlock()
	if err := n.refreshTip(ctx); err != nil {
		return err
	}
	n.src.mu.Lock()
	moved := n.tip != before
	n.src.mu.Unlock()
	if resync && !moved {
		n.src.onMempool(n)
	}
	return nil
}
