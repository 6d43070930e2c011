// Package embedded is the in-process full node: btcd's block chain, memory
// pool and block template generator, run inside stratumd as a chain.Source.
//
// There is no getblocktemplate and no polling. A Node owns an ffldb block
// database under <DataDir>/blocks, a blockchain.BlockChain,
// a mempool.TxPool and a mining.BlkTmplGenerator, wired the way btcd's own
// server wires them:
//
//   - The chain's notification callback only hands off. On a connected (or
//     disconnected) block it sends a chain.NewTip update through a
//     coalescing chain.Notifier, which never blocks, and appends the block
//     to an in-memory queue. The consumer builds a new template at once.
//   - One goroutine started by Run drains that queue and keeps the mempool in
//     step with the chain as btcd's sync manager does: transactions of a
//     connected block, and their double spends, leave the pool, orphans they
//     unblock are processed, and the transactions of a disconnected block go
//     back in. When that changes what a template would carry, it sends a
//     chain.MempoolChanged update. A template built before the queue has been
//     drained is still valid: the generator skips transactions whose inputs
//     the chain has already spent.
//   - A transaction accepted by SubmitTx sends chain.MempoolChanged.
//
// SyncMempool waits until the mempool has caught up with the notifications
// delivered so far (for tests, and for callers that must see a block's
// transactions gone from the pool).
//
// With Config.DisableMempoolMaintenance the goroutine is not started: btcd's
// netsync, run by the P2P layer (package p2p) on the same chain and
// mempool, maintains the mempool instead and reports new transactions
// through NotifyMempoolChanged; Config.Synced then lets the P2P layer decide
// whether the node is current. MainChainHas tells whether a block (a
// pool's found block) is still in the best chain after a reorganization.
//
// SubmitBlock first calls Config.BeforeValidate, the block relay hook through
// which a P2P layer broadcasts a found block to its peers before it is
// validated, and then hands the block to blockchain.ProcessBlock.
//
// # Networks
//
// mainnet, testnet3, signet, regtest and simnet (chain.NetworkParams). btcd
// v0.24.2 has no testnet4. Templates are refused with chain.ErrNotSynced
// while the chain is not current (blockchain.IsCurrent), except on regtest
// and simnet, where a fresh or long idle chain has an old tip but is
// "current" for mining purposes: nobody else will extend it.
//
// # Regtest
//
// btcd's regtest activates segwit by BIP9 voting at height 432 (windows of
// 144 blocks). Generate mines blocks in-process (a template, a coinbase built
// by chain.NewJob, nonce grinding at regtest's trivial difficulty,
// SubmitBlock); it is the documented way to pre-mine a regtest chain to
// segwit activation and to mature coinbases in tests. It refuses to run on
// other networks. Every coinbase, ours and Generate's, carries its BIP34
// height. Solve, the nonce grinder behind Generate, is exported for tests of
// other packages that mine regtest jobs themselves.
//
// # Concurrency
//
// A Node is safe for concurrent use. New starts nothing; Run starts the one
// mempool maintenance goroutine and, when its context ends, waits for it and
// closes the node. Template calls are serialized (btcd's generator is not
// safe concurrently with itself); every Template returns fresh
// *btcutil.Tx wrappers, so templates never share hash caches.
// Chain and Mempool expose btcd's objects for the P2P layer.
//
// # Files
//
//   - config.go: Config, its defaults and btcd's policy settings.
//   - node.go: New, Node, Run and Close; the chain's notifications, the
//     mempool maintenance goroutine and SyncMempool; MainChainHas,
//     NotifyMempoolChanged, and Chain and Mempool for the P2P layer.
//   - template.go: Template, serialized calls to btcd's generator.
//   - submit.go: SubmitBlock (BeforeValidate, then ProcessBlock), SubmitTx
//     and RejectReason, the BIP 22 reason of a rejected block.
//   - bestchain.go: BestChains, so that a Node is a chain.BestChainReader.
//   - generate.go: Generate and Solve, regtest mining in-process.
//   - errors.go: the sentinel errors.
//
// # Imports
//
// The package builds on internal/chain only. It must not import
// internal/stratum (which consumes it through chain.Source) or
// internal/store, nor internal/chain/p2p, which builds on it: the node knows
// its P2P layer only through the hooks of Config (BeforeValidate, Synced,
// DisableMempoolMaintenance) and NotifyMempoolChanged.
package embedded
