// Package p2p makes the embedded node a network node: it syncs the chain
// from peers, relays transactions into the mempool, and announces the
// pool's found blocks to every peer before they are validated locally.
//
// It is built from btcd's library packages, the way btcd's own server.go
// uses them, but smaller: peer (one connection each), netsync (block
// download and mempool maintenance), connmgr (outbound connections,
// inbound listeners, retries) and addrmgr (known addresses, peers.json in
// the data directory).
//
// # Wiring
//
// NewNode(embedded.Config, Config) is the one call: it builds the
// embedded node with DisableMempoolMaintenance (netsync subscribes to the
// chain and maintains the mempool itself), a Synced hook and a
// BeforeValidate hook, then the P2P layer on it. Node embeds
// *embedded.Node, so it is a chain.Source; Node.Run runs both and stops
// the P2P layer (peers, netsync) before the node closes its database.
//
// stratumd flags map to Config: --connect (Connect, repeatable,
// exclusive: only those peers, no DNS seeds, no address manager),
// --addpeer (AddPeers, repeatable, together with the DNS seeds and the
// address manager), --p2p-listen (Listen, repeatable, none by default).
//
// # Sync
//
// netsync downloads headers first up to the last checkpoint and then
// blocks (getblocks/inv/getdata), from one sync peer. We send sendheaders
// to every peer so that new blocks are announced at once with a headers
// message (btcd trickles block invs otherwise); netsync only accepts
// headers it asked for, so an unsolicited headers announcement is handed
// to it as an inv. The node is synced (Template serves work, otherwise
// chain.ErrNotSynced) when the chain is current (blockchain.IsCurrent;
// always on regtest and simnet) and no outbound peer claims a higher
// block. Without outbound peers a regtest or simnet node is synced (it
// mines alone); a node on the other networks is not. Progress (height,
// percent of the best peer height, blocks per second) is logged every
// Config.ProgressInterval while not synced and is in Stats.
//
// # Blocks from peers
//
// A block message from a peer goes to embedded.Node.HeaderFirst before
// netsync hands it to the chain, and the hook's done function runs once
// netsync has processed it: with the embedded node's header-first switch
// on (stratumd --header-first, the default), miners move onto the block as
// soon as its header checks out, and back if the chain does not connect
// it.
//
// # Found blocks
//
// The node's BeforeValidate hook queues the block to every connected peer
// before the chain sees it, choosing per peer what Bitcoin Core would send
// (PeerManagerImpl::NewPoWValidBlock, then SendMessages): a cmpctblock to
// a peer that chose us as a high-bandwidth compact block peer
// (sendcmpct(1, 2)), speaks protocol 70015 or later and has the parent,
// once segwit is active, for the first found block of each height; else a
// headers message to a peer that sent
// sendheaders and has the parent; else an inv. "Has the parent" is our
// stand-in for Core's PeerHasHeader: the peer announced it or was sent
// it, or claims a chain at least as high. Blocks netsync accepts from
// other peers are relayed the same way. We no longer push the full block
// unrequested to Core peers: Core never does, and the round trip it saved
// is what high-bandwidth mode saves within the protocol. The block stays in
// an "announced" map for Config.AnnounceTTL (16 blocks at most), so the
// peers' getdata (block or compact block) and getblocktxn are served
// whether or not, and before, our own ProcessBlock finished. The cost of
// that order is the seed's: a block our node would reject has been sent
// anyway. The time from the hook to the first write of the announcement to
// a peer is in Stats.LastAnnounceLatency and logged.
//
// We serve getdata for blocks (announced map, then the database), compact
// blocks and mempool transactions, getblocktxn, getheaders (once synced)
// and getblocks; we do not serve bloom filters or compact filters.
//
// # BIP 152 (compact blocks)
//
// btcd's wire and peer packages do not know BIP 152; package bip152
// encodes and decodes its messages, and bip152Conn takes them out of the
// stream before btcd's peer reads it (which would discard them). What is
// implemented is the serving side, as Core does it:
//
//   - after verack, to peers of protocol 70014 or later, sendcmpct(0, 2):
//     we provide version 2 compact blocks and do not ask for any;
//   - a peer's sendcmpct version 2 is recorded, with its high-bandwidth
//     flag; other versions are ignored, as Core ignores them;
//   - found blocks (and relayed ones) are pushed as cmpctblock to
//     high-bandwidth peers, as above, one nonce per block; the compact
//     block is built in a tracked goroutine (5-10 ms for a full mainnet
//     block here), so it delays neither the other peers' headers and invs
//     nor our validation;
//   - getdata MSG_CMPCT_BLOCK is answered with a cmpctblock (coinbase
//     prefilled, wtxid short IDs) for an announced block or one at most 5
//     below a tip younger than 20 target spacings (Core's
//     MAX_CMPCTBLOCK_DEPTH and CanDirectFetch), else with the whole block;
//   - getblocktxn is answered with blocktxn from an announced block or one
//     at most 10 below the tip (MAX_BLOCKTXN_DEPTH), else with the whole
//     block; an unknown block gets no answer; an index past the block bans
//     the peer (Core's Misbehaving).
//
// Not implemented: receiving blocks as compact blocks. We never send
// sendcmpct(1) or getdata MSG_CMPCT_BLOCK, so netsync downloads whole
// blocks; a cmpctblock or blocktxn a peer sends anyway is ignored.
// Version 1 (pre-segwit) compact blocks are not served.
//
// # Misbehaviour and memory
//
// Each peer has a ban score (connmgr.DynamicBanScore; threshold
// Config.BanThreshold): a malformed message (BIP 152 ones included), a
// getblocktxn index past its block, or a block netsync rejects as
// invalid, reaches the threshold at once; an invalid transaction adds 10,
// and an oversized inv or unsolicited headers batch 20 (transient); every
// message beyond the per-peer rate (Config.MessageRate, MessageBurst;
// blocks, headers and transactions are not counted) adds 1; a getdata
// adds up to 99 like btcd's. At the threshold the peer is disconnected and
// its address banned for Config.BanDuration; --connect/--addpeer peers are
// only disconnected (and redialled). Memory per peer is bounded: btcd's
// wire limits every message, its peer keeps a 1000-entry known-inventory
// LRU, we keep 64 known block hashes, netsync bounds its request maps,
// every write has a deadline (Config.WriteTimeout) so a peer that stops
// reading is dropped with its queue, and there are at most
// Config.MaxPeers peers.
//
// # Concurrency
//
// A Node is safe for concurrent use. Run starts netsync's handler, the
// connection and address managers, btcd's per-peer goroutines and one
// progress goroutine, and waits for all of them before returning.
//
// # Files
//
//   - config.go: Config (peers, listeners, limits, timeouts) and its
//     defaults.
//   - node.go: NewNode and Node (Run, Close, Stats, Synced, ListenAddrs,
//     Connect).
//   - server.go: the peer set: connection and address managers, listeners,
//     bans, whether the node is synced, progress logs and Stats.
//   - peer.go: one peer: btcd's peer callbacks, ban scores, the message
//     rate, the answers to getdata, getheaders and getblocks, and the write
//     deadline.
//   - relay.go: found-block announcements and the announced map, and the
//     notifier through which netsync relays transactions and blocks.
//   - compact.go: how a block is announced to each peer, and the BIP 152
//     answers (sendcmpct, getdata MSG_CMPCT_BLOCK, getblocktxn).
//   - tap.go: bip152Conn, which takes BIP 152 messages out of the stream
//     btcd's peer reads.
//   - errors.go: the sentinel errors.
//
// # Imports
//
// The package builds on internal/chain, internal/chain/embedded and its
// own codec internal/chain/p2p/bip152 only. It
// must not import internal/stratum (the server sees a Node as a
// chain.Source and nothing more) or internal/store, nor
// internal/chain/rpcsource: the two node modes share no code but package
// chain.
package p2p
