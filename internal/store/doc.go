// Package store keeps the pool's state in PostgreSQL through pgx: users,
// shares, blocks, the payout ledger (credits, payments, the inputs they
// spend; see PayoutRun) and the progress of the share spool. It also owns the path
// from an accepted share to a stored row: ShareWriter appends shares to the
// local durable spool (package spool) and Drainer copies the spool into
// PostgreSQL in order, exactly once.
//
// SQL is hand-written pgx kept inside this package (no other package speaks
// SQL; package payout decides what the ledger records and reaches it through
// interfaces it declares, which *Store and *PayoutRun implement). Driver
// errors are translated once, at this boundary (mapErr), into the sentinel
// errors below; callers branch with errors.Is. blocks.status has one writer,
// moveBlock, behind SetBlockStatus, PayoutRun.MoveBlock and CreditBlock.
//
// A *Store is safe for concurrent use by multiple goroutines.
package store
