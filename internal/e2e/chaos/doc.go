// Package chaos is the fault suite of issues 9 and 15, run by `make chaos` (its
// tests carry the build tag "chaos", so plain `go test ./...` skips them).
// Each test runs the real stratumd binary as a child process (see
// internal/e2e/daemontest) with in-repo CPU miners (internal/miner) that
// reconnect by themselves, injects one fault under load, and then checks in
// PostgreSQL that every share a miner saw accepted is stored exactly once
// and in acceptance order:
//
//   - TestPostgresOutage: PostgreSQL (a cluster of the test's own) stopped
//     for 60 s under load, then started again.
//   - TestKillRestart: stratumd killed with SIGKILL under load, twice, and
//     restarted on the same datadir and spool.
//   - TestNodeOutage: stratumd in RPC mode; its btcd killed under load and
//     restarted.
//   - TestSpoolDiskFull: the spool on a tiny tmpfs (or under a low
//     RLIMIT_FSIZE): miners get error 20 "share not recorded" instead of
//     true, and a clear log line appears.
//
// TestPayoutKill (issue 15, point 5) is the payout kill matrix: the real
// payout binary killed with SIGKILL at every step boundary of a run against
// real btcd and btcwallet, and btcwallet killed and restarted mid-run; after
// the reruns every credited satoshi is paid exactly once on chain, nothing
// is stuck and the wallet locks nothing.
//
// docs/RELIABILITY.md records what these tests saw.
package chaos
