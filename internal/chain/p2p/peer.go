package p2p

import (
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/connmgr"
	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire"
)

// Per-peer limits.
const (
	// knownBlocksSize bounds the per-peer set of block hashes the peer is
	// known to have (peer.Peer keeps its own, unexported, inventory LRU).
	knownBlocksSize = 64
	// maxAnnounceHeaders is the most headers accepted as an unsolicited
	// block announcement (Bitcoin Core announces at most 8).
	maxAnnounceHeaders = 16
	// maxUnsolicitedInv is the largest inv a peer sends without a ban
	// score: Core announces far fewer, btcd answers getblocks with 500.
	maxUnsolicitedInv = 1000
	// maxAddrPerGetAddr is how many addresses one getaddr is answered
	// with.
	maxAddrPerGetAddr = 1000
)

// serverPeer is one connected peer: btcd's peer.Peer plus what the layer
// keeps about it. Safe for concurrent use.
type serverPeer struct {
	*peer.Peer
	s      *server
	req    *connmgr.ConnReq // nil for inbound peers
	host   string
	manual bool // --connect/--addpeer: dropped, never banned

	// regMu orders registration with netsync against removal.
	regMu      sync.Mutex
	registered atomic.Bool
	done       bool

	core      atomic.Bool // user agent /Satoshi:
	relayTx   atomic.Bool // the peer wants transactions (version relay flag)
	feeFilter atomic.Int64
	// awaitHeaders is set when netsync sent getheaders: the next headers
	// message is the answer, everything else is an announcement.
	awaitHeaders atomic.Bool
	sentAddr     atomic.Bool

	blockDone chan struct{}
	txDone    chan struct{}

	mu         sync.Mutex
	banScore   connmgr.DynamicBanScore
	tokens     float64
	lastRefill time.Time
	knownRing  [knownBlocksSize]chainhash.Hash
	knownNext  int
	known      map[chainhash.Hash]struct{}
}

// deadlineConn sets a write deadline before every write, so a peer that
// stops reading fails the write and is dropped instead of letting its send
// queue grow.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// startPeer runs a peer on conn (outbound when req is set).
func (s *server) startPeer(conn net.Conn, req *connmgr.ConnReq) {
	host, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
	sp := &serverPeer{
		s: s, req: req, host: host, manual: req != nil && req.Permanent,
		blockDone:  make(chan struct{}, 1),
		txDone:     make(chan struct{}, 1),
		tokens:     s.cfg.MessageBurst,
		lastRefill: s.cfg.Now(),
		known:      make(map[chainhash.Hash]struct{}, knownBlocksSize),
	}
	cfg := s.peerConfig(sp)
	if req == nil {
		sp.Peer = peer.NewInboundPeer(cfg)
	} else {
		p, err := peer.NewOutboundPeer(cfg, req.Addr.String())
		if err != nil {
			s.log.Warn("cannot make outbound peer", "addr", req.Addr.String(), "err", err)
			conn.Close()
			s.cm.Disconnect(req.ID())
			return
		}
		sp.Peer = p
	}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.peers[sp] = struct{}{}
	s.wg.Go(func() {
		sp.WaitForDisconnect()
		s.peerDone(sp)
	})
	s.mu.Unlock()
	sp.AssociateConnection(deadlineConn{Conn: conn, timeout: s.cfg.WriteTimeout})
}

// peerDone forgets a disconnected peer and tells netsync and the
// connection manager.
func (s *server) peerDone(sp *serverPeer) {
	s.mu.Lock()
	delete(s.peers, sp)
	stopping := s.stopping
	s.mu.Unlock()

	sp.regMu.Lock()
	sp.done = true
	wasRegistered := sp.registered.Swap(false)
	sp.regMu.Unlock()
	if wasRegistered {
		s.sm.DonePeer(sp.Peer)
		s.log.Info("peer disconnected", "peer", sp.String(), "user_agent", sp.UserAgent())
	}
	if sp.req != nil && !stopping {
		if sp.req.Permanent {
			s.cm.Disconnect(sp.req.ID())
		} else {
			s.cm.Remove(sp.req.ID())
			s.track(s.cm.NewConnReq)
		}
	}
}

// peerConfig returns btcd's peer configuration with sp's listeners.
func (s *server) peerConfig(sp *serverPeer) *peer.Config {
	return &peer.Config{
		NewestBlock: func() (*chainhash.Hash, int32, error) {
			best := s.chain.BestSnapshot()
			return &best.Hash, best.Height, nil
		},
		HostToNetAddress: s.hostToNetAddress,
		UserAgentName:    "stratumd",
		UserAgentVersion: s.cfg.UserAgentVersion,
		ChainParams:      s.params,
		Services:         wire.SFNodeNetwork | wire.SFNodeWitness,
		TrickleInterval:  s.cfg.TrickleInterval,
		Listeners: peer.MessageListeners{
			OnVersion:    sp.onVersion,
			OnVerAck:     sp.onVerAck,
			OnInv:        sp.onInv,
			OnHeaders:    sp.onHeaders,
			OnBlock:      sp.onBlock,
			OnTx:         sp.onTx,
			OnNotFound:   sp.onNotFound,
			OnGetData:    sp.onGetData,
			OnGetHeaders: sp.onGetHeaders,
			OnGetBlocks:  sp.onGetBlocks,
			OnAddr:       sp.onAddr,
			OnAddrV2:     sp.onAddrV2,
			OnGetAddr:    sp.onGetAddr,
			OnFeeFilter:  sp.onFeeFilter,
			OnRead:       sp.onRead,
			OnWrite:      sp.onWrite,
		},
	}
}

// hostToNetAddress converts a host to a wire address, through the address
// manager when there is one.
func (s *server) hostToNetAddress(host string, port uint16, services wire.ServiceFlag) (*wire.NetAddressV2, error) {
	if s.am != nil {
		return s.am.HostToNetAddress(host, port, services)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		ips, err := s.cfg.Lookup(host)
		if err != nil {
			return nil, err
		}
		if len(ips) == 0 {
			return nil, errors.New("p2p: no addresses for " + host)
		}
		ip = ips[0]
	}
	return wire.NetAddressV2FromBytes(s.cfg.Now(), services, ip, port), nil
}

// addBanScore adds to the peer's ban score; at the threshold the peer is
// disconnected and, unless it is a manual peer, its address banned.
func (sp *serverPeer) addBanScore(persistent, transient uint32, reason string) {
	sp.mu.Lock()
	score := sp.banScore.Increase(persistent, transient)
	sp.mu.Unlock()
	s := sp.s
	if score < s.cfg.BanThreshold {
		if score > s.cfg.BanThreshold/2 {
			s.log.Warn("peer misbehaving", "peer", sp.String(), "reason", reason, "score", score)
		}
		return
	}
	if sp.manual {
		s.log.Warn("dropping misbehaving manual peer", "peer", sp.String(), "reason", reason, "score", score)
	} else {
		s.log.Warn("banning misbehaving peer", "peer", sp.String(), "reason", reason, "score", score,
			"for", s.cfg.BanDuration)
		s.banHost(sp.host)
	}
	sp.Disconnect()
}

// addKnownBlock records that the peer has (or was told about) hash; it
// reports whether it was new.
func (sp *serverPeer) addKnownBlock(hash *chainhash.Hash) bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if _, ok := sp.known[*hash]; ok {
		return false
	}
	old := sp.knownRing[sp.knownNext]
	delete(sp.known, old)
	sp.knownRing[sp.knownNext] = *hash
	sp.knownNext = (sp.knownNext + 1) % knownBlocksSize
	sp.known[*hash] = struct{}{}
	sp.AddKnownInventory(wire.NewInvVect(wire.InvTypeBlock, hash))
	return true
}

// takeToken takes one token from the peer's message bucket; false means
// the peer is over its rate.
func (sp *serverPeer) takeToken() bool {
	now := sp.s.cfg.Now()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if el := now.Sub(sp.lastRefill).Seconds(); el > 0 {
		sp.tokens = min(sp.s.cfg.MessageBurst, sp.tokens+el*sp.s.cfg.MessageRate)
	}
	sp.lastRefill = now
	if sp.tokens < 1 {
		return false
	}
	sp.tokens--
	return true
}

func (sp *serverPeer) onVersion(_ *peer.Peer, msg *wire.MsgVersion) *wire.MsgReject {
	sp.core.Store(strings.Contains(msg.UserAgent, "/Satoshi:"))
	sp.relayTx.Store(!msg.DisableRelayTx)
	if !sp.Inbound() && !msg.Services.HasFlag(wire.SFNodeWitness) {
		sp.s.log.Info("outbound peer is not witness enabled: disconnecting", "peer", sp.String(),
			"user_agent", msg.UserAgent)
		return wire.NewMsgReject(msg.Command(), wire.RejectNonstandard, "witness required")
	}
	if sp.s.am != nil && !sp.Inbound() {
		sp.s.am.SetServices(sp.NA(), msg.Services)
	}
	return nil
}

func (sp *serverPeer) onVerAck(_ *peer.Peer, _ *wire.MsgVerAck) {
	s := sp.s
	sp.regMu.Lock()
	defer sp.regMu.Unlock()
	if sp.done {
		return
	}
	s.mu.RLock()
	stopping := s.stopping
	s.mu.RUnlock()
	if stopping {
		return
	}
	sp.registered.Store(true)
	// Ask for block announcements as headers; unsolicited headers are
	// turned into an inv for netsync (see onHeaders).
	if sp.ProtocolVersion() >= wire.SendHeadersVersion {
		sp.QueueMessage(wire.NewMsgSendHeaders(), nil)
	}
	s.sm.NewPeer(sp.Peer)
	if s.am != nil && !sp.Inbound() {
		s.am.Good(sp.NA())
		if s.am.NeedMoreAddresses() {
			sp.QueueMessage(wire.NewMsgGetAddr(), nil)
		}
	}
	s.log.Info("peer connected", "peer", sp.String(), "inbound", sp.Inbound(), "user_agent", sp.UserAgent(),
		"height", sp.StartingHeight(), "services", sp.Services())
}

func (sp *serverPeer) onInv(_ *peer.Peer, msg *wire.MsgInv) {
	if len(msg.InvList) > maxUnsolicitedInv {
		sp.addBanScore(0, 20, "oversized inv")
	}
	ours := 0
	for _, iv := range msg.InvList {
		if iv.Type == wire.InvTypeBlock || iv.Type == wire.InvTypeWitnessBlock {
			sp.addKnownBlock(&iv.Hash)
			if sp.s.announced.has(&iv.Hash) {
				ours++
			}
		}
	}
	if ours > 0 {
		// Our own found blocks coming back: our SubmitBlock is
		// processing them; fetching them again would race it.
		kept := wire.NewMsgInvSizeHint(uint(len(msg.InvList) - ours))
		for _, iv := range msg.InvList {
			if (iv.Type == wire.InvTypeBlock || iv.Type == wire.InvTypeWitnessBlock) && sp.s.announced.has(&iv.Hash) {
				continue
			}
			_ = kept.AddInvVect(iv)
		}
		if len(kept.InvList) == 0 {
			return
		}
		msg = kept
	}
	sp.s.sm.QueueInv(msg, sp.Peer)
}

func (sp *serverPeer) onHeaders(_ *peer.Peer, msg *wire.MsgHeaders) {
	if sp.awaitHeaders.Swap(false) {
		sp.s.sm.QueueHeaders(msg, sp.Peer)
		return
	}
	// An announcement (we sent sendheaders). netsync disconnects peers
	// for headers it did not ask for, so hand it the blocks as an inv.
	if len(msg.Headers) == 0 {
		return
	}
	if len(msg.Headers) > maxAnnounceHeaders {
		sp.addBanScore(0, 20, "unsolicited headers")
		return
	}
	inv := wire.NewMsgInvSizeHint(uint(len(msg.Headers)))
	for _, h := range msg.Headers {
		hash := h.BlockHash()
		sp.addKnownBlock(&hash)
		if !sp.s.announced.has(&hash) {
			_ = inv.AddInvVect(wire.NewInvVect(wire.InvTypeBlock, &hash))
		}
	}
	if len(inv.InvList) > 0 {
		sp.s.sm.QueueInv(inv, sp.Peer)
	}
}

func (sp *serverPeer) onBlock(_ *peer.Peer, msg *wire.MsgBlock, buf []byte) {
	block := btcutil.NewBlockFromBlockAndBytes(msg, buf)
	sp.addKnownBlock(block.Hash())
	sp.s.sm.QueueBlock(block, sp.Peer, sp.blockDone)
	select {
	case <-sp.blockDone:
	case <-sp.s.quit:
	}
}

func (sp *serverPeer) onTx(_ *peer.Peer, msg *wire.MsgTx) {
	tx := btcutil.NewTx(msg)
	sp.AddKnownInventory(wire.NewInvVect(wire.InvTypeTx, tx.Hash()))
	sp.s.sm.QueueTx(tx, sp.Peer, sp.txDone)
	select {
	case <-sp.txDone:
	case <-sp.s.quit:
	}
}

func (sp *serverPeer) onNotFound(_ *peer.Peer, msg *wire.MsgNotFound) {
	sp.s.sm.QueueNotFound(msg, sp.Peer)
}

// onGetData serves blocks (the announced map first, then the database) and
// mempool transactions; the rest gets notfound. Blocks are sent one at a
// time, each after the previous one was written.
func (sp *serverPeer) onGetData(_ *peer.Peer, msg *wire.MsgGetData) {
	s := sp.s
	// Like btcd: a full getdata costs 99 transient points, so a peer
	// cannot make us read the chain from disk without pause.
	sp.addBanScore(0, uint32(len(msg.InvList))*99/wire.MaxInvPerMsg, "getdata")
	notFound := wire.NewMsgNotFound()
	done := make(chan struct{}, 1)
	for _, iv := range msg.InvList {
		if !sp.Connected() {
			return
		}
		var out wire.Message
		enc := wire.WitnessEncoding
		switch iv.Type {
		case wire.InvTypeWitnessBlock, wire.InvTypeBlock:
			if iv.Type == wire.InvTypeBlock {
				enc = wire.BaseEncoding
			}
			if b, ok := s.announced.get(&iv.Hash, s.cfg.Now()); ok {
				out = b.MsgBlock()
			} else if b, err := s.chain.BlockByHash(&iv.Hash); err == nil {
				out = b.MsgBlock()
			}
		case wire.InvTypeWitnessTx, wire.InvTypeTx:
			if iv.Type == wire.InvTypeTx {
				enc = wire.BaseEncoding
			}
			if tx, err := s.pool.FetchTransaction(&iv.Hash); err == nil {
				out = tx.MsgTx()
			}
		}
		if out == nil {
			_ = notFound.AddInvVect(iv)
			continue
		}
		sp.QueueMessageWithEncoding(out, done, enc)
		select {
		case <-done:
		case <-s.quit:
			return
		}
	}
	if len(notFound.InvList) > 0 {
		sp.QueueMessage(notFound, nil)
	}
}

// onGetHeaders answers with up to 2000 headers of the best chain, once
// synced (Bitcoin Core and btcd do not serve headers while syncing).
func (sp *serverPeer) onGetHeaders(_ *peer.Peer, msg *wire.MsgGetHeaders) {
	if !sp.s.synced() {
		return
	}
	headers := sp.s.chain.LocateHeaders(msg.BlockLocatorHashes, &msg.HashStop)
	out := wire.NewMsgHeaders()
	for i := range headers {
		_ = out.AddBlockHeader(&headers[i])
	}
	sp.QueueMessage(out, nil)
}

// onGetBlocks answers with an inv of up to 500 blocks of the best chain.
func (sp *serverPeer) onGetBlocks(_ *peer.Peer, msg *wire.MsgGetBlocks) {
	hashes := sp.s.chain.LocateBlocks(msg.BlockLocatorHashes, &msg.HashStop, wire.MaxBlocksPerMsg)
	if len(hashes) == 0 {
		return
	}
	inv := wire.NewMsgInvSizeHint(uint(len(hashes)))
	for i := range hashes {
		_ = inv.AddInvVect(wire.NewInvVect(wire.InvTypeBlock, &hashes[i]))
	}
	sp.QueueMessage(inv, nil)
}

func (sp *serverPeer) onAddr(_ *peer.Peer, msg *wire.MsgAddr) {
	if sp.s.am == nil || len(msg.AddrList) == 0 {
		return
	}
	addrs := make([]*wire.NetAddressV2, 0, len(msg.AddrList))
	for _, na := range msg.AddrList {
		addrs = append(addrs, wire.NetAddressV2FromBytes(na.Timestamp, na.Services, na.IP, na.Port))
	}
	sp.s.am.AddAddresses(addrs, sp.NA())
}

func (sp *serverPeer) onAddrV2(_ *peer.Peer, msg *wire.MsgAddrV2) {
	if sp.s.am == nil || len(msg.AddrList) == 0 {
		return
	}
	sp.s.am.AddAddresses(msg.AddrList, sp.NA())
}

// onGetAddr answers an inbound peer's first getaddr.
func (sp *serverPeer) onGetAddr(_ *peer.Peer, _ *wire.MsgGetAddr) {
	if sp.s.am == nil || !sp.Inbound() || sp.sentAddr.Swap(true) {
		return
	}
	addrs := sp.s.am.AddressCache()
	if len(addrs) > maxAddrPerGetAddr {
		addrs = addrs[:maxAddrPerGetAddr]
	}
	if sp.WantsAddrV2() {
		_, _ = sp.PushAddrV2Msg(addrs)
		return
	}
	legacy := make([]*wire.NetAddress, 0, len(addrs))
	for _, a := range addrs {
		if l := a.ToLegacy(); l != nil {
			legacy = append(legacy, l)
		}
	}
	_, _ = sp.PushAddrMsg(legacy)
}

func (sp *serverPeer) onFeeFilter(_ *peer.Peer, msg *wire.MsgFeeFilter) {
	if msg.MinFee < 0 || msg.MinFee > int64(btcutil.MaxSatoshi) {
		sp.addBanScore(0, 10, "bad feefilter")
		return
	}
	sp.feeFilter.Store(msg.MinFee)
}

// onRead scores malformed messages (btcd's peer tolerates them from
// localhost on regtest; we do not) and floods of small messages.
func (sp *serverPeer) onRead(_ *peer.Peer, _ int, msg wire.Message, err error) {
	if err != nil {
		var merr *wire.MessageError
		if errors.As(err, &merr) {
			sp.addBanScore(sp.s.cfg.BanThreshold, 0, "malformed message: "+merr.Error())
		}
		return
	}
	switch msg.(type) {
	case *wire.MsgBlock, *wire.MsgHeaders, *wire.MsgTx:
		return
	}
	if !sp.takeToken() {
		sp.addBanScore(0, 1, "message flood")
	}
}

// onWrite completes the found-block latency measurement, notes netsync's
// getheaders, and scores the peer when we reject its block or transaction
// as invalid (netsync answers an invalid one with a reject message).
func (sp *serverPeer) onWrite(_ *peer.Peer, _ int, msg wire.Message, err error) {
	s := sp.s
	if st := s.pendingAnnounce.Load(); st != nil && err == nil && announces(msg, &st.hash) {
		if st.done.CompareAndSwap(false, true) {
			now := s.cfg.Now()
			lat := now.Sub(st.start)
			s.lastLatency.Store(int64(lat))
			s.lastWritten.Store(now.UnixNano())
			s.pendingAnnounce.CompareAndSwap(st, nil)
			s.log.Info("found block written to first peer", "hash", st.hash, "peer", sp.String(),
				"latency", lat)
		}
	}
	switch m := msg.(type) {
	case *wire.MsgGetHeaders:
		sp.awaitHeaders.Store(true)
	case *wire.MsgReject:
		if m.Code != wire.RejectInvalid {
			return
		}
		switch m.Cmd {
		case wire.CmdBlock:
			sp.addBanScore(s.cfg.BanThreshold, 0, "invalid block "+m.Hash.String()+": "+m.Reason)
		case wire.CmdTx:
			sp.addBanScore(0, 10, "invalid transaction "+m.Hash.String()+": "+m.Reason)
		}
	}
}

// announces reports whether msg announces or carries the block hash.
func announces(msg wire.Message, hash *chainhash.Hash) bool {
	switch m := msg.(type) {
	case *wire.MsgInv:
		return len(m.InvList) > 0 && m.InvList[0].Hash == *hash
	case *wire.MsgHeaders:
		return len(m.Headers) > 0 && m.Headers[0].BlockHash() == *hash
	case *wire.MsgBlock:
		return m.Header.BlockHash() == *hash
	}
	return false
}
