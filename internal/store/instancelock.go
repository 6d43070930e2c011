package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// InstanceLockKeyBase is the base of the pg_try_advisory_lock keys that
// keep two running stratumd processes off one instance id ("instan" in
// ASCII, shifted left one byte); the id is the low byte.
const InstanceLockKeyBase int64 = 0x696e7374616e << 8

// ErrInstanceInUse: another session holds the lock of this instance id: a
// stratumd process with the same --instance-id is running on this
// database.
var ErrInstanceInUse = errors.New("store: instance id in use by another stratumd on this database")

// InstanceLock is a session advisory lock on one instance id, held on a
// connection of its own (outside the pool) until Close. Instances that
// share a database must not share an id: it is the first byte of every
// extranonce1 and part of every share's key. The lock is checked at start
// only: when the connection is lost later (PostgreSQL restarted) the lock
// goes with it, and nothing retakes it.
type InstanceLock struct {
	conn *pgx.Conn
}

// LockInstance connects to url and takes the advisory lock of id, trying
// again for up to wait while another session holds it (a process killed a
// moment ago leaves a backend that has not yet seen its socket close). It
// fails with ErrInstanceInUse when the lock is still held then.
func LockInstance(ctx context.Context, url string, id uint8, wait time.Duration) (*InstanceLock, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, mapErr("instance lock: connect", err)
	}
	key := InstanceLockKeyBase | int64(id)
	deadline := time.Now().Add(wait)
	for {
		var locked bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&locked); err != nil {
			conn.Close(context.WithoutCancel(ctx))
			return nil, mapErr("instance lock", err)
		}
		if locked {
			return &InstanceLock{conn: conn}, nil
		}
		if !time.Now().Before(deadline) {
			conn.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("%w (instance %d)", ErrInstanceInUse, id)
		}
		select {
		case <-ctx.Done():
			conn.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("instance lock: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close releases the lock by ending its session. Idempotent.
func (l *InstanceLock) Close() {
	if l == nil || l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l.conn.Close(ctx)
	l.conn = nil
}
