// Command benchpool is a Stratum pool for benchmarks only: it runs the real
// stratum.Server with the real PostgreSQL store, the real share spool,
// ShareWriter and Drainer, but takes its templates from a chain source
// chosen for measuring rather than for mining. Never run it for miners.
//
// Why it exists: on regtest the network difficulty is about 4.7e-10, so at
// the share difficulties needed for tens of thousands of shares per second
// almost every share is also a block, and a load run measures block
// handling, not share handling. With -node chaintest (the default) the
// templates come from an in-memory chaintest.Source whose compact bits make
// the network difficulty -network-diff (default 1e9), so no share is a
// block; -tip-every advances its tip every interval, which sends a clean
// mining.notify to every session (the fan-out measurement). With -node
// embedded the templates come from the in-process btcd node on regtest,
// and -tip-every mines a block in-process (embedded.Solve, SubmitBlock)
// every interval; the time from the block's connection (a blockchain
// subscription) to the first notify written (stratum.Stats) is the
// embedded node's block → notify latency.
//
// Usage:
//
//	DATABASE_URL=postgres://... benchpool -listen 127.0.0.1:3334 \
//	    -min-diff 0.0000152587890625 -max-diff 0.0000152587890625 \
//	    [-tip-every 5s] [-spool-dir DIR] [-instance 7] [-txs 200] \
//	    [-node embedded] [-duration 60s] [-stats-every 5s] \
//	    [-cpuprofile FILE] [-pprof 127.0.0.1:6061]
//
// The schema is migrated on start (store.NewMigrator(url).Up). Authorization
// is open on regtest: any regtest address is a user (created on first
// sight), so stratum-load's -user is a bcrt1... address. -min-diff and
// -max-diff pin the share difficulty (vardiff cannot move it when they are
// equal). The spool lives in -spool-dir, or in a temporary directory
// removed at exit. RLIMIT_NOFILE is raised to the hard limit.
//
// It prints "benchpool pid=<pid> listen=<addr>" once it listens, a stats
// line every -stats-every (shares accepted, rejected, connections, the
// last and largest fan-out), one line per tip it makes, and at exit a
// summary: the server's and the drainer's counters, the shares in
// PostgreSQL and, with -tip-every, the tip → first notify written
// latencies (median, p90, max) and the process's CPU time. It stops on
// SIGINT/SIGTERM or after -duration. -cpuprofile writes a CPU profile of
// the run; -pprof serves net/http/pprof (heap, goroutines, MemStats).
//
// docs/BENCHMARKS.md has the commands and the numbers.
//
// # Files
//
//   - main.go: the flags, main and run.
//   - pool.go: runPool, which builds the store, spool, drainer, chain source
//     and stratum server, runs them and stops them in stratumd's order; the
//     stats lines, the tips it makes and their latencies.
//   - rlimit.go: the RLIMIT_NOFILE raise (package rlimit).
//   - rlimit_unix.go, rlimit_other.go: the process's CPU time for the
//     summary (none where getrusage(2) is missing).
//
// # Imports
//
// It builds the pool from the packages stratumd uses (internal/stratum,
// internal/store and its spool, internal/chain and its embedded node) and
// takes internal/chain/chaintest as a source. It must not import
// internal/miner: the load comes from another process (cmd/stratum-load),
// so that what is measured is the pool alone. Nor does it import the P2P
// or RPC sources: its templates never depend on a network or another node.
package main
