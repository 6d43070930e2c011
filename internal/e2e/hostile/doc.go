// Package hostile is the hostile-client suite of issue 9, run by `make
// chaos` (its tests carry the build tag "chaos": opening 10,000 connections
// and measuring latency take minutes and want an otherwise quiet box).
//
// TestHostileClients runs the real stratumd binary (password authorization,
// an admin password, a short handshake deadline) with honest in-repo miners
// submitting at a steady rate, measures their acceptance and submit latency
// (p50/p99) without any attack, then again while every attack runs at once,
// each from a loopback address of its own (127.0.0.0/8) so that bans stay
// with the attacker: 10,000 connections that never send, slowloris lines,
// 1 MiB lines, invalid UTF-8, deeply nested JSON, huge numbers, wrong types
// in every parameter of every method, submits against another session's job
// and extranonce, shares replayed across reconnects, ntime and version
// abuse, admin password brute force, and SQL metacharacters in user and
// worker names. Every attempt must end in an error reply or a disconnect
// (or a refusal at accept once its address is banned); the server's own
// counters, logged at SIGTERM, must show no panic.
//
// TestSQLMetacharactersOpenMode repeats the user-name attack under open
// authorization, and TestShareReplayAcrossRestart replays a share accepted
// before a restart of stratumd.
//
// # Files
//
//   - main_test.go: TestMain, which builds stratumd once (or, in the helper
//     process, runs the honest miners), the daemon's flags and addUser.
//   - hostile_test.go: TestHostileClients, TestSQLMetacharactersOpenMode,
//     TestShareReplayAcrossRestart.
//   - attacks_test.go: the attacks, one function each, and how each attempt
//     ended.
//   - client_test.go: raw connections from a chosen loopback address, and
//     the error codes and timeouts they observe.
//   - honest_test.go: the honest miners, run in a helper process of this
//     test binary (TestHonestHelper), and their latency samples.
//   - nice_test.go, sink_test.go: the control measurements
//     (STRATUMD_HOSTILE_ATTACKER_NICE, STRATUMD_HOSTILE_FLOOD_SINK).
//
// # Imports
//
// The suite attacks the binary from outside: stratumd runs as a child
// process (internal/e2e/daemontest), attacks are bytes written by hand,
// honest miners and forged shares come from internal/miner, and users and
// rows are checked with SQL of its own. It must not import
// internal/stratum or its wire and admission packages, so that a line the
// attacks send is never shaped by the codec it attacks. It imports
// internal/pwworker only for Renice.
package hostile
