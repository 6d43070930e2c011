package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PayoutLockKey is the pg_try_advisory_lock key that keeps payout runs
// apart ("payout" in ASCII).
const PayoutLockKey int64 = 0x7061796f7574

// ErrLocked: another session holds the payout lock.
var ErrLocked = errors.New("store: payout lock held by another session")

// dbtx is a connection or a transaction: what the ledger's SQL runs on
// (Begin on a transaction makes a savepoint, which is how a dry run
// nests).
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// PayoutRun is the payout ledger as one `payout` run (or bump, or abandon)
// sees it: one connection holding the payout advisory lock, and for a dry
// run one transaction on it that End rolls back, so that a dry run reads
// its own writes and leaves nothing behind. Every ledger write is its own
// transaction (a savepoint in a dry run). A PayoutRun is not safe for
// concurrent use; runs of separate processes are kept apart by the lock.
type PayoutRun struct {
	conn *pgxpool.Conn
	db   dbtx
	dry  pgx.Tx
}

// BeginPayoutRun takes a connection and pg_try_advisory_lock(PayoutLockKey)
// on it; ErrLocked when another session holds the lock. With dryRun every
// write is undone at End.
func (s *Store) BeginPayoutRun(ctx context.Context, dryRun bool) (*PayoutRun, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, mapErr("payout run: connect", err)
	}
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, PayoutLockKey).Scan(&locked); err != nil {
		conn.Release()
		return nil, mapErr("payout run: advisory lock", err)
	}
	if !locked {
		conn.Release()
		return nil, ErrLocked
	}
	r := &PayoutRun{conn: conn, db: conn}
	if dryRun {
		tx, err := conn.Begin(ctx)
		if err != nil {
			r.End(ctx)
			return nil, mapErr("payout run: begin dry run", err)
		}
		r.dry, r.db = tx, tx
	}
	return r, nil
}

// End rolls a dry run back, releases the advisory lock and the connection.
// When that cannot be done cleanly the connection is closed, which ends
// the session and so frees the lock too. End is idempotent.
func (r *PayoutRun) End(ctx context.Context) {
	if r.conn == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	ok := true
	if r.dry != nil {
		ok = r.dry.Rollback(ctx) == nil
	}
	if ok {
		_, err := r.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, PayoutLockKey)
		ok = err == nil
	}
	if !ok {
		r.conn.Conn().Close(ctx)
	}
	r.conn.Release()
	r.conn, r.db, r.dry = nil, nil, nil
}

// inTx runs fn in a transaction of the run (a savepoint in a dry run) and
// commits it; driver errors are mapped with op.
func (r *PayoutRun) inTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := r.db.Begin(ctx)
	if err != nil {
		return mapErr(op+": begin", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return err
	}
	return mapErr(op+": commit", tx.Commit(ctx))
}
