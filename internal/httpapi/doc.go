// Package httpapi serves stratumd's operations HTTP endpoints on the
// --metrics-listen address: Prometheus metrics at /metrics, a JSON API
// under /api/, and a small built-in web page at / (plain HTML and
// JavaScript embedded in the binary; nothing is loaded from elsewhere).
//
// # Metrics
//
// /metrics writes the Prometheus text exposition format (version 0.0.4)
// by hand: connections, subscribed and authorized miners, shares accepted
// and rejected by reason, pool and per-user hashrate estimates, blocks
// found by this process and the pool's blocks by status from PostgreSQL
// (orphaned among them), found blocks handed to the nodes again (pending,
// resubmissions, and how they ended), spool backlog, database write
// latency (a histogram), template age, node health and notify fan-out
// time. Rejects are there pool-wide by reason, with the per-worker reject
// counter's own state (Config.Rejects); nothing per worker: worker names
// are the miners' to choose, and per-worker series would be unbounded.
// Per-worker detail is in the JSON API and SQL only.
//
// # JSON API
//
//	GET /api/pool               pool hashrate, miners, shares/s, blocks, last block, network
//	GET /api/pool/history       the pool hashrate samples the chart draws
//	GET /api/users/{name}       a user's workers (hashrates, last share, accepted and
//	                            rejected by reason, best share of all time and of
//	                            this round) and balance
//	GET /api/blocks?limit=N     the newest blocks (N from 1 to 200, default 20)
//	GET /api/payments?user=U&limit=N   payments with their outputs (only U's with user=)
//
// Errors are JSON objects {"error": "..."}: 400 for bad input, 404 for an
// unknown user or endpoint, 405 for methods other than GET and HEAD, 503
// when PostgreSQL cannot be reached.
//
// # Hashrate
//
// Tracker estimates hashrates from the assigned difficulty of accepted
// shares (difficulty × 2^32 hashes each) over a sliding window kept in
// memory; it hears of shares as the stratum server's ShareObserver. The
// estimates are this instance's; the shares table (and the SQL views of
// migrations 00005 and 00009) covers every instance. A worker's
// hashrate_10m and hashrate_1h, accepted and rejected counts and best
// shares come from migration 00009's user_worker_stats: every instance,
// the difficulty over the whole window (600 s, 3,600 s).
//
// # Files
//
//   - server.go: Config, New and Server (Handler, Serve); the interfaces
//     the server reads through (StratumStats, DrainerStats,
//     ResubmitterStats, Store) and NodeHealth.
//   - api.go: the JSON API's handlers and the objects they write (PoolJSON,
//     UserJSON, BlockJSON, PaymentJSON and their parts).
//   - metrics.go: /metrics.
//   - prom.go: the writer of the Prometheus text format.
//   - tracker.go: Tracker, NewTracker and TrackerConfig, and the rates a
//     Tracker reports (Rate, UserRate, WorkerRate, Sample).
//   - web/: the page served at /, embedded.
//
// A Server and a Tracker are safe for concurrent use. Serve runs the HTTP
// server until its context ends and Tracker.Run samples the hashrate
// history; cmd/stratumd runs both.
//
// # Imports
//
// The package owns none of what it reports: it imports internal/stratum
// and internal/store for their types and internal/username for the name
// rule, and reads through the interfaces of server.go; it speaks no SQL
// (the queries are the store's). It must not import internal/payout or the
// chain sources: the node's health arrives as Config.Node, a function
// cmd/stratumd supplies. Neither stratum nor store may import it, since it
// reads them.
package httpapi
