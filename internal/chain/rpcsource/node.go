package rpcsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"golang.org/x/sync/errgroup"

	"github.com/stratumd/stratumd/internal/backoff"
	"github.com/stratumd/stratumd/internal/chain"
)

// node is one configured node and its connection loop. Its state fields
// are guarded by src.mu.
type node struct {
	src *Source
	ep  endpoint
	rpc *rpcClient
	log *slog.Logger

	// Guarded by src.mu.
	kind            Kind
	healthy         bool
	everUp          bool
	tip             tipInfo
	lastErr         string
	downSince       time.Time
	outages         uint64
	connectFailures uint64
	kick            context.CancelCauseFunc // ends the current session

	signetRefused atomic.Bool // the unmineable-signet line was logged

	// Owned by the node's ZMQ goroutine (one at a time).
	zmqSeq  zmqSeq
	zmqGaps atomic.Uint64 // breaks in the hashblock sequence
}

// errWSClosed reports that btcd closed the notification websocket.
var errWSClosed = errors.New("rpcsource: websocket closed")

// run keeps n connected until ctx ends: a session at a time, with capped
// exponential backoff between failed ones.
func (n *node) run(ctx context.Context) {
	retry := backoff.Backoff{Min: n.src.cfg.BackoffMin, Max: n.src.cfg.BackoffMax}
	for {
		connected, err := n.session(ctx)
		if ctx.Err() != nil {
			return
		}
		n.src.nodeDown(n, err, !connected)
		if connected {
			retry.Reset()
		}
		if backoff.Sleep(ctx, retry.Next()) != nil {
			return
		}
	}
}

// session connects to the node, marks it up and follows it until something
// fails. connected says whether the node was marked up.
func (n *node) session(ctx context.Context) (connected bool, err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n.src.mu.Lock()
	n.kick = cancel
	n.src.mu.Unlock()
	defer func() {
		n.src.mu.Lock()
		n.kick = nil
		n.src.mu.Unlock()
		if cause := context.Cause(sctx); ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause // the session was ended by a failed Template or SubmitBlock call
		}
	}()

	kind, err := n.handshake(sctx)
	if err != nil {
		return false, err
	}
	var ws *wsConn
	if kind == KindBtcd {
		// Subscribe before reading the tip so that no block falls between.
		if ws, err = n.dialWS(sctx); err != nil {
			return false, err
		}
		defer ws.close()
	}
	tip, err := n.fetchTip(sctx)
	if err != nil {
		return false, err
	}
	n.src.nodeUp(n, kind, tip)

	g, gctx := errgroup.WithContext(sctx)
	g.Go(func() error { return n.pollLoop(gctx) })
	switch kind {
	case KindBtcd:
		g.Go(func() error {
			select {
			case <-gctx.Done():
				return gctx.Err()
			case <-ws.done:
				return errWSClosed
			}
		})
	case KindCore:
		g.Go(func() error { return n.longPollLoop(gctx) })
		if n.ep.ZMQBlock != "" {
			g.Go(func() error { n.zmqLoop(gctx); return nil })
		}
	}
	return true, g.Wait()
}

// handshake detects the node's kind (unless configured) and checks that
// it is on the configured network.
func (n *node) handshake(ctx context.Context) (Kind, error) {
	kind, err := n.detect(ctx)
	if err != nil {
		return "", err
	}
	var genesis string
	if err := n.call(ctx, "getblockhash", []any{0}, &genesis); err != nil {
		return "", err
	}
	h, err := parseHash(genesis)
	if err != nil {
		return "", fmt.Errorf("%w: getblockhash 0: %w", ErrBadReply, err)
	}
	if want := n.src.cfg.Network.GenesisHash; h != *want {
		return "", fmt.Errorf("%w: genesis %s, %s has %s", ErrWrongNetwork, h, n.src.cfg.Network.Name, want)
	}
	if kind == KindBtcd && n.ep.ZMQBlock != "" {
		n.log.Warn("rpcsource: btcd has no ZMQ; ignoring the ZMQ endpoint")
	}
	return kind, nil
}

// detect returns the configured kind, or asks the node: Bitcoin Core
// answers getnetworkinfo (and has no getinfo); btcd v0.24 does not
// implement getnetworkinfo but answers getinfo.
func (n *node) detect(ctx context.Context) (Kind, error) {
	if n.ep.Kind != KindDetect {
		return n.ep.Kind, nil
	}
	var info struct {
		Subversion string `json:"subversion"`
	}
	err := n.call(ctx, "getnetworkinfo", nil, &info)
	switch {
	case err == nil && strings.Contains(strings.ToLower(info.Subversion), "btcd"):
		return KindBtcd, nil
	case err == nil:
		return KindCore, nil
	case isTransport(err):
		return "", err
	case inWarmup(err):
		return "", fmt.Errorf("rpcsource: %s is starting up: %w", n.ep.name, err)
	}
	if err2 := n.call(ctx, "getinfo", nil, nil); err2 != nil {
		if isTransport(err2) {
			return "", err2
		}
		return "", fmt.Errorf("rpcsource: %s: cannot tell the node's kind: getnetworkinfo: %w; getinfo: %w", n.ep.name, err, err2)
	}
	return KindBtcd, nil
}

// call is an RPC call bounded by Config.RequestTimeout.
func (n *node) call(ctx context.Context, method string, params []any, out any) error {
	ctx, cancel := context.WithTimeout(ctx, n.src.cfg.RequestTimeout)
	defer cancel()
	return n.rpc.call(ctx, method, params, out)
}

// template fetches and validates a template.
func (n *node) template(ctx context.Context) (*chain.Template, error) {
	ctx, cancel := context.WithTimeout(ctx, n.src.cfg.RequestTimeout)
	defer cancel()
	raw, err := n.rpc.callRaw(ctx, "getblocktemplate", []any{newGBTRequest("", n.src.cfg.Network)})
	if err != nil {
		return nil, err
	}
	t, _, err := templateFromGBT(raw, n.src.cfg.Network)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.ep.name, err)
	}
	return t, nil
}

// fetchTip asks the node for its best block hash and height.
func (n *node) fetchTip(ctx context.Context) (tipInfo, error) {
	var best string
	if err := n.call(ctx, "getbestblockhash", nil, &best); err != nil {
		return tipInfo{}, err
	}
	hash, err := parseHash(best)
	if err != nil {
		return tipInfo{}, fmt.Errorf("%w: getbestblockhash: %w", ErrBadReply, err)
	}
	return n.fetchHeight(ctx, hash)
}

// fetchHeight returns the tip of the block hash, with its height from
// getblockheader.
func (n *node) fetchHeight(ctx context.Context, hash chainhash.Hash) (tipInfo, error) {
	t := tipInfo{hash: hash, known: true}
	var hdr struct {
		Height *int64 `json:"height"`
	}
	if err := n.call(ctx, "getblockheader", []any{t.hash.String(), true}, &hdr); err != nil {
		return tipInfo{}, err
	}
	if hdr.Height == nil || *hdr.Height < 0 || *hdr.Height > math.MaxInt32 {
		return tipInfo{}, fmt.Errorf("%w: getblockheader %s: no or bad height", ErrBadReply, t.hash)
	}
	t.height = int32(*hdr.Height)
	return t, nil
}

// refreshTip asks the node for its best block hash and, when it changed,
// records the new tip (which signals NewTip if the node is preferred).
func (n *node) refreshTip(ctx context.Context) error {
	var best string
	if err := n.call(ctx, "getbestblockhash", nil, &best); err != nil {
		return err
	}
	hash, err := parseHash(best)
	if err != nil {
		return fmt.Errorf("%w: getbestblockhash: %w", ErrBadReply, err)
	}
	n.src.mu.Lock()
	same := n.tip.known && n.tip.hash == hash
	n.src.mu.Unlock()
	if same {
		return nil
	}
	t, err := n.fetchHeight(ctx, hash)
	if err != nil {
		return err
	}
	n.src.setNodeTip(n, t)
	return nil
}

// pollLoop refreshes the tip every PollInterval: the last resort for lost
// notifications and the health check. A failure ends the session.
func (n *node) pollLoop(ctx context.Context) error {
	tick := time.NewTicker(n.src.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if err := n.refreshTip(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("poll: %w", err)
		}
	}
}

// longPollLoop runs getblocktemplate long polls on a Core node: a long poll
// returns when the tip changed (refresh the tip: NewTip) or the mempool did
// (MempoolChanged). It is the tip source of a Core node without ZMQ or
// whose ZMQ is silent. A transport failure ends the session; a node that
// does not long poll (no longpollid) leaves it to the slow poll.
func (n *node) longPollLoop(ctx context.Context) error {
	params := n.src.cfg.Network
	id := ""
	for {
		callCtx, cancel := ctx, context.CancelFunc(func() {})
		if id == "" {
			callCtx, cancel = context.WithTimeout(ctx, n.src.cfg.RequestTimeout)
		}
		raw, err := n.rpc.callRaw(callCtx, "getblocktemplate", []any{newGBTRequest(id, n.src.cfg.Network)})
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var t *chain.Template
		var next string
		if err == nil {
			t, next, err = templateFromGBT(raw, params)
			if errors.Is(err, chain.ErrUnmineableSignet) {
				// Nothing to long poll for: no template will do. The
				// slow poll keeps following the tip.
				n.refuseSignet(err)
				return nil
			}
			if err != nil {
				n.src.invalidReplies.Add(1)
			}
		}
		if err != nil {
			if isTransport(err) {
				return fmt.Errorf("long poll: %w", err)
			}
			n.log.Debug("rpcsource: long poll failed; retrying", "err", err)
			id = ""
			if err := backoff.Sleep(ctx, n.src.cfg.PollInterval); err != nil {
				return err
			}
			continue
		}
		if next == "" {
			n.log.Info("rpcsource: node does not long poll; relying on notifications and polling")
			return nil
		}
		// Every reply, the first (plain) one included, is checked against
		// the known tip: a block can arrive between the handshake and the
		// first template, and the long poll on that template's id would
		// not return for it.
		n.src.mu.Lock()
		same := n.tip.known && n.tip.hash == t.PrevHash
		n.src.mu.Unlock()
		switch {
		case !same:
			if err := n.refreshTip(ctx); err != nil {
				if isTransport(err) {
					return fmt.Errorf("long poll: %w", err)
				}
				n.log.Debug("rpcsource: tip refresh failed", "err", err)
			}
		case id != "":
			n.src.onMempool(n)
		}
		id = next
	}
}

// refuseSignet logs, once per node, that the node's signet cannot be mined
// by stratumd (its block challenge needs a signature, BIP 325). Template
// keeps failing with err; this line says why, once, at the first template.
func (n *node) refuseSignet(err error) {
	if n.signetRefused.CompareAndSwap(false, true) {
		n.log.Error("rpcsource: CANNOT MINE THIS SIGNET: every signet block needs a solution to the network's "+
			"challenge (BIP 325) and stratumd signs none; run a custom signet with -signetchallenge=51 "+
			"(OP_TRUE) to mine with stratumd", "err", err)
	}
}
