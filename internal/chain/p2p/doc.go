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
// # Found blocks
//
// The node's BeforeValidate hook queues the block to every connected peer
// before the chain sees it: the full block message to Bitcoin Core peers
// (user agent /Satoshi:), which process an unrequested block that extends
// their best chain; a headers message to other peers that sent
// sendheaders; an inv to the rest (btcd disconnects peers that send
// blocks it did not request, and never sends sendheaders). The block stays
// in an "announced" map for Config.AnnounceTTL (16 blocks at most), so the
// peers' getdata is served whether or not, and before, our own
// ProcessBlock finished. The cost of that order is the seed's: a block our
// node would reject has been sent anyway. The time from the hook to the
// first write of the announcement to a peer is in
// Stats.LastAnnounceLatency and logged.
//
// We serve getdata for blocks (announced map, then the database) and
// mempool transactions, getheaders (once synced) and getblocks; we do not
// serve bloom filters, compact blocks or compact filters.
//
// # Misbehaviour and memory
//
// Each peer has a ban score (connmgr.DynamicBanScore; threshold
// Config.BanThreshold): a malformed message, or a block netsync rejects as
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
//     notifier through which netsync relays transactions.
//   - errors.go: the sentinel errors.
//
// # Imports
//
// The package builds on internal/chain and internal/chain/embedded only. It
// must not import internal/stratum (the server sees a Node as a
// chain.Source and nothing more) or internal/store, nor
// internal/chain/rpcsource: the two node modes share no code but package
// chain.
package p2p
