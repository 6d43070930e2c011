package store

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/stratumd/stratumd/migrations"
)

// Migrator applies the embedded goose migrations under goose's PostgreSQL
// session locker, so that two processes never migrate at once.
type Migrator struct {
	db       *sql.DB
	provider *goose.Provider
}

// NewMigrator prepares a Migrator on the database at url. Close it after use.
func NewMigrator(url string) (*Migrator, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("migrate: open: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockTimeout(5, 120), // retry every 5 s for up to 10 min
	)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: locker: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS, goose.WithSessionLocker(locker))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: provider: %w", err)
	}
	return &Migrator{db: db, provider: p}, nil
}

// Up applies every pending migration and returns the versions applied.
func (m *Migrator) Up(ctx context.Context) ([]int64, error) {
	res, err := m.provider.Up(ctx)
	if err != nil {
		return nil, mapErr("migrate up", err)
	}
	out := make([]int64, 0, len(res))
	for _, r := range res {
		out = append(out, r.Source.Version)
	}
	return out, nil
}

// Down rolls back the newest applied migration and returns its version
// (0 when nothing was applied).
func (m *Migrator) Down(ctx context.Context) (int64, error) {
	res, err := m.provider.Down(ctx)
	if err != nil {
		return 0, mapErr("migrate down", err)
	}
	if res == nil || res.Source == nil {
		return 0, nil
	}
	return res.Source.Version, nil
}

// Reset rolls back every applied migration.
func (m *Migrator) Reset(ctx context.Context) error {
	_, err := m.provider.DownTo(ctx, 0)
	return mapErr("migrate reset", err)
}

// Pending reports whether migrations are waiting to be applied.
func (m *Migrator) Pending(ctx context.Context) (bool, error) {
	ok, err := m.provider.HasPending(ctx)
	return ok, mapErr("migrate status", err)
}

// CheckCurrent returns ErrPendingMigrations when the schema is behind.
func (m *Migrator) CheckCurrent(ctx context.Context) error {
	pending, err := m.Pending(ctx)
	if err != nil {
		return err
	}
	if pending {
		return fmt.Errorf("run `stratumd migrate up` first: %w", ErrPendingMigrations)
	}
	return nil
}

// Status writes one line per migration: version, state, applied time, file.
func (m *Migrator) Status(ctx context.Context, w io.Writer) error {
	st, err := m.provider.Status(ctx)
	if err != nil {
		return mapErr("migrate status", err)
	}
	for _, s := range st {
		applied := "-"
		if !s.AppliedAt.IsZero() {
			applied = s.AppliedAt.UTC().Format(time.RFC3339)
		}
		if _, err := fmt.Fprintf(w, "%05d  %-8s  %-20s  %s\n", s.Source.Version, s.State, applied, s.Source.Path); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the Migrator's connection.
func (m *Migrator) Close() error {
	return m.db.Close()
}
