// Package store keeps the pool's state in PostgreSQL through pgx, and owns
// the path from an accepted share to a stored row.
//
// What it owns, by file:
//
//   - store.go: Open and Config; a *Store is safe for concurrent use by
//     multiple goroutines.
//   - errors.go: the sentinel errors. Driver errors are translated once, at
//     this boundary (mapErr); callers branch with errors.Is.
//   - migrate.go: Migrator, goose over the embedded migrations.
//   - users.go: users (CreateUser, EnsureUser, VerifyPassword, SetPassword,
//     payout addresses) and ImportUsers for bcoin-stratum's users.json.
//     Passwords are hashed by the Config.Hasher (package password); names
//     are checked with package username. Both refusals wrap ErrInvalid.
//   - shares.go: Share and its spool record (AppendShare, DecodeShare),
//     StoreShares (COPY, the worker_daily rollup and the spool's progress
//     in one transaction),
//     SkipShares, SpoolProgress.
//   - drainer.go: ShareWriter appends accepted shares to the local durable
//     spool (package spool) and returns once they are durable; Drainer
//     copies the spool into PostgreSQL in order, exactly once, through the
//     small DrainerStore interface (*Store in production, a fake in its
//     table tests): it retries while the database is unavailable (package
//     backoff), halves a batch the database refuses to find the records at
//     fault and sets those aside in a quarantine directory.
//   - blocks.go: the blocks table, for the resubmitter and the recorder of
//     share dumps (PendingBlocks, BlockRaw, RecordSubmitAttempt,
//     MarkBlockOnChain, BlocksToDump, MarkDumped); the queries returning
//     Blocks never load the raw bytes.
//   - partitions.go, retention.go: daily share partitions, created ahead
//     and on demand; ApplyRetention drops those past the retention that no
//     block still to be credited (nor the round in progress) may need.
//   - ledger.go, ledger_status.go, payments.go, pplns.go, payoutrun.go: the payout ledger
//     (credits, block splits, payments, the inputs they spend and every
//     transaction of a payment) behind PayoutRun, which holds the payout
//     advisory lock for one run; the PPLNS window queries. Package payout
//     decides what the ledger records and reaches it through interfaces it
//     declares, which *Store and *PayoutRun implement. blocks.status has
//     one writer, moveBlock, behind SetBlockStatus, PayoutRun.MoveBlock and
//     CreditBlock.
//   - stats.go: the reads behind metrics and the HTTP API.
//   - workerstats.go, rejects.go: per-worker stats (migration 00009).
//     StoreShares adds each batch to worker_daily in the transaction that
//     stores it (one upsert per batch, in key order), so the all-time
//     counts and best share are exact and outlive retention;
//     WorkerDetails reads user_worker_stats. RejectCounter counts rejected
//     submits per worker and reason in memory (bounded) and adds them to
//     worker_rejects every few seconds with AddRejects: a row per worker,
//     day and reason, never a row per reject.
//
// A share that solved a block carries the block into the spool (share
// record version 3: the blocks row's fields and the serialized block, up to
// MaxBlockBytes; DecodeShare checks every length before using it and that
// the bytes hash to the block's hash, and still decodes versions 1 and 2).
// The drainer inserts the blocks row, raw block included, in the
// transaction that stores the share, and tells OnBlocks.
//
// SQL is hand-written pgx kept inside this package: no other package of
// the daemon or of payout speaks SQL (internal/pgtest creates and drops the
// tests' databases, and tests check rows with queries of their own).
//
// What it does not own, and must not import: the stratum protocol, the chain
// and the payout logic (packages stratum, chain, payout and what builds on
// them import store, never the reverse); password hashing (package
// password), the user-name rule (package username) and the retry schedule
// (package backoff) live in packages of their own that import neither store
// nor pgx.
package store
