package p2p

import (
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/mempool"
	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire"
)

// maxAnnounced bounds the announced-block map.
const maxAnnounced = 16

// announcedBlocks keeps the found blocks we announced, for the peers'
// getdata, for a while and regardless of what our own validation made of
// them. Safe for concurrent use.
type announcedBlocks struct {
	ttl   time.Duration
	mu    sync.Mutex
	m     map[chainhash.Hash]announcedBlock
	order []chainhash.Hash
}

type announcedBlock struct {
	block *btcutil.Block
	at    time.Time
}

func newAnnouncedBlocks(ttl time.Duration) *announcedBlocks {
	return &announcedBlocks{ttl: ttl, m: make(map[chainhash.Hash]announcedBlock)}
}

// add keeps b, dropping the oldest entry past maxAnnounced.
func (a *announcedBlocks) add(b *btcutil.Block, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := *b.Hash()
	if _, ok := a.m[h]; ok {
		return
	}
	if len(a.order) >= maxAnnounced {
		delete(a.m, a.order[0])
		a.order = a.order[1:]
	}
	a.m[h] = announcedBlock{block: b, at: now}
	a.order = append(a.order, h)
}

// has reports whether h is one of the blocks kept, expired or not.
func (a *announcedBlocks) has(h *chainhash.Hash) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.m[*h]
	return ok
}

// get returns the block with hash h unless it expired.
func (a *announcedBlocks) get(h *chainhash.Hash, now time.Time) (*btcutil.Block, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.m[*h]
	if !ok || now.Sub(e.at) > a.ttl {
		return nil, false
	}
	return e.block, true
}

// announceBlock is the node's BeforeValidate hook: it writes the found
// block b to every peer at once, before our own validation. Bitcoin Core
// peers (user agent /Satoshi:) get the full block message, which Core
// processes unrequested when it extends its best chain, saving a round
// trip; every other peer (btcd disconnects peers that send blocks it did
// not request) gets a headers message when it asked for headers
// (sendheaders), else an inv, and fetches the block with getdata, served
// from the announced map. It only queues messages; the time to the first
// write is recorded by onWrite.
func (s *server) announceBlock(b *btcutil.Block) {
	start := s.cfg.Now()
	hash := b.Hash()
	st := &announceState{hash: *hash, start: start}
	s.pendingAnnounce.Store(st)
	s.lastAnnounced.Store(hash)
	s.blocksAnnounced.Add(1)
	s.announced.add(b, start)

	msg := b.MsgBlock()
	var headers *wire.MsgHeaders
	var inv *wire.MsgInv
	n := 0
	s.forEachPeer(func(sp *serverPeer) {
		if !sp.addKnownBlock(hash) {
			return
		}
		n++
		switch {
		case sp.core.Load():
			enc := wire.BaseEncoding
			if sp.IsWitnessEnabled() {
				enc = wire.WitnessEncoding
			}
			sp.QueueMessageWithEncoding(msg, nil, enc)
		case sp.WantsHeaders():
			if headers == nil {
				headers = wire.NewMsgHeaders()
				_ = headers.AddBlockHeader(&msg.Header)
			}
			sp.QueueMessage(headers, nil)
		default:
			if inv == nil {
				inv = wire.NewMsgInvSizeHint(1)
				_ = inv.AddInvVect(wire.NewInvVect(wire.InvTypeBlock, hash))
			}
			sp.QueueMessage(inv, nil)
		}
	})
	s.log.Info("found block announced before validation", "hash", hash, "peers", n,
		"queued_in", s.cfg.Now().Sub(start))
}

// notifier implements netsync.PeerNotifier for the server.
type notifier server

// AnnounceNewTransactions relays transactions that entered the mempool to
// the peers that want them (trickled by btcd's peer) and tells the node
// that templates would change.
func (n *notifier) AnnounceNewTransactions(txs []*mempool.TxDesc) {
	if len(txs) == 0 {
		return
	}
	s := (*server)(n)
	s.forEachPeer(func(sp *serverPeer) {
		if !sp.relayTx.Load() {
			return
		}
		filter := sp.feeFilter.Load()
		for _, td := range txs {
			if filter > 0 && td.FeePerKB < filter {
				continue
			}
			sp.QueueInventory(wire.NewInvVect(wire.InvTypeTx, td.Tx.Hash()))
		}
	})
	s.node.NotifyMempoolChanged()
}

// UpdatePeerHeights sets the height of the peers that announced the block
// (other than the one that sent it) to its height.
func (n *notifier) UpdatePeerHeights(hash *chainhash.Hash, height int32, source *peer.Peer) {
	s := (*server)(n)
	s.forEachPeer(func(sp *serverPeer) {
		if sp.Peer == source {
			return
		}
		if last := sp.LastAnnouncedBlock(); last != nil && *last == *hash {
			sp.UpdateLastBlockHeight(height)
			sp.UpdateLastAnnouncedBlock(nil)
		}
	})
}

// RelayInventory announces a block netsync accepted (while current) to
// the peers not known to have it, at once: headers to peers that asked for
// them, else an inv. Our own found blocks were announced before
// validation and are known to every peer then connected.
func (n *notifier) RelayInventory(iv *wire.InvVect, data any) {
	s := (*server)(n)
	if iv.Type != wire.InvTypeBlock {
		return
	}
	header, _ := data.(wire.BlockHeader)
	s.forEachPeer(func(sp *serverPeer) {
		if !sp.addKnownBlock(&iv.Hash) {
			return
		}
		if sp.WantsHeaders() && header.Timestamp.Unix() > 0 {
			msg := wire.NewMsgHeaders()
			_ = msg.AddBlockHeader(&header)
			sp.QueueMessage(msg, nil)
			return
		}
		msg := wire.NewMsgInvSizeHint(1)
		_ = msg.AddInvVect(iv)
		sp.QueueMessage(msg, nil)
	})
}

// TransactionConfirmed is part of netsync.PeerNotifier; there is no
// rebroadcast manager to tell.
func (n *notifier) TransactionConfirmed(*btcutil.Tx) {}
