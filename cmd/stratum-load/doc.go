// Command stratum-load drives a Stratum v1 pool with many miners over
// loopback and reports what a pool operator needs to size a box: how many
// connections got in, accepted and rejected shares per second, submit →
// reply latency, the pool's memory per connection and how long a new tip
// takes to reach every miner.
//
// Usage:
//
//	stratum-load -addr 127.0.0.1:3333 -conns 10000 -ramp 2000 -rate 50000 \
//	    -duration 30s -user bcrt1q... -pid $(pidof stratumd) [-configure] [-idle] [-json]
//
// It opens -conns connections at -ramp connections per second (0: as fast
// as possible, at most -parallel handshakes at a time), each doing what
// cpuminer does (mining.subscribe "cpuminer/2.5.1", mining.authorize
// "user.wN"), or with -configure what ESP-Miner does (mining.configure
// version-rolling 1fffe000 first, version bits rolled). Users come from
// -user/-password or from -users-file (one "user[:password]" per line,
// assigned to connections in turn). It raises its own RLIMIT_NOFILE soft
// limit to what the connections need, up to the hard limit, and says so
// when the hard limit is too low.
//
// With -pid it reads the pool's VmRSS from /proc/<pid>/status before
// connecting and once every connection is subscribed, authorized and idle
// (after -settle), and reports the difference per connection.
//
// Then, for -duration, a bounded set of hashing goroutines (-workers,
// GOMAXPROCS-1 by default, so that a core stays free for the reader
// goroutines whose timestamps are the measurements) finds real shares on the connections in turn and
// submits them, at -rate submits per second in total (0: as fast as they
// are found), with at most -inflight unanswered submits per connection.
// Finding shares at a useful rate needs a tiny share difficulty: start the
// pool with a low --min-diff (for example 1/65536 = 0.0000152587890625,
// about 65,536 hashes per share; lower for tens of thousands of shares per
// second). Mind the network target: on regtest (and simnet) it is about
// 2^255, network difficulty about 4.66e-10, so at any share difficulty
// above that every share is a block, and below it a share is a block with
// probability difficulty/4.66e-10 (the report counts them). Rejections are
// reported by Stratum error code and message.
//
// Notify fan-out: for every new tip seen after all connections are up (a
// mining.notify with clean_jobs=true and a new prevhash, e.g. after
// "bitcoin-cli -regtest generatetoaddress 1 ..." or the embedded node's
// equivalent), it records when each connection read it and reports the
// per-connection delay after the first arrival (p50, p99, max) and how many
// connections never received it. For the "N miners subscribed, then one
// new block" measurement run it with -idle, which keeps the connections
// idle (no hashing, no submits) for -duration while the tips come.
//
// Times of arrival (notifies and submit replies) are the kernel's receive
// timestamps of the bytes (SO_TIMESTAMPNS, on Linux): when a line reached
// the miner's socket, not when one of the tool's 10,000 reader goroutines
// got around to it, which on a shared 2-core box can be a hundred
// milliseconds later. Elsewhere they are the reader's clock.
//
// Output is a human summary, or JSON with -json.
//
// # Files
//
//   - main.go: the flags, -users-file, main and run.
//   - load.go: Config and Run: the connections (ramp, parallel handshakes)
//     and the submit phase (pacing, in-flight bound, hashing workers).
//   - report.go: Report and its parts (connections, memory, shares,
//     latencies, notify fan-out), VmRSS, and the text and JSON output.
//   - rlimit.go: the RLIMIT_NOFILE raise (package rlimit) and its report;
//     rlimit_unix.go and rlimit_other.go give EMFILE, a reason a connection
//     failed.
//
// # Imports
//
// It measures the pool from outside, as miners see it: it mines with
// internal/miner, whose codec is written apart from the server's, and must
// not import internal/stratum, internal/stratum/wire or internal/store, so
// that it can load any Stratum v1 pool and a bug it shared with stratumd
// could not hide from it. Its tests start a real server through
// internal/stratum/stratumtest.
package main
