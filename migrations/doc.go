// Package migrations holds the goose SQL migrations of the pool's PostgreSQL
// schema, embedded so that both binaries carry them. Files are named
// NNNNN_name.sql (zero-padded) and each has an Up and a Down section.
//
// Apply them with `stratumd migrate up`; payout refuses to run while any are
// pending. Neither applies them implicitly at boot (only the benchmark pool,
// internal/tools/benchpool, and the tests' databases are migrated on start).
//
// By file:
//
//   - embed.go: FS, the *.sql files of this directory, read-only.
//   - 00001_users.sql: users.
//   - 00002_shares.sql: shares (range-partitioned by day) and
//     spool_progress, the drainer's place in each spool.
//   - 00003_blocks.sql: blocks, every block the pool found.
//   - 00004_payout_ledger.sql: the payout ledger: block_splits, credits,
//     payments, payment_outputs, payment_inputs and the balances view.
//   - 00005_ops_views.sql: the operators' views and functions (hashrates,
//     block rounds, unpaid balances).
//   - 00006_found_block_raw.sql: a found block's raw bytes, its
//     resubmissions and its share dump on its blocks row.
//   - 00007_payment_rbf.sql: replace-by-fee: payment_txs, the abandoning
//     state and payments.conflict_seen_height.
//   - 00008_solo.sql: SOLO mode: blocks.mode ('pplns' or 'solo'); the
//     round views count pool blocks and pool shares only.
//   - 00009_worker_stats.sql: per-worker stats that match the miner's
//     screen: worker_daily (accepted shares, difficulty and best share per
//     worker and UTC day, written by the drainer with the shares),
//     worker_rejects (rejected submits per worker, day and reason, flushed
//     from memory), the current_round view, user_worker_stats(user) and
//     the worker_stats view.
//
// Every table, view and function of the schema is created here. The one
// DDL outside is internal/store's: the daily partitions of the shares
// table, created ahead and on demand. internal/store applies the
// migrations (store.Migrator, under goose's Postgres session locker, so
// two processes never migrate at once) and internal/pgtest names its
// template databases after them. The package imports only embed and must
// not import any package of this module: it is below the store, which
// imports it.
package migrations
