package store

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Errors returned by the store. Driver errors are wrapped so that errors.Is
// matches one of these while the original message stays readable.
var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a row with the same unique key exists already.
	ErrExists = errors.New("store: already exists")
	// ErrBadPassword: the password does not match the stored hash, or the
	// user has no password.
	ErrBadPassword = errors.New("store: wrong password")
	// ErrInvalid: the value breaks a rule of the schema (a check constraint,
	// a malformed value) or of this package.
	ErrInvalid = errors.New("store: invalid value")
	// ErrUnavailable: PostgreSQL could not be reached or the connection
	// broke; the operation may succeed when retried.
	ErrUnavailable = errors.New("store: database unavailable")
	// ErrConflict: a concurrent writer got there first (serialization
	// failure, deadlock, or an expectation about a row's state that no longer
	// holds); retrying from the start may succeed.
	ErrConflict = errors.New("store: conflict")
	// ErrPendingMigrations: the database schema is older than this binary.
	ErrPendingMigrations = errors.New("store: migrations pending")
)

// mapErr translates a driver error into the package's sentinels, keeping the
// original error in the chain. op says what was being done.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505": // unique_violation
			return fmt.Errorf("%s: %w: %w", op, ErrExists, err)
		case pgErr.Code == "40001" || pgErr.Code == "40P01": // serialization, deadlock
			return fmt.Errorf("%s: %w: %w", op, ErrConflict, err)
		case len(pgErr.Code) == 5 && (pgErr.Code[:2] == "22" || pgErr.Code[:2] == "23"):
			// data exceptions and the other integrity violations
			return fmt.Errorf("%s: %w: %w", op, ErrInvalid, err)
		case pgErr.Code[:2] == "08" || pgErr.Code[:2] == "57" || pgErr.Code == "53300":
			// connection exceptions, operator intervention (shutdown), too many connections
			return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	var netErr net.Error
	var connErr *pgconn.ConnectError
	if errors.As(err, &netErr) || errors.As(err, &connErr) || pgconn.SafeToRetry(err) || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
