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

// zmqSession runs one ZMQ subscription until it fails; got says whether a
// message arrived.
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
	var last uint32
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
		if got && seq != last+1 {
			n.log.Debug("rpcsource: ZMQ hashblock sequence gap", "after", last, "got", seq)
		}
		got, last = true, seq
		n.log.Debug("rpcsource: ZMQ hashblock", "hash", hash, "seq", seq)
		if err := n.refreshTip(ctx); err != nil && ctx.Err() == nil {
			n.log.Debug("rpcsource: tip refresh after ZMQ failed", "err", err)
		}
	}
}
