package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/addrmgr"
	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/connmgr"
	"github.com/btcsuite/btcd/mempool"
	"github.com/btcsuite/btcd/netsync"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain/embedded"
)

// maxBans bounds the ban list; expired bans are pruned first.
const maxBans = 10000

// netsyncLogOnce sets btcd netsync's package logger, which (unlike the
// other btcd packages') is nil until set and would crash Start. This is
// the one package-level variable: the logger it guards is btcd's own
// global.
var netsyncLogOnce sync.Once

// server is the P2P layer: peers, netsync, the connection and address
// managers, bans and the announced-block map. See the package
// documentation.
type server struct {
	cfg    Config
	node   *embedded.Node
	chain  *blockchain.BlockChain
	pool   *mempool.TxPool
	params *chaincfg.Params
	log    *slog.Logger
	devNet bool

	listeners []net.Listener // bound by newServer, owned by cm once run

	sm *netsync.SyncManager
	am *addrmgr.AddrManager // nil with Config.Connect
	cm *connmgr.ConnManager // set by run

	running atomic.Bool
	// quit is closed when shutdown begins; stopReq asks run to stop;
	// stopped is closed when run has released everything.
	quit     chan struct{}
	stopReq  chan struct{}
	stopOnce sync.Once
	stopped  chan struct{}

	// wg tracks peer goroutines, dials and the progress loop.
	wg sync.WaitGroup

	mu       sync.RWMutex
	stopping bool
	peers    map[*serverPeer]struct{}
	bans     map[string]time.Time // host -> banned until

	announced *announcedBlocks

	// pendingAnnounce is the last found block announced, until its first
	// write to a peer is seen.
	pendingAnnounce atomic.Pointer[announceState]
	blocksAnnounced atomic.Uint64
	lastLatency     atomic.Int64
	lastWritten     atomic.Int64 // UnixNano of the last found block's first peer write
	lastAnnounced   atomic.Pointer[chainhash.Hash]

	blocksPerSec atomic.Uint64 // math.Float64bits
	wasSynced    atomic.Bool
}

// announceState measures one found block's announcement.
type announceState struct {
	hash  chainhash.Hash
	start time.Time
	done  atomic.Bool
}

// newServer builds the layer on node, which must have been built with
// DisableMempoolMaintenance. It starts nothing.
func newServer(node *embedded.Node, cfg Config) (*server, error) {
	s := &server{
		cfg:       cfg,
		node:      node,
		chain:     node.Chain(),
		pool:      node.Mempool(),
		params:    node.Params(),
		log:       cfg.Logger.With("component", "p2p", "network", node.Params().Name),
		devNet:    node.Params().Net == wire.TestNet || node.Params().Net == wire.SimNet,
		quit:      make(chan struct{}),
		stopReq:   make(chan struct{}),
		stopped:   make(chan struct{}),
		peers:     make(map[*serverPeer]struct{}),
		bans:      make(map[string]time.Time),
		announced: newAnnouncedBlocks(cfg.AnnounceTTL),
	}
	if len(cfg.Connect) == 0 {
		s.am = addrmgr.New(cfg.DataDir, cfg.Lookup)
	}
	netsyncLogOnce.Do(netsync.DisableLog)
	sm, err := netsync.New(&netsync.Config{
		PeerNotifier: (*notifier)(s),
		Chain:        s.chain,
		TxMemPool:    s.pool,
		ChainParams:  s.params,
		MaxPeers:     cfg.MaxPeers,
	})
	if err != nil {
		return nil, fmt.Errorf("p2p: sync manager: %w", err)
	}
	s.sm = sm
	for _, addr := range cfg.Listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("p2p: listen on %s: %w", addr, err)
		}
		s.listeners = append(s.listeners, l)
	}
	return s, nil
}

// closeListeners closes the listeners (when run never hands them to the
// connection manager).
func (s *server) closeListeners() {
	for _, l := range s.listeners {
		l.Close()
	}
}

// listenAddrs returns the addresses inbound peers are accepted on.
func (s *server) listenAddrs() []net.Addr {
	addrs := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		addrs[i] = l.Addr()
	}
	return addrs
}

// hostAddr is a host:port not resolved until dialled.
type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }

// run starts everything and blocks until ctx ends or stop is called; it
// then disconnects every peer and stops netsync before returning, so the
// node's database can be closed after it.
func (s *server) run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer close(s.stopped)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	listeners := s.listeners

	cmCfg := &connmgr.Config{
		Listeners:      listeners,
		OnAccept:       s.onAccept,
		TargetOutbound: uint32(s.cfg.TargetOutbound),
		RetryDuration:  s.cfg.RetryInterval,
		OnConnection:   s.onConnection,
		Dial: func(a net.Addr) (net.Conn, error) {
			return s.cfg.Dial(ctx, "tcp", a.String())
		},
	}
	persistent := s.cfg.Connect
	if len(persistent) == 0 {
		persistent = s.cfg.AddPeers
		cmCfg.GetNewAddress = s.newAddress
	} else {
		cmCfg.TargetOutbound = uint32(len(persistent))
	}
	for _, l := range listeners {
		s.log.Info("listening for peers", "addr", l.Addr().String())
	}
	cm, err := connmgr.New(cmCfg)
	if err != nil {
		s.closeListeners()
		s.markStopping()
		return fmt.Errorf("p2p: connection manager: %w", err)
	}
	s.mu.Lock()
	s.cm = cm
	s.mu.Unlock()

	s.sm.Start()
	if s.am != nil {
		s.am.Start()
	}
	cm.Start()
	for _, a := range persistent {
		s.connect(a, true)
	}
	if s.am != nil && !s.cfg.DisableDNSSeed && len(s.params.DNSSeeds) > 0 {
		connmgr.SeedFromDNS(s.params, wire.SFNodeNetwork|wire.SFNodeWitness, s.cfg.Lookup,
			func(addrs []*wire.NetAddressV2) {
				// Bitcoin Core does the same: the seeds' addresses come
				// from the seed itself.
				s.am.AddAddresses(addrs, addrs[0])
			})
	}
	s.wg.Go(func() { s.progressLoop(ctx) })
	best := s.chain.BestSnapshot()
	s.log.Info("p2p started", "height", best.Height, "connect", s.cfg.Connect,
		"addpeer", s.cfg.AddPeers, "dns_seeds", s.am != nil && !s.cfg.DisableDNSSeed)

	select {
	case <-ctx.Done():
	case <-s.stopReq:
	}
	cancel() // aborts dials in progress
	s.markStopping()
	cm.Stop()
	s.disconnectAll()
	s.wg.Wait()
	cm.Wait()
	err = s.sm.Stop()
	if s.am != nil {
		err = errors.Join(err, s.am.Stop())
	}
	s.log.Info("p2p stopped", "height", s.chain.BestSnapshot().Height)
	return err
}

// markStopping refuses new peers and dials from now on.
func (s *server) markStopping() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopping {
		s.stopping = true
		close(s.quit)
	}
}

// stop asks run to return and waits until it has (at once when run never
// started).
func (s *server) stop() {
	s.stopOnce.Do(func() { close(s.stopReq) })
	if s.running.CompareAndSwap(false, true) {
		// run never ran and now never will.
		s.closeListeners()
		s.markStopping()
		close(s.stopped)
		return
	}
	<-s.stopped
}

// disconnectAll disconnects every peer.
func (s *server) disconnectAll() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for sp := range s.peers {
		sp.Disconnect()
	}
}

// track runs f as a tracked goroutine unless the layer is stopping.
func (s *server) track(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.wg.Go(f)
	return true
}

// connect asks the connection manager for an outbound connection to addr.
func (s *server) connect(addr string, permanent bool) bool {
	s.mu.RLock()
	cm := s.cm
	s.mu.RUnlock()
	if cm == nil {
		return false
	}
	return s.track(func() {
		cm.Connect(&connmgr.ConnReq{Addr: hostAddr(addr), Permanent: permanent})
	})
}

// newAddress picks an outbound candidate from the address manager, as
// btcd's server does: not banned, not in a network group we are already
// connected to, preferring the default port and addresses not tried
// recently.
func (s *server) newAddress() (net.Addr, error) {
	groups := s.outboundGroups()
	now := s.cfg.Now()
	for tries := 0; tries < 100; tries++ {
		ka := s.am.GetAddress()
		if ka == nil {
			break
		}
		na := ka.NetAddress()
		if groups[addrmgr.GroupKey(na)] {
			continue
		}
		if tries < 30 && now.Sub(ka.LastAttempt()) < 10*time.Minute {
			continue
		}
		if tries < 50 && strconv.Itoa(int(na.Port)) != s.params.DefaultPort {
			continue
		}
		legacy := na.ToLegacy()
		if legacy == nil || s.isBanned(legacy.IP.String()) {
			continue
		}
		s.am.Attempt(na)
		return hostAddr(net.JoinHostPort(legacy.IP.String(), strconv.Itoa(int(na.Port)))), nil
	}
	return nil, errors.New("p2p: no valid address to connect to")
}

// outboundGroups returns the network groups of the outbound peers.
func (s *server) outboundGroups() map[string]bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := make(map[string]bool, len(s.peers))
	for sp := range s.peers {
		if !sp.Inbound() {
			if na := sp.NA(); na != nil {
				g[addrmgr.GroupKey(na)] = true
			}
		}
	}
	return g
}

// onAccept handles an inbound connection from the connection manager.
func (s *server) onAccept(conn net.Conn) {
	host, _, err := net.SplitHostPort(conn.RemoteAddr().String())
	if err != nil || s.isBanned(host) {
		s.log.Debug("refusing banned or unparsable inbound peer", "addr", conn.RemoteAddr().String())
		conn.Close()
		return
	}
	s.mu.RLock()
	inbound := 0
	for sp := range s.peers {
		if sp.Inbound() {
			inbound++
		}
	}
	total := len(s.peers)
	s.mu.RUnlock()
	if total >= s.cfg.MaxPeers || inbound >= s.cfg.MaxPeers-s.cfg.TargetOutbound {
		s.log.Debug("refusing inbound peer: too many peers", "addr", conn.RemoteAddr().String())
		conn.Close()
		return
	}
	s.startPeer(conn, nil)
}

// onConnection handles an established outbound connection.
func (s *server) onConnection(req *connmgr.ConnReq, conn net.Conn) {
	s.mu.RLock()
	full := len(s.peers) >= s.cfg.MaxPeers
	s.mu.RUnlock()
	if full && !req.Permanent {
		conn.Close()
		s.cm.Disconnect(req.ID())
		return
	}
	s.startPeer(conn, req)
}

// isBanned reports whether host is banned now.
func (s *server) isBanned(host string) bool {
	s.mu.RLock()
	until, ok := s.bans[host]
	s.mu.RUnlock()
	return ok && s.cfg.Now().Before(until)
}

// banHost bans host for BanDuration, pruning expired bans and, past
// maxBans, the ban closest to expiry.
func (s *server) banHost(host string) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bans) >= maxBans {
		var oldest string
		var oldestUntil time.Time
		for h, until := range s.bans {
			if !now.Before(until) {
				delete(s.bans, h)
				continue
			}
			if oldest == "" || until.Before(oldestUntil) {
				oldest, oldestUntil = h, until
			}
		}
		if len(s.bans) >= maxBans {
			delete(s.bans, oldest)
		}
	}
	s.bans[host] = now.Add(s.cfg.BanDuration)
}

// forEachPeer calls f for every peer that completed the handshake.
func (s *server) forEachPeer(f func(sp *serverPeer)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for sp := range s.peers {
		if sp.registered.Load() && sp.Connected() {
			f(sp)
		}
	}
}

// bestPeerHeight returns the highest block height the handshaked outbound
// peers claim and how many such peers there are. Inbound peers' claims are
// ignored: anyone can connect and claim any height.
func (s *server) bestPeerHeight() (height int32, n int) {
	s.forEachPeer(func(sp *serverPeer) {
		if sp.Inbound() {
			return
		}
		n++
		height = max(height, sp.LastBlock())
	})
	return height, n
}

// synced decides whether the node is current: the chain is
// (blockchain.IsCurrent; always on regtest and simnet, whose tips may be
// old) and no outbound peer claims a higher block. Without outbound peers
// a node on regtest or simnet is synced (it mines alone); on the other
// networks it is not: its blocks would go nowhere.
func (s *server) synced() bool {
	if !s.devNet && !s.chain.IsCurrent() {
		return false
	}
	peerHeight, n := s.bestPeerHeight()
	if n == 0 {
		return s.devNet
	}
	return s.chain.BestSnapshot().Height >= peerHeight
}

// Stats is a snapshot of the P2P layer for logs and metrics.
type Stats struct {
	// Peers counts the peers that completed the handshake; Inbound and
	// Outbound split them.
	Peers, Inbound, Outbound int
	// Banned counts the addresses banned now.
	Banned int
	// Height is the best chain's height; BestPeerHeight the highest
	// height an outbound peer claims.
	Height, BestPeerHeight int32
	// Progress is Height / BestPeerHeight, at most 1 (1 without peers).
	Progress float64
	// BlocksPerSecond is the chain's growth rate over the last progress
	// interval.
	BlocksPerSecond float64
	// Synced is what Template consults: false means chain.ErrNotSynced.
	Synced bool
	// BlocksAnnounced counts found blocks announced to peers.
	BlocksAnnounced uint64
	// LastAnnounceLatency is the time from the relay hook being called
	// with the last found block to its first write to a peer (zero until
	// one was written).
	LastAnnounceLatency time.Duration
	// LastAnnounceWritten is when the last found block was first written
	// to a peer (zero before any), for end-to-end measurements.
	LastAnnounceWritten time.Time
	// LastAnnounced is the hash of the last found block announced.
	LastAnnounced chainhash.Hash
}

// stats returns a snapshot.
func (s *server) stats() Stats {
	var st Stats
	s.forEachPeer(func(sp *serverPeer) {
		st.Peers++
		if sp.Inbound() {
			st.Inbound++
		} else {
			st.Outbound++
			st.BestPeerHeight = max(st.BestPeerHeight, sp.LastBlock())
		}
	})
	now := s.cfg.Now()
	s.mu.RLock()
	for _, until := range s.bans {
		if now.Before(until) {
			st.Banned++
		}
	}
	s.mu.RUnlock()
	st.Height = s.chain.BestSnapshot().Height
	st.Progress = 1
	if st.BestPeerHeight > st.Height {
		st.Progress = float64(st.Height) / float64(st.BestPeerHeight)
	}
	st.BlocksPerSecond = math.Float64frombits(s.blocksPerSec.Load())
	st.Synced = s.synced()
	st.BlocksAnnounced = s.blocksAnnounced.Load()
	st.LastAnnounceLatency = time.Duration(s.lastLatency.Load())
	if ns := s.lastWritten.Load(); ns != 0 {
		st.LastAnnounceWritten = time.Unix(0, ns)
	}
	if h := s.lastAnnounced.Load(); h != nil {
		st.LastAnnounced = *h
	}
	return st
}

// progressLoop logs sync progress every ProgressInterval while the node is
// not synced, and the moment it becomes (or stops being) synced.
func (s *server) progressLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ProgressInterval)
	defer t.Stop()
	lastHeight := s.chain.BestSnapshot().Height
	lastTime := s.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.quit:
			return
		case <-t.C:
		}
		now := s.cfg.Now()
		height := s.chain.BestSnapshot().Height
		if el := now.Sub(lastTime).Seconds(); el > 0 {
			s.blocksPerSec.Store(math.Float64bits(float64(height-lastHeight) / el))
		}
		lastHeight, lastTime = height, now
		s.logProgress()
	}
}

// logProgress logs the sync state.
func (s *server) logProgress() {
	st := s.stats()
	was := s.wasSynced.Swap(st.Synced)
	switch {
	case st.Synced && !was:
		s.log.Info("node synced", "height", st.Height, "peers", st.Peers)
	case !st.Synced && st.Outbound == 0:
		s.log.Warn("not synced: no outbound peers", "height", st.Height, "peers", st.Peers)
	case !st.Synced:
		s.log.Info("syncing", "height", st.Height, "best_peer_height", st.BestPeerHeight,
			"percent", fmt.Sprintf("%.2f", 100*st.Progress),
			"blocks_per_s", fmt.Sprintf("%.1f", st.BlocksPerSecond), "peers", st.Peers)
	}
}
