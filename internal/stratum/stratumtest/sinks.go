package stratumtest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/stratum"
	"github.com/stratumd/stratumd/internal/username"
)

var (
	_ stratum.Users     = (*users)(nil)
	_ stratum.ShareSink = (*shareLog)(nil)
	_ stratum.BlockSink = (*blockLog)(nil)
)

// users is an in-memory stratum.Users: names as the store checks them,
// passwords in plain text (see the package doc).
type users struct {
	mu        sync.Mutex
	passwords map[string]string // "" for a user without a password
}

func newUsers() *users { return &users{passwords: make(map[string]string)} }

// VerifyPassword implements stratum.Users: store.ErrNotFound for an unknown
// user, store.ErrBadPassword for a wrong password or a user without one.
func (u *users) VerifyPassword(_ context.Context, name, password string) (store.User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	pw, ok := u.passwords[name]
	switch {
	case !ok:
		return store.User{}, fmt.Errorf("verify password of %q: %w", name, store.ErrNotFound)
	case pw == "" || pw != password:
		return store.User{}, fmt.Errorf("verify password of %q: %w", name, store.ErrBadPassword)
	}
	return store.User{Name: name, HasPassword: true}, nil
}

// EnsureUser implements stratum.Users: the user, created without a
// password when new.
func (u *users) EnsureUser(_ context.Context, name, payoutAddress string) (store.User, error) {
	if err := username.Valid(name); err != nil {
		return store.User{}, fmt.Errorf("ensure user %q: %w: %w", name, err, store.ErrInvalid)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	pw, ok := u.passwords[name]
	if !ok {
		u.passwords[name] = ""
	}
	return store.User{Name: name, PayoutAddress: payoutAddress, HasPassword: pw != ""}, nil
}

// CreateUser implements stratum.Users (mining.add_user); store.ErrExists
// when the name is taken.
func (u *users) CreateUser(_ context.Context, nu store.NewUser) (store.User, error) {
	if err := username.Valid(nu.Name); err != nil {
		return store.User{}, fmt.Errorf("create user %q: %w: %w", nu.Name, err, store.ErrInvalid)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.passwords[nu.Name]; ok {
		return store.User{}, fmt.Errorf("create user %q: %w", nu.Name, store.ErrExists)
	}
	u.passwords[nu.Name] = nu.Password
	return store.User{Name: nu.Name, PayoutAddress: nu.PayoutAddress, IsAdmin: nu.IsAdmin, HasPassword: nu.Password != ""}, nil
}

// shareLog is the in-memory share sink and stored-waiter (see the package
// doc for what it models of store.ShareWriter and the drainer).
type shareLog struct {
	mu     sync.Mutex
	shares []store.Share // share with seq n at n-1
}

// Write implements stratum.ShareSink: it validates and encodes s as the
// spool writer does, records it and returns its sequence number.
func (l *shareLog) Write(_ context.Context, s *store.Share) (uint64, error) {
	if _, err := store.AppendShare(nil, s); err != nil {
		return 0, fmt.Errorf("record share: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shares = append(l.shares, *s)
	return uint64(len(l.shares)), nil
}

func (l *shareLog) list() []store.Share {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.shares)
}

// blockLog is the in-memory block sink: the rows the server inserts itself
// when the share sink refuses a block's share.
type blockLog struct {
	mu   sync.Mutex
	rows []store.Block
}

// InsertBlock implements stratum.BlockSink: the row with an id and status
// submitted unless it says otherwise; store.ErrExists for a known hash.
func (l *blockLog) InsertBlock(_ context.Context, b store.Block) (store.Block, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.rows {
		if r.Hash == b.Hash {
			return store.Block{}, fmt.Errorf("insert block %s: %w", b.Hash, store.ErrExists)
		}
	}
	if b.Status == "" {
		b.Status = store.BlockSubmitted
	}
	b.ID = int64(len(l.rows) + 1)
	l.rows = append(l.rows, b)
	return b, nil
}
