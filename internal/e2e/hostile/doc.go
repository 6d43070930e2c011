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
package hostile
