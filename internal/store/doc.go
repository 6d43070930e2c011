// Package store keeps the pool's state in PostgreSQL through pgx: users,
// shares, blocks and the progress of the share spool. It also owns the path
// from an accepted share to a stored row: ShareWriter appends shares to the
// local durable spool (package spool) and Drainer copies the spool into
// PostgreSQL in order, exactly once.
//
// SQL is hand-written pgx kept inside this package (no other package speaks
// SQL). Driver errors are translated once, at this boundary, into the sentinel
// errors below; callers branch with errors.Is.
//
// A *Store is safe for concurrent use by multiple goroutines.
package store
