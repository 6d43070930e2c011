package pgtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stratumd/stratumd/internal/password"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/testutil"
	"github.com/stratumd/stratumd/migrations"
)

// server is the PostgreSQL every test of this process shares.
type server struct {
	once sync.Once
	base string // connection string of the server (any database)
	tmpl string // name of the migrated template database
	err  error
}

// shared is per test binary: one lookup of the server and one template.
var shared server

// serverURL returns DATABASE_URL, or starts the private cluster.
func serverURL() (string, error) {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u, nil
	}
	root, err := testutil.RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "pg.sh"), "start")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("pgtest: scripts/pg.sh start: %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "DATABASE_URL="); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("pgtest: scripts/pg.sh printed no DATABASE_URL: %q", out)
}

// withDatabase returns connection string u pointing at database name.
func withDatabase(u, name string) (string, error) {
	cfg, err := url.Parse(u)
	if err != nil || (cfg.Scheme != "postgres" && cfg.Scheme != "postgresql") {
		return "", fmt.Errorf("pgtest: DATABASE_URL must be a postgres:// URL, got %q", u)
	}
	cfg.Path = "/" + name
	return cfg.String(), nil
}

// migrationsHash names the template after the migrations it holds, so that
// a changed migration gets a new template.
func migrationsHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12], err
}

func (s *server) init() {
	s.base, s.err = serverURL()
	if s.err != nil {
		return
	}
	sum, err := migrationsHash()
	if err != nil {
		s.err = err
		return
	}
	s.tmpl = "stratumd_tmpl_" + sum
	s.err = ensureTemplate(s.base, s.tmpl)
}

// ensureTemplate creates the migrated template database once per server,
// under an advisory lock so that parallel test binaries do not race.
func ensureTemplate(base, tmpl string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin, err := withDatabase(base, "postgres")
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("pgtest: connect to %s: %w", admin, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(74201)`); err != nil {
		return fmt.Errorf("pgtest: lock: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock(74201)`)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, tmpl).Scan(&exists); err != nil {
		return fmt.Errorf("pgtest: look for template: %w", err)
	}
	if exists {
		return nil
	}
	building := tmpl + "_building"
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{building}.Sanitize()); err != nil {
		return fmt.Errorf("pgtest: drop stale template: %w", err)
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{building}.Sanitize()); err != nil {
		return fmt.Errorf("pgtest: create template: %w", err)
	}
	u, err := withDatabase(base, building)
	if err != nil {
		return err
	}
	m, err := store.NewMigrator(u)
	if err != nil {
		return err
	}
	_, err = m.Up(ctx)
	m.Close()
	if err != nil {
		return fmt.Errorf("pgtest: migrate template: %w", err)
	}
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{building}.Sanitize()+` RENAME TO `+pgx.Identifier{tmpl}.Sanitize()); err != nil {
		return fmt.Errorf("pgtest: rename template: %w", err)
	}
	return nil
}

// ServerURL returns the connection string of the shared test server's
// "postgres" database, starting the private cluster when needed.
func ServerURL(t testing.TB) string {
	t.Helper()
	shared.once.Do(shared.init)
	if shared.err != nil {
		t.Fatalf("pgtest: no PostgreSQL for the tests: %v", shared.err)
	}
	u, err := withDatabase(shared.base, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// NewDatabase creates a fresh, migrated database for one test and returns
// its connection string. The database is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, true)
}

// NewEmptyDatabase creates a fresh database with no migrations applied.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, false)
}

func newDatabase(t testing.TB, migrated bool) string {
	t.Helper()
	admin := ServerURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	var rnd [6]byte
	rand.Read(rnd[:])
	name := "test_" + hex.EncodeToString(rnd[:])
	sql := `CREATE DATABASE ` + pgx.Identifier{name}.Sanitize()
	if migrated {
		sql += ` TEMPLATE ` + pgx.Identifier{shared.tmpl}.Sanitize()
	}
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		// 55006: the template is in use by another session (a parallel
		// clone); it passes within milliseconds.
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || attempt == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("pgtest: connect to drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	u, err := withDatabase(admin, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// NewStore opens a Store on a fresh migrated database, closed at cleanup.
func NewStore(t testing.TB) (*store.Store, string) {
	t.Helper()
	u := NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Cheap password hashing keeps tests fast; production uses the defaults.
	st, err := store.Open(ctx, store.Config{URL: u, Hasher: password.Argon2id{Params: TestArgon2Params()}})
	if err != nil {
		t.Fatalf("pgtest: open store: %v", err)
	}
	t.Cleanup(st.Close)
	return st, u
}

// TestArgon2Params are cheap argon2id costs for tests (still argon2id).
func TestArgon2Params() password.Params {
	return password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
}
