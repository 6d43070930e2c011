package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratumd/stratumd/internal/password"
)

// Config configures a Store.
type Config struct {
	// URL is the PostgreSQL connection string (DATABASE_URL).
	URL string
	// MaxConns bounds the pool; 0 means pgxpool's default.
	MaxConns int32
	// Logger receives the store's own log lines; nil means slog.Default().
	Logger *slog.Logger
	// Hasher hashes and verifies passwords; nil means a password.Argon2id
	// with password.DefaultParams, in-process.
	Hasher password.Hasher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store is the pool's PostgreSQL state. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	log    *slog.Logger
	hasher password.Hasher
	now    func() time.Time

	partMu   sync.Mutex
	partDays map[time.Time]bool // daily share partitions known to exist
}

// Open connects to PostgreSQL and checks the connection with a ping. It does
// not apply migrations (see Migrate).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("store: parse database URL: %w: %w", ErrInvalid, err)
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, mapErr("store: connect", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, mapErr("store: ping", err)
	}
	s := &Store{pool: pool, log: cfg.Logger, hasher: cfg.Hasher, now: cfg.Now, partDays: make(map[time.Time]bool)}
	if s.log == nil {
		s.log = slog.Default()
	}
	if ph, ok := s.hasher.(password.Argon2id); s.hasher == nil || ok && ph.Params == (password.Params{}) {
		s.hasher = password.Argon2id{Params: password.DefaultParams()}
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Pool returns the underlying connection pool, for health checks and metrics.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	return mapErr("store: ping", s.pool.Ping(ctx))
}

// Close closes every connection of the pool.
func (s *Store) Close() { s.pool.Close() }
