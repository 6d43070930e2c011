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
// TestFoundBlockNodeDown and TestFoundBlockNodeDownKillRestart (issue 15):
// a block found while btcd is down is acknowledged, stored with its share,
// handed over again with backoff (across a SIGKILL and restart of stratumd
// in the second test) and lands on btcd's best chain once btcd is back.
//
// TestPayoutKill (issue 15, point 5) is the payout kill matrix: the real
// payout binary killed with SIGKILL at every step boundary of a run against
// real btcd and btcwallet, and btcwallet killed and restarted mid-run; after
// the reruns every credited satoshi is paid exactly once on chain, nothing
// is stuck and the wallet locks nothing.
//
// TestRollingRestart (issue 19): two stratumd processes with --reuse-port
// on one port, distinct instance ids and spools; each in turn started
// beside the other, which is then stopped with SIGTERM, under load: no
// miner's dial fails and every acknowledged share is stored once.
//
// docs/RELIABILITY.md records what these tests saw.
//
// # Files
//
//   - main_test.go: TestMain, which builds stratumd once
//     (daemontest.Main), and the regtest users and flags.
//   - fleet_test.go: the fleet of reconnecting miners, each recording the
//     shares it saw accepted.
//   - verify_test.go: the audit in PostgreSQL: every accepted share stored
//     exactly once, in acceptance order.
//   - faults_test.go: TestPostgresOutage, TestKillRestart, TestNodeOutage,
//     TestSpoolDiskFull.
//   - foundblock_test.go: TestFoundBlockNodeDown,
//     TestFoundBlockNodeDownKillRestart.
//   - payout_kill_test.go: TestPayoutKill.
//   - rolling_test.go: TestRollingRestart.
//
// # Imports
//
// The suite tests what ships: stratumd and payout run as binaries, miners
// connect through internal/miner, and the audit reads the tables with SQL
// of its own. It must not import internal/stratum, its wire or admission
// packages, or the chain sources. It imports internal/store only to seed
// the payout kill matrix's shares and blocks, and internal/payout only for
// the type of payout's JSON report.
package chaos
