package p2p

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/embedded"
)

// Node is the in-process node with its P2P layer: an *embedded.Node (a
// chain.Source) whose found blocks are announced to peers before they are
// validated, whose chain is synced from peers by netsync, and which reports
// chain.ErrNotSynced from Template until it has caught up with its peers.
// Safe for concurrent use.
type Node struct {
	*embedded.Node
	p2p *server
}

var _ chain.Source = (*Node)(nil)

// NewNode builds the embedded node from nodeCfg and its P2P layer from
// cfg: the one call stratumd's wiring makes. It sets nodeCfg's
// BeforeValidate (ours runs first, then the caller's, if any), Synced and
// DisableMempoolMaintenance. It opens the block database and binds the
// inbound listeners (so a bad --p2p-listen fails here) and starts nothing
// else; see Run. On error nothing is left open.
func NewNode(nodeCfg embedded.Config, cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var srv *server // set below; the hooks run only after NewNode returns
	userHook := nodeCfg.BeforeValidate
	nodeCfg.BeforeValidate = func(b *btcutil.Block) {
		srv.announceBlock(b)
		if userHook != nil {
			userHook(b)
		}
	}
	nodeCfg.Synced = func() bool { return srv.synced() }
	nodeCfg.DisableMempoolMaintenance = true
	en, err := embedded.New(nodeCfg)
	if err != nil {
		return nil, err
	}
	srv, err = newServer(en, cfg)
	if err != nil {
		return nil, errors.Join(err, en.Close())
	}
	return &Node{Node: en, p2p: srv}, nil
}

// Run starts the node and the P2P layer and blocks until ctx ends or Close
// is called. It then disconnects the peers and stops netsync first, and
// closes the node (its database) last. It returns ErrAlreadyRunning when
// called twice, and the errors of stopping.
func (n *Node) Run(ctx context.Context) error {
	nodeCtx, cancelNode := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelNode()
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- n.Node.Run(nodeCtx) }()
	p2pErr := n.p2p.run(ctx)
	if errors.Is(p2pErr, ErrAlreadyRunning) {
		cancelNode()
		<-nodeDone
		return p2pErr
	}
	cancelNode()
	return errors.Join(p2pErr, <-nodeDone)
}

// Close stops the P2P layer (waiting for Run's shutdown of it) and closes
// the node. It is idempotent.
func (n *Node) Close() error {
	n.p2p.stop()
	return n.Node.Close()
}

// Stats returns a snapshot of the P2P layer: peers, sync progress, bans
// and the found-block announcement latency.
func (n *Node) Stats() Stats {
	return n.p2p.stats()
}

// Synced reports whether the node is synced with its peers (what Template
// consults).
func (n *Node) Synced() bool {
	return n.p2p.synced()
}

// ListenAddrs returns the addresses inbound peers are accepted on (bound
// by NewNode, from Config.Listen).
func (n *Node) ListenAddrs() []net.Addr {
	return n.p2p.listenAddrs()
}

// Connect adds a persistent outbound peer at host:port while running
// (like btcd's addnode). It fails with ErrStopped when the node is not
// running.
func (n *Node) Connect(addr string) error {
	if !n.p2p.connect(addr, true) {
		return fmt.Errorf("%w: connect %s", ErrStopped, addr)
	}
	return nil
}
