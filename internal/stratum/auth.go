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
	// authCacheMax bounds each of the success and failure caches; when one
	// is full, its expired entries go first, then everything.
	authCacheMax = 100_000
	// authFailTTL is how long a wrong password is remembered: the same
	// (user, password) pair fails at once, without argon2, until then. It
	// is short because a password changed in the database to exactly the
	// remembered wrong one is refused until the entry expires.
	authFailTTL = time.Minute
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
	// ErrAuthLimited: the address made too many failed password checks in
	// the current window; the password was not checked.
	ErrAuthLimited = errors.New("stratum: too many failed authorizations from this address")
)

// errKnownBad marks an ErrUnauthorized answered from the failure cache.
var errKnownBad = errors.New("same wrong password recently")

// authKey is a cached authorization result: the user and the SHA-256 of
// the password (zero in open mode). Passwords themselves are not kept.
type authKey struct {
	user string
	pw   [sha256.Size]byte
}

// keySet is a bounded set of authKeys, each expiring ttl after it was
// added.
type keySet struct {
	mu  sync.Mutex
	m   map[authKey]time.Time // expiry
	ttl time.Duration
}

func (a *keySet) init(ttl time.Duration) {
	a.m = make(map[authKey]time.Time)
	a.ttl = ttl
}

func (a *keySet) hit(k authKey, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.m[k]
	if ok && now.After(exp) {
		delete(a.m, k)
		return false
	}
	return ok
}

func (a *keySet) add(k authKey, now time.Time) {
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
	a.m[k] = now.Add(a.ttl)
}

// authCache remembers successful authorizations and recent wrong
// passwords, limits failed password checks per address, and merges
// concurrent identical checks.
type authCache struct {
	ok, bad keySet
	limit   authLimiter
	sf      singleflight.Group
}

func (a *authCache) init() {
	a.ok.init(authCacheTTL)
	a.bad.init(authFailTTL)
	a.limit.init()
}

// authorize checks a mining.authorize user (the part before the first '.')
// and password under the configured mode, for a session from ip.
//
// In password mode a cached success passes; a (user, password) pair that
// failed within authFailTTL fails at once; an address over its failed
// check limit fails with ErrAuthLimited; otherwise the password is
// verified (argon2).
func (s *Server) authorize(ctx context.Context, ip, user, password string) error {
	err := s.checkAuth(ctx, ip, user, password)
	switch {
	case errors.Is(err, ErrAuthLimited) || errors.Is(err, errKnownBad):
		s.st.authRefused.Add(1)
	case errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrNotAddress):
		s.st.authFailures.Add(1)
	}
	return err
}

func (s *Server) checkAuth(ctx context.Context, ip, user, password string) error {
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
	if done, err := s.authShortcut(k, ip); done {
		return err
	}
	// Identical concurrent checks merge; in password mode only per
	// address, so that one address's limit never decides another's check.
	flight := string(k.pw[:]) + user
	if s.cfg.Auth != AuthOpen {
		flight += "\x00" + ip
	}
	_, err, _ := s.auth.sf.Do(flight, func() (any, error) {
		ctx, cancel := context.WithTimeout(ctx, authTimeout)
		defer cancel()
		if s.cfg.Auth == AuthOpen {
			if _, err := s.cfg.Users.EnsureUser(ctx, user, user); err != nil {
				return nil, err
			}
			s.auth.ok.add(k, s.now())
			return nil, nil
		}
		if err := s.acquireArgon(ctx); err != nil {
			return nil, err
		}
		defer s.releaseArgon()
		// While this waited for a slot, another check may have settled it.
		if done, err := s.authShortcut(k, ip); done {
			return nil, err
		}
		_, err := s.cfg.Users.VerifyPassword(ctx, user, password)
		now := s.now()
		switch {
		case err == nil:
			s.auth.ok.add(k, now)
			return nil, nil
		case errors.Is(err, store.ErrBadPassword):
			s.auth.bad.add(k, now)
			s.auth.limit.fail(ip, now)
			return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
		case errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
		return nil, err
	})
	return err
}

// authShortcut answers an authorization without a password check when it
// can: a cached success, a recently failed pair, or an address over its
// limit (logged once per address and window). done is false when the
// password must be checked.
func (s *Server) authShortcut(k authKey, ip string) (done bool, err error) {
	now := s.now()
	if s.auth.ok.hit(k, now) {
		return true, nil
	}
	if s.cfg.Auth == AuthOpen {
		return false, nil
	}
	if s.auth.bad.hit(k, now) {
		return true, fmt.Errorf("%w: %w", ErrUnauthorized, errKnownBad)
	}
	if ok, first := s.auth.limit.allow(ip, now); !ok {
		if first {
			s.log.Warn("stratum: too many failed authorizations from address; refusing password checks",
				"ip", ip, "failures", authFailuresPerIP, "window", authFailWindow)
		}
		return true, ErrAuthLimited
	}
	return false, nil
}

// authMessage is the error text sent to a miner whose authorize failed.
func authMessage(err error) string {
	switch {
	case errors.Is(err, ErrAuthLimited):
		return "too many failed authorizations; try later"
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
