// Package chain is where block templates come from and where solved blocks go.
//
// It defines the Source interface that the stratum server consumes (a
// stream of coalesced change signals, a Template on demand, and SubmitBlock),
// and turns a Template into a stratum Job: the coinbase transaction split
// around the extranonce slot (Coinb1, Coinb2), the merkle branch over the
// txids, the witness commitment over the wtxids, and the header fields in the
// form mining.notify sends them.
//
// The share-checking hot path is Job.Hash: it rebuilds the coinbase from
// Coinb1||extranonce1||extranonce2||Coinb2, folds it up the merkle branch,
// assembles the 80-byte header and double-SHA256es it without heap
// allocations. Job.Block assembles the full segwit-valid block for a
// solution.
//
// The difficulty and target helpers (DifficultyToTarget, HashDifficulty,
// TargetDifficulty, Target) use the pool ("bdiff") convention of stratum:
// difficulty 1 is the target 0x00000000FFFF0000...0000.
//
// Jobs are immutable once built and safe for concurrent use. The in-memory
// Source for tests lives in package chaintest.
//
// By file:
//
//   - source.go: Source, Update and its kinds (NewTip, MempoolChanged),
//     Notifier (coalescing: Notify never blocks), SubmitResult and
//     SubmitStatus.
//   - bestchain.go: BestChainReader and NodeChain, what the resubmitter
//     asks of a Source that can say which blocks are in its best chain.
//   - template.go: Template, what a Source hands out.
//   - job.go: CoinbaseConfig, NewJob and Job (Hash, HeaderFor, Block,
//     MerkleBranchHex).
//   - solo.go: SoloSplit (a solo block's fee, rounded down) and
//     NewSoloJob (a job's coinbase paying a solo miner's address).
//   - merkle.go: the merkle branch and root.
//   - target.go: Target and the difficulty conversions.
//   - network.go: NetworkParams, btcd's parameters for a network name.
//   - address.go: PayoutAddress, which addresses a payment can pay to.
//   - bip22.go: the BIP 22 answers of submitblock (Bitcoin Core's reject
//     reasons) and BIP22Result, the one table that classifies them for
//     both node kinds.
//   - errors.go: the sentinel errors.
//
// The package imports no other package of this module, and must not import
// internal/stratum, internal/store or internal/payout: it is where templates
// come from and blocks go, below the server that consumes it. The sources
// (internal/chain/embedded, internal/chain/p2p, internal/chain/rpcsource),
// the test source (internal/chain/chaintest) and the test miner build on it.
package chain
