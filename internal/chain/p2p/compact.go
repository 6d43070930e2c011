package p2p

import (
	"math/rand/v2"
	"sync"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain/p2p/bip152"
)

// directFetchSpacings is Core's CanDirectFetch window: the tip is recent
// when it is younger than 20 target spacings.
const directFetchSpacings = 20

// recentCompact is the compact block of the last block announced as one
// (Core's m_most_recent_compact_block): every peer gets the same bytes and
// nonce.
type recentCompact struct {
	hash chainhash.Hash
	msg  *bip152.MsgCmpctBlock
}

// announcement is one block to announce to every peer: its header, and
// the messages each kind of peer gets, built at most once.
type announcement struct {
	s      *server
	hash   chainhash.Hash
	header wire.BlockHeader
	// parentHeight is the height of the block's parent, -1 when the
	// parent is unknown (then every peer gets an inv).
	parentHeight int32
	// fast: the block may be pushed as a compact block. Before
	// validation (Core's NewPoWValidBlock) only when segwit is active and
	// no block of its height was pushed before (m_highest_fast_announce);
	// after (SendMessages) always.
	fast bool
	// minVersion is the lowest protocol version a compact block is
	// pushed to: 70015 before validation, 70014 after.
	minVersion uint32
	// load returns the full block, for the compact block.
	load func() (*btcutil.Block, error)

	once    sync.Once
	cmpct   *bip152.MsgCmpctBlock
	headers *wire.MsgHeaders
	inv     *wire.MsgInv
}

// newAnnouncement describes the block with hash and header; load returns
// it in full when a compact block is needed. validated tells a block our
// chain accepted from one not validated yet (a found block).
func (s *server) newAnnouncement(hash *chainhash.Hash, header *wire.BlockHeader, validated bool,
	load func() (*btcutil.Block, error)) *announcement {
	a := &announcement{s: s, hash: *hash, header: *header, parentHeight: -1, load: load,
		fast: true, minVersion: bip152.ProtocolVersion}
	best := s.chain.BestSnapshot()
	if header.PrevBlock == best.Hash {
		a.parentHeight = best.Height
	} else if h, err := s.chain.BlockHeightByHash(&header.PrevBlock); err == nil {
		a.parentHeight = h
	}
	if !validated {
		a.minVersion = bip152.InvalidCBNoBanVersion
		segwit, _ := s.chain.IsDeploymentActive(chaincfg.DeploymentSegwit)
		a.fast = segwit && a.parentHeight >= 0 && s.takeFastAnnounce(a.parentHeight+1)
	}
	return a
}

// takeFastAnnounce reports whether no block of height was pushed before
// validation yet, and records that one is.
func (s *server) takeFastAnnounce(height int32) bool {
	for {
		highest := s.highestFastAnnounce.Load()
		if height <= highest {
			return false
		}
		if s.highestFastAnnounce.CompareAndSwap(highest, height) {
			return true
		}
	}
}

// compact returns the announced block's compact block, nil when the block
// cannot be had.
func (a *announcement) compact() *bip152.MsgCmpctBlock {
	a.once.Do(func() {
		b, err := a.load()
		if err != nil {
			a.s.log.Warn("cannot build compact block", "hash", a.hash, "err", err)
			return
		}
		a.cmpct = a.s.newCompact(b)
	})
	return a.cmpct
}

// newCompact builds b's compact block with a fresh nonce and keeps it as
// the recent one.
func (s *server) newCompact(b *btcutil.Block) *bip152.MsgCmpctBlock {
	m, err := bip152.NewCmpctBlock(b.MsgBlock(), rand.Uint64())
	if err != nil {
		s.log.Warn("cannot build compact block", "hash", b.Hash(), "err", err)
		return nil
	}
	s.recentCompact.Store(&recentCompact{hash: *b.Hash(), msg: m})
	return m
}

// announce queues a to every peer not known to have the block (see
// sendTo) and returns how many it went to. Compact blocks are built and
// queued in a tracked goroutine: building one takes milliseconds on a full
// mainnet block (docs/BENCHMARKS.md), which must delay neither the other
// peers' announcements nor, for a found block, our own validation.
func (s *server) announce(a *announcement) int {
	var push []*serverPeer
	n := 0
	s.forEachPeer(func(sp *serverPeer) {
		sent, wantsCompact := a.sendTo(sp)
		if sent {
			n++
		}
		if wantsCompact {
			push = append(push, sp)
		}
	})
	if len(push) > 0 {
		s.track(func() { a.pushCompact(push) })
	}
	return n
}

// pushCompact queues the compact block to peers, or, when it cannot be
// built, headers or an inv.
func (a *announcement) pushCompact(peers []*serverPeer) {
	m := a.compact()
	for _, sp := range peers {
		if m != nil {
			sp.QueueMessage(m, nil)
		} else {
			a.sendHeadersOrInv(sp, true)
		}
	}
}

// sendTo announces the block to sp the way Bitcoin Core chooses
// (PeerManagerImpl::NewPoWValidBlock and SendMessages): a compact block to
// a peer that asked for high-bandwidth compact blocks (sendcmpct(1, 2))
// and has the parent, when the block may be pushed (see fast and
// minVersion), reported by wantsCompact for the caller to queue; else a
// headers message to a peer that sent sendheaders and has the parent;
// else an inv. sent is false when sp already knew the block.
func (a *announcement) sendTo(sp *serverPeer) (sent, wantsCompact bool) {
	if !sp.addKnownBlock(&a.hash) {
		return false, false
	}
	connects := a.parentHeight >= 0 && sp.hasBlock(&a.header.PrevBlock, a.parentHeight)
	if connects && a.fast && sp.cmpctHB.Load() && sp.ProtocolVersion() >= a.minVersion {
		return true, true
	}
	a.sendHeadersOrInv(sp, connects)
	return true, false
}

// sendHeadersOrInv queues a headers message to sp when it asked for them
// and the block connects to what it has, else an inv.
func (a *announcement) sendHeadersOrInv(sp *serverPeer, connects bool) {
	if connects && sp.WantsHeaders() {
		if a.headers == nil {
			a.headers = wire.NewMsgHeaders()
			_ = a.headers.AddBlockHeader(&a.header)
		}
		sp.QueueMessage(a.headers, nil)
		return
	}
	if a.inv == nil {
		a.inv = wire.NewMsgInvSizeHint(1)
		_ = a.inv.AddInvVect(wire.NewInvVect(wire.InvTypeBlock, &a.hash))
	}
	sp.QueueMessage(a.inv, nil)
}

// hasBlock reports whether the peer has the block hash at height, as far
// as we know (Core's PeerHasHeader): it announced it, we sent or announced
// it to the peer, or the peer claims a chain at least that high.
func (sp *serverPeer) hasBlock(hash *chainhash.Hash, height int32) bool {
	sp.mu.Lock()
	_, ok := sp.known[*hash]
	sp.mu.Unlock()
	return ok || sp.LastBlock() >= height
}

// onBIP152 handles the BIP 152 messages bip152Conn takes out of the
// stream, or the error of a malformed one (which bans the peer); an error
// returned ends the connection.
func (sp *serverPeer) onBIP152(msg wire.Message, err error) error {
	if err != nil {
		sp.addBanScore(sp.s.cfg.BanThreshold, 0, "malformed message: "+err.Error())
		return err
	}
	if !sp.takeToken() {
		sp.addBanScore(0, 1, "message flood")
	}
	switch m := msg.(type) {
	case *bip152.MsgSendCmpct:
		// Core ignores every version but 2.
		if m.Version == bip152.Version {
			sp.cmpct.Store(true)
			sp.cmpctHB.Store(m.HighBandwidth)
			sp.s.log.Debug("peer wants compact blocks", "peer", sp.String(), "high_bandwidth", m.HighBandwidth)
		}
	case *bip152.MsgGetBlockTxn:
		sp.onGetBlockTxn(m)
	case *bip152.MsgCmpctBlock, *bip152.MsgBlockTxn:
		// We never ask for compact blocks (no sendcmpct(1), no getdata
		// MSG_CMPCT_BLOCK): ignored like Core ignores a blocktxn it did
		// not ask for.
	}
	return nil
}

// onGetBlockTxn answers getblocktxn like Core: from the announced blocks
// (before they are validated) or a block at most MaxBlockTxnDepth below
// the tip with blocktxn, from an older block with the whole block, not at
// all for an unknown block; an index past the block is misbehaviour.
func (sp *serverPeer) onGetBlockTxn(m *bip152.MsgGetBlockTxn) {
	s := sp.s
	b, ok := s.announced.get(&m.BlockHash, s.cfg.Now())
	if !ok {
		var err error
		if b, err = s.chain.BlockByHash(&m.BlockHash); err != nil {
			s.log.Debug("getblocktxn for a block we do not have", "peer", sp.String(), "hash", m.BlockHash)
			return
		}
		if b.Height() < s.chain.BestSnapshot().Height-bip152.MaxBlockTxnDepth {
			sp.QueueMessageWithEncoding(b.MsgBlock(), nil, wire.WitnessEncoding)
			return
		}
	}
	txs := b.MsgBlock().Transactions
	resp := &bip152.MsgBlockTxn{BlockHash: m.BlockHash, Txs: make([]*wire.MsgTx, len(m.Indexes))}
	for i, idx := range m.Indexes {
		if int(idx) >= len(txs) {
			sp.addBanScore(s.cfg.BanThreshold, 0, "getblocktxn with out-of-bounds tx indices")
			return
		}
		resp.Txs[i] = txs[idx]
	}
	sp.QueueMessage(resp, nil)
}

// compactFor answers getdata MSG_CMPCT_BLOCK like Core's
// ProcessGetBlockData: the compact block of an announced block or of a
// block at most MaxCmpctBlockDepth below a recent tip, the whole block
// (with witnesses) otherwise, nil for an unknown block.
func (s *server) compactFor(hash *chainhash.Hash) wire.Message {
	if rc := s.recentCompact.Load(); rc != nil && rc.hash == *hash {
		return rc.msg
	}
	if b, ok := s.announced.get(hash, s.cfg.Now()); ok {
		return s.newCompact(b)
	}
	b, err := s.chain.BlockByHash(hash)
	if err != nil {
		return nil
	}
	best := s.chain.BestSnapshot()
	if s.tipRecent(best.Hash) && b.Height() >= best.Height-bip152.MaxCmpctBlockDepth {
		if m := s.newCompact(b); m != nil {
			return m
		}
	}
	return b.MsgBlock()
}

// tipRecent is Core's CanDirectFetch: the tip is younger than 20 target
// spacings.
func (s *server) tipRecent(tip chainhash.Hash) bool {
	h, err := s.chain.HeaderByHash(&tip)
	if err != nil {
		return false
	}
	return s.cfg.Now().Sub(h.Timestamp) < directFetchSpacings*s.params.TargetTimePerBlock
}
