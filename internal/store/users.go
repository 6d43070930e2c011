package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/password"
	"github.com/stratumd/stratumd/internal/username"
)

// User is one pool account.
type User struct {
	ID            int64
	Name          string
	PayoutAddress string // empty when none is set
	IsAdmin       bool
	HasPassword   bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
	LastLoginAt   time.Time // zero when never
}

// validName checks name against the user-name rule (package username)
// and refuses a solo miner's name (username.SoloPrefix); its error wraps
// ErrInvalid.
func validName(name string) error {
	if err := username.Valid(name); err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	if username.IsSolo(name) {
		return fmt.Errorf("user name %q: names starting with %q are solo miners', not accounts: %w", name, username.SoloPrefix, ErrInvalid)
	}
	return nil
}

const userColumns = `id, name, COALESCE(payout_address, ''), is_admin, password_hash IS NOT NULL,
	created_at, updated_at, COALESCE(last_login_at, 'epoch'::timestamptz)`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Name, &u.PayoutAddress, &u.IsAdmin, &u.HasPassword,
		&u.CreatedAt, &u.UpdatedAt, &u.LastLoginAt)
	if u.LastLoginAt.Unix() == 0 {
		u.LastLoginAt = time.Time{}
	}
	return u, err
}

// NewUser describes a user to create.
type NewUser struct {
	Name          string
	Password      string // hashed before it is stored; empty: no password login
	PayoutAddress string
	IsAdmin       bool
}

// CreateUser stores a new user with a hashed password. ErrExists when the
// name is taken.
func (s *Store) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	if err := validName(nu.Name); err != nil {
		return User{}, err
	}
	var hash *string
	if nu.Password != "" {
		h, err := s.hasher.Hash(nu.Password)
		if err != nil {
			return User{}, hasherErr(fmt.Sprintf("create user %q", nu.Name), err)
		}
		hash = &h
	}
	return s.insertUser(ctx, nu.Name, hash, nu.PayoutAddress, nu.IsAdmin)
}

func (s *Store) insertUser(ctx context.Context, name string, hash *string, addr string, admin bool) (User, error) {
	var payout *string
	if addr != "" {
		payout = &addr
	}
	u, err := scanUser(s.pool.QueryRow(ctx, `
		INSERT INTO users (name, password_hash, payout_address, is_admin)
		VALUES ($1, $2, $3, $4)
		RETURNING `+userColumns, name, hash, payout, admin))
	if err != nil {
		return User{}, mapErr(fmt.Sprintf("create user %q", name), err)
	}
	return u, nil
}

// EnsureUser returns the user called name, creating it without a password
// when it does not exist (open authorization, where the name is an address).
func (s *Store) EnsureUser(ctx context.Context, name, payoutAddress string) (User, error) {
	if err := validName(name); err != nil {
		return User{}, err
	}
	var payout *string
	if payoutAddress != "" {
		payout = &payoutAddress
	}
	// The no-op update makes RETURNING yield the existing row too.
	u, err := scanUser(s.pool.QueryRow(ctx, `
		INSERT INTO users (name, payout_address) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
		RETURNING `+userColumns, name, payout))
	if err != nil {
		return User{}, mapErr(fmt.Sprintf("ensure user %q", name), err)
	}
	return u, nil
}

// UserByName looks a user up. ErrNotFound when there is none.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE name = $1`, name))
	if err != nil {
		return User{}, mapErr(fmt.Sprintf("user %q", name), err)
	}
	return u, nil
}

// VerifyPassword checks name's password. On success it records the login and,
// when the stored hash is a legacy (bcoin-stratum) hash or has other cost
// parameters, replaces it with a fresh argon2id hash. ErrNotFound for an
// unknown user, ErrBadPassword for a wrong password or a user without one.
func (s *Store) VerifyPassword(ctx context.Context, name, password string) (User, error) {
	var stored *string
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT id, password_hash FROM users WHERE name = $1`, name).Scan(&id, &stored)
	if err != nil {
		return User{}, mapErr(fmt.Sprintf("verify password of %q", name), err)
	}
	if stored == nil {
		return User{}, fmt.Errorf("verify password of %q: %w", name, ErrBadPassword)
	}
	ok, rehash, err := s.hasher.Verify(*stored, password)
	if err != nil {
		return User{}, hasherErr(fmt.Sprintf("verify password of %q", name), err)
	}
	if !ok {
		return User{}, fmt.Errorf("verify password of %q: %w", name, ErrBadPassword)
	}
	newHash := *stored
	if rehash {
		if newHash, err = s.hasher.Hash(password); err != nil {
			return User{}, hasherErr(fmt.Sprintf("rehash password of %q", name), err)
		}
	}
	// Only replace the hash we verified: a concurrent password change wins.
	u, err := scanUser(s.pool.QueryRow(ctx, `
		UPDATE users SET
			last_login_at = now(),
			password_hash = CASE WHEN password_hash = $2 THEN $3 ELSE password_hash END,
			updated_at = CASE WHEN password_hash = $2 AND $2 <> $3 THEN now() ELSE updated_at END
		WHERE id = $1
		RETURNING `+userColumns, id, *stored, newHash))
	if err != nil {
		return User{}, mapErr(fmt.Sprintf("record login of %q", name), err)
	}
	return u, nil
}

// hasherErr wraps an error of the password hasher for op. A refusal caused
// by the input (password.ErrInvalid: a password too long, a stored hash
// malformed) also wraps ErrInvalid, so that the store's callers branch on
// the store's errors alone.
func hasherErr(op string, err error) error {
	if errors.Is(err, password.ErrInvalid) {
		return fmt.Errorf("%s: %w: %w", op, ErrInvalid, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// SetPassword replaces name's password hash.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	h, err := s.hasher.Hash(password)
	if err != nil {
		return hasherErr(fmt.Sprintf("set password of %q", name), err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE users SET password_hash = $2, updated_at = now() WHERE name = $1`, name, h)
	if err != nil {
		return mapErr(fmt.Sprintf("set password of %q", name), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set password of %q: %w", name, ErrNotFound)
	}
	return nil
}

// SetPayoutAddress sets name's payout address and its updated_at. The
// caller validates addr for the pool's network (chain.PayoutAddress); the
// store only refuses an empty address or one outside the schema's bounds
// (ErrInvalid). ErrNotFound for an unknown user.
func (s *Store) SetPayoutAddress(ctx context.Context, name, addr string) error {
	if addr == "" {
		return fmt.Errorf("set payout address of %q: empty address: %w", name, ErrInvalid)
	}
	return s.updatePayoutAddress(ctx, "set payout address", name, &addr)
}

// ClearPayoutAddress removes name's payout address and sets updated_at.
// payout then holds the user's balance until one is set, unless the name
// itself is an address (open authorization). ErrNotFound for an unknown
// user.
func (s *Store) ClearPayoutAddress(ctx context.Context, name string) error {
	return s.updatePayoutAddress(ctx, "clear payout address", name, nil)
}

func (s *Store) updatePayoutAddress(ctx context.Context, op, name string, addr *string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET payout_address = $2, updated_at = now() WHERE name = $1`, name, addr)
	if err != nil {
		return mapErr(fmt.Sprintf("%s of %q", op, name), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s of %q: %w", op, name, ErrNotFound)
	}
	return nil
}

// ImportResult counts what ImportUsers did.
type ImportResult struct {
	Created int
	Skipped int // already present (never overwritten)
}

// legacyUser is one line of bcoin-stratum's users.json.
type legacyUser struct {
	Username string `json:"username"`
	Password string `json:"password"` // hex of SHA256(SHA256(password))
	Address  string `json:"address"`  // optional payout address
}

// Import limits.
const (
	// maxImportLine bounds one line of users.json.
	maxImportLine = 64 << 10
	// maxImportErrors is how many bad lines one refused import reports.
	maxImportErrors = 20
)

// ImportUsers reads bcoin-stratum's users.json (one JSON object per line:
// {"username": ..., "password": <hex of double SHA-256>[, "address": ...]})
// and creates the users it names, keeping their legacy hashes; each is
// re-hashed with argon2id at its next successful login.
//
// checkAddress validates a non-empty "address" for the pool's network and
// returns the form to store (see chain.PayoutAddress); when it is nil, a
// line with an address is bad.
//
// Every line is checked before anything is written: a file with any bad
// line (malformed JSON, an unknown field, an invalid name, password hash or
// address) is refused as a whole, nothing is created, and the error (which
// wraps ErrInvalid) names each bad line, up to 20. A good file is written
// in one statement. Users already present, by name, are left alone (their
// address too: see SetPayoutAddress) and counted as skipped, so importing a
// file twice is harmless.
func (s *Store) ImportUsers(ctx context.Context, r io.Reader, checkAddress func(string) (string, error)) (ImportResult, error) {
	var names, hashes, addrs []string
	var bad []error
	nbad := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxImportLine)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		name, hash, addr, err := parseLegacyUser(text, checkAddress)
		if err != nil {
			if nbad++; nbad <= maxImportErrors {
				bad = append(bad, fmt.Errorf("line %d: %w", line, err))
			}
			continue
		}
		names, hashes, addrs = append(names, name), append(hashes, hash), append(addrs, addr)
	}
	if err := sc.Err(); err != nil {
		nbad++
		bad = append(bad, fmt.Errorf("after line %d: %w: %w", line, ErrInvalid, err))
	}
	if nbad > 0 {
		if nbad > len(bad) {
			bad = append(bad, fmt.Errorf("and %d more bad lines", nbad-len(bad)))
		}
		return ImportResult{}, fmt.Errorf("import users: %d bad lines, nothing imported:\n%w", nbad, errors.Join(bad...))
	}
	if len(names) == 0 {
		return ImportResult{}, nil
	}
	rows, err := s.pool.Query(ctx, `
		INSERT INTO users (name, password_hash, payout_address)
		SELECT n, h, NULLIF(a, '') FROM unnest($1::text[], $2::text[], $3::text[]) AS t(n, h, a)
		ON CONFLICT (name) DO NOTHING
		RETURNING id`, names, hashes, addrs)
	if err != nil {
		return ImportResult{}, mapErr("import users", err)
	}
	created, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return ImportResult{}, mapErr("import users", err)
	}
	return ImportResult{Created: len(created), Skipped: len(names) - len(created)}, nil
}

// parseLegacyUser checks one users.json line and returns what to store.
// Errors wrap ErrInvalid and name the user when its name could be read.
func parseLegacyUser(text string, checkAddress func(string) (string, error)) (name, hash, addr string, err error) {
	var lu legacyUser
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lu); err != nil {
		return "", "", "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if dec.More() {
		return "", "", "", fmt.Errorf("%w: more than one JSON value", ErrInvalid)
	}
	if err := validName(lu.Username); err != nil {
		return "", "", "", err
	}
	if hash, err = password.LegacyHash(strings.ToLower(lu.Password)); err != nil {
		return "", "", "", hasherErr(fmt.Sprintf("%q", lu.Username), err)
	}
	if lu.Address != "" {
		if checkAddress == nil {
			return "", "", "", fmt.Errorf("%q: address: %w: no network to check it against", lu.Username, ErrInvalid)
		}
		if addr, err = checkAddress(lu.Address); err != nil {
			return "", "", "", fmt.Errorf("%q: %w: %w", lu.Username, ErrInvalid, err)
		}
	}
	return lu.Username, hash, addr, nil
}
