package stratum

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"golang.org/x/sync/singleflight"

	"github.com/stratumd/stratumd/internal/store"
)

const (
	// authCacheTTL is how long a successful authorization is remembered,
	// so that a reconnect storm does not run argon2 for every miner.
	authCacheTTL = 10 * time.Minute
	// authCacheMax bounds the cache; when full, expired entries go first,
	// then everything.
	authCacheMax = 100_000
	// authTimeout bounds one authorization's database work.
	authTimeout = 30 * time.Second
)

// Authorization errors. The session answers each with code 24.
var (
	// ErrUnauthorized: unknown user or wrong password (password mode).
	ErrUnauthorized = errors.New("stratum: unknown user or wrong password")
	// ErrNotAddress: in open mode, the user part is not an address of the
	// server's network.
	ErrNotAddress = errors.New("stratum: user is not an address of this network")
)

// authKey is a cached successful authorization: the user and the SHA-256
// of the password (zero in open mode). Passwords themselves are not kept.
type authKey struct {
	user string
	pw   [sha256.Size]byte
}

// authCache remembers successful authorizations and merges concurrent
// identical ones.
type authCache struct {
	mu sync.Mutex
	m  map[authKey]time.Time // expiry
	sf singleflight.Group
}

func (a *authCache) init() { a.m = make(map[authKey]time.Time) }

func (a *authCache) hit(k authKey, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.m[k]
	if ok && now.After(exp) {
		delete(a.m, k)
		return false
	}
	return ok
}

func (a *authCache) add(k authKey, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.m) >= authCacheMax {
		for key, exp := range a.m {
			if now.After(exp) {
				delete(a.m, key)
			}
		}
		if len(a.m) >= authCacheMax {
			clear(a.m)
		}
	}
	a.m[k] = now.Add(authCacheTTL)
}

// authorize checks a mining.authorize user (the part before the first '.')
// and password under the configured mode.
func (s *Server) authorize(ctx context.Context, user, password string) error {
	now := s.now()
	var k authKey
	k.user = user
	if s.cfg.Auth == AuthOpen {
		addr, err := btcutil.DecodeAddress(user, s.cfg.Network)
		if err != nil || !addr.IsForNet(s.cfg.Network) || store.ValidUserName(user) != nil {
			return fmt.Errorf("%w: %q on %s", ErrNotAddress, user, s.cfg.Network.Name)
		}
	} else {
		if store.ValidUserName(user) != nil {
			return fmt.Errorf("%w: invalid user name", ErrUnauthorized)
		}
		k.pw = sha256.Sum256([]byte(password))
	}
	if s.auth.hit(k, now) {
		return nil
	}
	flight := string(k.pw[:]) + user
	_, err, _ := s.auth.sf.Do(flight, func() (any, error) {
		ctx, cancel := context.WithTimeout(ctx, authTimeout)
		defer cancel()
		if s.cfg.Auth == AuthOpen {
			_, err := s.cfg.Users.EnsureUser(ctx, user, user)
			return nil, err
		}
		if err := s.acquireArgon(ctx); err != nil {
			return nil, err
		}
		defer s.releaseArgon()
		_, err := s.cfg.Users.VerifyPassword(ctx, user, password)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrBadPassword) {
			return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
		return nil, err
	})
	if err != nil {
		return err
	}
	s.auth.add(k, now)
	return nil
}

// authMessage is the error text sent to a miner whose authorize failed.
func authMessage(err error) string {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return "unknown user or wrong password"
	case errors.Is(err, ErrNotAddress):
		return "user must be an address of this network"
	default:
		return "authorization unavailable; try again"
	}
}

// acquireArgon takes one of the slots that bound concurrent argon2 work
// (each verification takes ~19 MiB and ~30 ms).
func (s *Server) acquireArgon(ctx context.Context) error {
	select {
	case s.argon <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) releaseArgon() { <-s.argon }
