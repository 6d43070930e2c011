// Command stratumd is the pool's Stratum v1 server. It runs beside an
// in-process Bitcoin node (or talks to one over RPC), keeps users and shares
// in PostgreSQL, and writes a <height>-<hash>.json share dump per found block.
//
// Usage:
//
//	stratumd [flags]                 run the daemon
//	stratumd migrate [up|down|status] apply or inspect the schema migrations
//	stratumd adduser NAME [--address ADDRESS]
//	                                 create a user; the password is read from stdin
//	stratumd set-address NAME ADDRESS | set-address --clear NAME
//	                                 set or remove a user's payout address
//	stratumd import-users FILE       import bcoin-stratum's users.json
//	stratumd submit-block HASH       hand a stored found block to the node(s) again
//	stratumd reconnect HOST:PORT|here [USER]
//	                                 send the running daemon's miners (or USER's)
//	                                 elsewhere with client.reconnect (admin call)
//	stratumd version                 print the version
//	stratumd password-worker NICE N  the argon2 child process (see --password-nice)
//
// Every flag may also be set with the environment variable STRATUMD_<NAME>
// (upper case, '-' as '_') or the key <name> in the TOML file given by
// --config; flags win over the environment, which wins over the file.
// Payout addresses are checked for --network. The subcommands' own flags
// (--address, --clear) come from the command line only, before or after
// the command's arguments.
//
// # Files
//
//   - main.go: main, which only calls run (the root context comes from
//     signal.NotifyContext), and run, which picks the daemon or a subcommand.
//   - config.go: the settings (flags over STRATUMD_* over the TOML file,
//     through package cliconf) and their checks.
//   - daemon.go: the daemon. It builds every part (store, spool, drainer,
//     recorder, the per-worker reject counter, the in-process node with
//     package payout's orphan watcher or the RPC source, resubmitter,
//     stratum server), runs them
//     in errgroups and stops them in order: the server first, then the
//     infrastructure, the recorder last. Also the SIGHUP reload and the
//     daily share partitions.
//   - listen.go: the stratum listeners (plain and TLS, each optionally
//     behind the PROXY protocol), --solo-fee-bps, the certificate reload
//     and the share retention loop.
//   - listenspec.go: the value of --listen and --tls-listen,
//     "ADDR[,key[=value]...]": the listener's own options (its difficulty
//     profile: min-diff, max-diff, start-diff, vardiff-target, pow2; solo),
//     one parser for flags, STRATUMD_LISTEN and the TOML file, and their
//     check against the global settings.
//   - premine.go: the log handler that keeps --regtest-premine to one
//     summary line (the node's per-block lines are dropped meanwhile).
//   - http.go: the operations HTTP server on --metrics-listen (package
//     httpapi), the node health it reports, and the URLs the start-up
//     log lines give for it and the stratum listeners.
//   - commands.go: migrate, adduser, set-address, import-users and
//     password-worker.
//   - submitblock.go: submit-block.
//   - reconnect.go: reconnect, a client of the daemon's admin call
//     mining.reconnect_miners (stratum.RequestReconnect).
//   - sdnotify.go: systemd's sd_notify (READY=1, RELOADING=1, STOPPING=1,
//     the watchdog); sdnotify_linux.go reads CLOCK_MONOTONIC for
//     RELOADING=1.
//
// What the command must not do: speak SQL or import a database driver
// (every query is internal/store's; only its tests read rows directly, to
// check them); read or write Stratum lines (internal/stratum does, through
// internal/stratum/wire, which the command does not import); keep
// package-level configuration or call log.Fatal (settings travel from run to
// the parts as values, and errors return to main).
package main
