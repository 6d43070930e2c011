package rpcsource

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
)

// Source is a chain.Source backed by one or more btcd or Bitcoin Core nodes
// over RPC. Build it with New and run it with Run; Updates, Template,
// SubmitBlock and Stats are safe for concurrent use, also before Run
// (Template then fails with ErrNoHealthyNode until a node is connected).
type Source struct {
	cfg      Config
	log      *slog.Logger
	nodes    []*node
	notifier *chain.Notifier
	running  atomic.Bool
	closed   atomic.Bool

	mu  sync.Mutex // guards tip and every node's state fields
	tip tipInfo    // the preferred node's tip, as last notified

	outages, reconnects, connectFailures      atomic.Uint64
	templateErrors, invalidReplies, submitErr atomic.Uint64
}

// tipInfo is a best-chain tip.
type tipInfo struct {
	hash   chainhash.Hash
	height int32
	known  bool
}

var _ chain.Source = (*Source)(nil)

// New validates cfg and returns a Source. It starts nothing and does not
// contact the nodes: Run does. Errors wrap ErrInvalidConfig.
func New(cfg Config) (*Source, error) {
	cfg, eps, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, log: cfg.Logger, notifier: chain.NewNotifier()}
	for _, ep := range eps {
		s.nodes = append(s.nodes, &node{
			src: s,
			ep:  ep,
			rpc: newRPCClient(ep),
			log: cfg.Logger.With("node", ep.name),
		})
	}
	return s, nil
}

// Run connects to every node and keeps the connections up until ctx ends:
// one goroutine per node connects (detecting the node's kind and checking
// its network), follows its tips (btcd: websocket notifications; Core: ZMQ
// and template long polling; both: a slow poll), and on any failure marks
// the node down and reconnects with capped exponential backoff. A node
// outage never makes Run return. Run returns nil once ctx ends and all its
// goroutines have stopped; the Updates channel is then closed and Template
// and SubmitBlock fail with chain.ErrClosed. Run may be called once.
func (s *Source) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	var wg sync.WaitGroup
	for _, n := range s.nodes {
		wg.Go(func() { n.run(ctx) })
	}
	wg.Wait()
	s.closed.Store(true)
	s.notifier.Close()
	for _, n := range s.nodes {
		n.rpc.close()
	}
	return nil
}

// Updates implements chain.Source: NewTip when the preferred node (the
// first healthy one) has a new tip or another node becomes the preferred
// one on another tip; MempoolChanged when the preferred node reports new
// transactions (btcd: transaction notifications; Core: a template long
// poll that returned on the same tip).
func (s *Source) Updates() <-chan chain.Update {
	return s.notifier.Updates()
}

// Template implements chain.Source: getblocktemplate (segwit rules) from
// the first healthy node that returns a valid one, in configured order. A
// node that fails at the transport level is marked down and reconnected;
// the next node is tried. With no healthy node the error wraps
// ErrNoHealthyNode (the stratum server keeps its last job and retries);
// when the nodes answer that they are syncing it wraps chain.ErrNotSynced.
func (s *Source) Template(ctx context.Context) (*chain.Template, error) {
	if s.closed.Load() {
		return nil, chain.ErrClosed
	}
	nodes := s.healthyNodes()
	if len(nodes) == 0 {
		s.templateErrors.Add(1)
		return nil, fmt.Errorf("%w (%d configured)", ErrNoHealthyNode, len(s.nodes))
	}
	var errs []error
	for _, n := range nodes {
		t, err := n.template(ctx)
		if err == nil {
			return t, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("rpcsource: template: %w", ctx.Err())
		}
		switch {
		case notSynced(err):
			err = fmt.Errorf("%w: %w", chain.ErrNotSynced, err)
		case errors.Is(err, chain.ErrUnmineableSignet):
			n.refuseSignet(err)
		case errors.Is(err, ErrBadReply):
			s.invalidReplies.Add(1)
			n.log.Warn("rpcsource: invalid template", "err", err)
		case isTransport(err):
			s.fail(n, err)
		default:
			n.log.Warn("rpcsource: getblocktemplate failed", "err", err)
		}
		errs = append(errs, err)
	}
	s.templateErrors.Add(1)
	return nil, fmt.Errorf("rpcsource: no template from %d healthy nodes: %w", len(nodes), errors.Join(errs...))
}

// SubmitBlock implements chain.Source: the block goes to every configured
// node at once (healthy or not: a node marked down may be back), and the
// best classification wins (accepted from any node, then duplicate, then
// inconclusive, then rejected). Each node's answer is logged. The calls
// are bounded by Config.RequestTimeout but not cancelled with ctx: a found
// block is always handed over. The error is non-nil only when no node
// answered; it then joins each node's failure.
func (s *Source) SubmitBlock(ctx context.Context, b *wire.MsgBlock) (chain.SubmitResult, error) {
	answers, err := s.SubmitBlockEach(ctx, b)
	if err != nil {
		return chain.SubmitResult{}, err
	}
	var best chain.SubmitResult
	var errs []error
	for _, a := range answers {
		if a.Err != nil {
			errs = append(errs, a.Err)
			continue
		}
		if rank(a.Result.Status) > rank(best.Status) {
			best = a.Result
		}
	}
	if best.Status == 0 {
		s.submitErr.Add(1)
		return chain.SubmitResult{}, fmt.Errorf("rpcsource: submit block %s: %w", b.BlockHash(), errors.Join(errs...))
	}
	return best, nil
}

// NodeAnswer is one node's answer to a submitblock.
type NodeAnswer struct {
	// Node is the node's scheme://host:port.
	Node string
	// Result classifies the answer when Err is nil.
	Result chain.SubmitResult
	// Err says why the block was not handed over to this node.
	Err error
}

// SubmitBlockEach is SubmitBlock returning every node's answer, in
// configured order (stratumd submit-block prints them). Its error is for
// a block that cannot be serialized or a stopped Source only.
func (s *Source) SubmitBlockEach(ctx context.Context, b *wire.MsgBlock) ([]NodeAnswer, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: nil block", ErrInvalidBlock)
	}
	if s.closed.Load() {
		return nil, chain.ErrClosed
	}
	var buf bytes.Buffer
	buf.Grow(b.SerializeSize())
	if err := b.Serialize(&buf); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidBlock, err)
	}
	blockHex := hex.EncodeToString(buf.Bytes())
	hash := b.BlockHash()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout)
	defer cancel()

	answers := make([]NodeAnswer, len(s.nodes))
	var wg sync.WaitGroup
	for i, n := range s.nodes {
		wg.Go(func() {
			raw, err := n.rpc.callRaw(ctx, "submitblock", []any{blockHex})
			res, err := classifySubmit(raw, err)
			answers[i] = NodeAnswer{Node: n.ep.name, Result: res, Err: err}
			switch {
			case err != nil:
				if isTransport(err) {
					s.fail(n, err)
				}
				n.log.Error("rpcsource: block not handed over", "hash", hash, "err", err)
			case res.Status == chain.Rejected:
				n.log.Error("rpcsource: SUBMITTED BLOCK REJECTED", "hash", hash, "reason", res.Reason)
			default:
				n.log.Info("rpcsource: block submitted", "hash", hash, "status", res.Status, "reason", res.Reason)
			}
		})
	}
	wg.Wait()
	return answers, nil
}

// healthyNodes returns the healthy nodes in configured order.
func (s *Source) healthyNodes() []*node {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*node
	for _, n := range s.nodes {
		if n.healthy {
			out = append(out, n)
		}
	}
	return out
}

// preferredLocked returns the first healthy node, or nil. s.mu is held.
func (s *Source) preferredLocked() *node {
	for _, n := range s.nodes {
		if n.healthy {
			return n
		}
	}
	return nil
}

// syncTipLocked signals NewTip when the preferred node's tip is not the
// last one signalled. s.mu is held.
func (s *Source) syncTipLocked() {
	p := s.preferredLocked()
	if p == nil || !p.tip.known || (s.tip.known && p.tip.hash == s.tip.hash) {
		return
	}
	s.tip = p.tip
	s.notifier.Notify(chain.Update{Kind: chain.NewTip, Height: s.tip.height, Tip: s.tip.hash})
}

// setNodeTip records n's new tip and signals it if n is preferred.
func (s *Source) setNodeTip(n *node, t tipInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n.tip = t
	s.syncTipLocked()
}

// onMempool signals MempoolChanged if n is the preferred node.
func (s *Source) onMempool(n *node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.preferredLocked() == n && s.tip.known {
		s.notifier.Notify(chain.Update{Kind: chain.MempoolChanged, Height: s.tip.height, Tip: s.tip.hash})
	}
}

// nodeUp marks n healthy on tip t.
func (s *Source) nodeUp(n *node, kind Kind, t tipInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !n.healthy && n.everUp {
		s.reconnects.Add(1)
		n.log.Warn("rpcsource: node reconnected", "kind", kind, "height", t.height,
			"down_for", s.cfg.Now().Sub(n.downSince).Round(time.Millisecond))
	} else if !n.everUp {
		n.log.Info("rpcsource: node connected", "kind", kind, "height", t.height, "tip", t.hash)
	}
	n.healthy, n.everUp, n.kind, n.tip, n.lastErr = true, true, kind, t, ""
	s.syncTipLocked()
}

// nodeDown marks n down after err, counting and logging an outage when it
// was healthy; connecting says the error ended a connection attempt.
func (s *Source) nodeDown(n *node, err error, connecting bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		n.lastErr = err.Error()
	}
	if !n.healthy {
		if !connecting {
			return
		}
		s.connectFailures.Add(1)
		if !n.everUp && n.connectFailures == 0 {
			n.log.Warn("rpcsource: cannot connect to node; retrying", "err", err)
		} else {
			n.log.Debug("rpcsource: node still down", "err", err)
		}
		n.connectFailures++
		return
	}
	n.healthy = false
	n.outages++
	n.downSince = s.cfg.Now()
	s.outages.Add(1)
	n.log.Error("rpcsource: NODE DOWN; reconnecting", "err", err, "outages", n.outages)
	s.syncTipLocked()
}

// fail marks n down after a failed call (so that the next Template skips
// it at once) and makes its connection loop reconnect.
func (s *Source) fail(n *node, err error) {
	s.nodeDown(n, err, false)
	s.mu.Lock()
	kick := n.kick
	s.mu.Unlock()
	if kick != nil {
		kick(err)
	}
}

// rank orders submit statuses: the best answer of several nodes wins.
func rank(st chain.SubmitStatus) int {
	switch st {
	case chain.Accepted:
		return 4
	case chain.Duplicate:
		return 3
	case chain.Inconclusive:
		return 2
	case chain.Rejected:
		return 1
	default:
		return 0
	}
}

// Stats are counters of a Source, for logs and metrics.
type Stats struct {
	// Outages counts nodes going from healthy to down.
	Outages uint64
	// Reconnects counts nodes coming back after an outage.
	Reconnects uint64
	// ConnectFailures counts failed connection attempts to nodes that were
	// down.
	ConnectFailures uint64
	// TemplateErrors counts Template calls that returned no template.
	TemplateErrors uint64
	// InvalidReplies counts templates and notifications that failed
	// validation.
	InvalidReplies uint64
	// SubmitErrors counts SubmitBlock calls that no node answered.
	SubmitErrors uint64
	// ZMQGaps counts breaks in the nodes' ZMQ hashblock sequence numbers
	// (notifications lost, or the node restarted); each one made the node
	// re-read its tip and the consumer fetch a fresh template.
	ZMQGaps uint64
	// Nodes are the per-node states, in configured order.
	Nodes []NodeStats
}

// NodeStats is the state of one node.
type NodeStats struct {
	// Name is the node's scheme://host:port.
	Name string
	// Kind is the node's detected or configured kind.
	Kind Kind
	// Healthy says whether the node is connected and answering.
	Healthy bool
	// Outages counts this node's outages.
	Outages uint64
	// Height and Tip are the node's last known best tip.
	Height int32
	Tip    chainhash.Hash
	// DownSince is when the current outage started (zero while healthy or
	// before the first connection).
	DownSince time.Time
	// LastError is the last failure seen on the node.
	LastError string
	// ZMQGaps counts breaks in this node's ZMQ hashblock sequence.
	ZMQGaps uint64
}

// Stats returns the current counters.
func (s *Source) Stats() Stats {
	st := Stats{
		Outages:         s.outages.Load(),
		Reconnects:      s.reconnects.Load(),
		ConnectFailures: s.connectFailures.Load(),
		TemplateErrors:  s.templateErrors.Load(),
		InvalidReplies:  s.invalidReplies.Load(),
		SubmitErrors:    s.submitErr.Load(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.nodes {
		ns := NodeStats{Name: n.ep.name, Kind: n.kind, Healthy: n.healthy, Outages: n.outages,
			Height: n.tip.height, Tip: n.tip.hash, LastError: n.lastErr, ZMQGaps: n.zmqGaps.Load()}
		st.ZMQGaps += ns.ZMQGaps
		if !n.healthy && n.everUp {
			ns.DownSince = n.downSince
		}
		st.Nodes = append(st.Nodes, ns)
	}
	return st
}
