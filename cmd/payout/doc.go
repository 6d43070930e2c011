// Command payout splits each matured block's reward with PPLNS and pays the
// resulting balances through btcwallet. It is meant to run from cron or a
// systemd timer; every step is safe to rerun.
//
// Usage:
//
//	payout run [--dry-run] [--json]           classify blocks, credit, pay
//	payout status [--json]                    blocks, balances, balances held back (no valid address for --network), payments
//	payout bump ID --fee-rate N [--json]      replace a stuck payment's transaction at N sat/vB
//	payout abandon ID [--fee-rate N] [--json] give a stuck payment up safely
//
// bump replaces payment ID's transaction by one spending the same inputs
// and paying the same recipients the same amounts at N sat/vB (above its
// current rate; the fee comes out of the change). abandon broadcasts a
// transaction that spends the payment's inputs back to the wallet; the
// payment's outputs count as unpaid again (and are paid anew by a later
// run) only once that conflict has --conflict-confirmations confirmations;
// if one of the payment's own transactions confirms first, it is simply
// paid. Both store the new transaction before broadcasting it, and
// whichever transaction of a payment confirms settles it. Never set a
// payment's state by hand.
//
// Every flag may also be set with the environment variable PAYOUT_<NAME>
// (upper case, '-' as '_') or the key <name> in the TOML file given by
// --config; flags win over the environment, which wins over the file.
//
// Exit status: 0 done; 1 an error (the report, when there is one, is still
// printed); 75 another run holds the lock (try again later).
//
// Test only: when PAYOUT_TEST_KILL_STEP=K is set (K ≥ 1), the process kills
// itself with SIGKILL at the K-th step boundary a run reaches (every call
// of payout.Options.StepHook counts, starting at 1; the step names are
// payout's Step* constants). The crash tests use it to stop a real run
// anywhere; unset, it does nothing. Never set it in production.
//
// # Files
//
//   - main.go: main, which calls run (giving it SIGKILL to itself for the
//     kill-step hook) and turns its error into the exit status.
//   - config.go: the settings (flags over PAYOUT_* over the TOML file,
//     through package cliconf) and run, which calls payout.Run,
//     payout.ReadStatusDB, payout.Bump or payout.Abandon and prints the
//     result as text or JSON.
//   - killstep.go: PAYOUT_TEST_KILL_STEP (test only).
//   - pausestep.go: PAYOUT_TEST_PAUSE_STEP and PAYOUT_TEST_STEP_LOG, which
//     the payout kill matrix (internal/e2e/chaos) uses to act on the
//     wallet in the middle of a run and to know where a run stopped (test
//     only).
//
// The command holds no payout logic and speaks no SQL: the steps, the
// ledger and the wallet are package payout's, which reaches PostgreSQL
// through package store. It must not import internal/store or a database
// driver itself, nor internal/stratum or anything else of the daemon: a
// payout run needs the ledger, the node and the wallet, not the pool.
package main
