package admission

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"
)

// Authorization cache and failed-check limit.
const (
	// AuthCacheTTL is how long a successful authorization is remembered,
	// so that a reconnect storm does not run argon2 for every miner.
	AuthCacheTTL = 10 * time.Minute
	// AuthFailTTL is how long a wrong password is remembered: the same
	// (user, password) pair fails at once, without argon2, until then. It
	// is short because a password changed in the database to exactly the
	// remembered wrong one is refused until the entry expires.
	AuthFailTTL = time.Minute
	// AuthCacheMax bounds each of the success and failure caches; when one
	// is full, its expired entries go first, then everything.
	AuthCacheMax = 100_000
	// AuthFailWindow is the window of AuthFailuresPerIP.
	AuthFailWindow = time.Minute
	// AuthFailuresPerIP is how many failed password checks (argon2 runs)
	// one address may cause per AuthFailWindow; later authorizations from
	// it that would need a check fail unchecked until the window ends.
	AuthFailuresPerIP = 10
)

// Admin call limits.
const (
	// AdminWindow is the window of the admin limits.
	AdminWindow = time.Minute
	// AdminFailuresPerIP is how many failed mining.authorize_admin calls
	// one address may make per AdminWindow; later calls are refused
	// without checking.
	AdminFailuresPerIP = 5
	// AdminFailuresGlobal bounds failed calls from all addresses together.
	AdminFailuresGlobal = 30
	// AddUsersPerWindow bounds mining.add_user calls from all sessions.
	AddUsersPerWindow = 60
)

// AuthKey is a remembered authorization: the user and the SHA-256 of the
// password (zero when no password is checked). Passwords themselves are
// not kept.
type AuthKey struct {
	User     string
	Password [sha256.Size]byte
}

// AuthVerdict is AuthShortcut's answer.
type AuthVerdict uint8

// AuthShortcut's answers.
const (
	// AuthCheck: nothing is known; the password must be checked.
	AuthCheck AuthVerdict = iota
	// AuthCached: the same user and password succeeded within
	// AuthCacheTTL; it passes unchecked.
	AuthCached
	// AuthKnownBad: the same user and password failed a check within
	// AuthFailTTL (from any address); it fails unchecked.
	AuthKnownBad
	// AuthLimited: the address caused AuthFailuresPerIP failed checks in
	// the current AuthFailWindow; it fails unchecked.
	AuthLimited
)

// AuthShortcut answers an authorization of k from ip without a password
// check when it can: a cached success passes (even from an address over
// its limit, so that a farm behind one NAT with a misconfigured miner
// keeps working), a recently failed pair fails, and an address over its
// limit fails (logged once per address and window).
func (c *Controller) AuthShortcut(ip string, k AuthKey) AuthVerdict {
	now := c.now()
	v, first := c.authShortcut(ip, k, now)
	if first {
		c.log.Warn("stratum: too many failed authorizations from address; refusing password checks",
			"ip", ip, "failures", AuthFailuresPerIP, "window", AuthFailWindow)
	}
	return v
}

func (c *Controller) authShortcut(ip string, k AuthKey, now time.Time) (v AuthVerdict, first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.authOK.hit(k, now):
		return AuthCached, false
	case c.authBad.hit(k, now):
		return AuthKnownBad, false
	}
	a := c.addrs[ip]
	if a == nil || a.abuse == nil || a.abuse.authFails.count(now, AuthFailWindow) < AuthFailuresPerIP {
		return AuthCheck, false
	}
	first = !a.abuse.authLogged
	a.abuse.authLogged = true
	return AuthLimited, first
}

// AuthSucceeded remembers a successful authorization of k for
// AuthCacheTTL.
func (c *Controller) AuthSucceeded(k AuthKey) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.authOK.add(k, now)
}

// AuthFailed remembers a wrong password: k fails unchecked for
// AuthFailTTL, and the check counts against ip's limit. (An unknown user
// is no wrong password: it costs no argon2 and is not remembered.)
func (c *Controller) AuthFailed(ip string, k AuthKey) {
	now, lim := c.now(), c.limits.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.authBad.add(k, now)
	b := c.getLocked(ip, now, lim).misbehaved()
	if _, fresh := b.authFails.add(now, AuthFailWindow); fresh {
		b.authLogged = false
	}
}

// AdminAllowed reports whether ip may try mining.authorize_admin now:
// not while ip made AdminFailuresPerIP failed attempts, or all addresses
// together AdminFailuresGlobal, in the current AdminWindow.
func (c *Controller) AdminAllowed(ip string) bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.adminAll.count(now, AdminWindow) >= AdminFailuresGlobal {
		return false
	}
	a := c.addrs[ip]
	return a == nil || a.abuse == nil || a.abuse.adminFails.count(now, AdminWindow) < AdminFailuresPerIP
}

// AdminFailed counts a failed mining.authorize_admin from ip.
func (c *Controller) AdminFailed(ip string) {
	now, lim := c.now(), c.limits.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.adminAll.add(now, AdminWindow)
	c.getLocked(ip, now, lim).misbehaved().adminFails.add(now, AdminWindow)
}

// AddUserAllowed counts a mining.add_user call and reports whether it may
// run: at most AddUsersPerWindow per AdminWindow from all sessions.
func (c *Controller) AddUserAllowed() bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.addUsers.count(now, AdminWindow) >= AddUsersPerWindow {
		return false
	}
	c.addUsers.add(now, AdminWindow)
	return true
}

// AcquireArgon takes one of the slots that bound concurrent argon2 work
// (each verification takes ~19 MiB and ~30 ms of CPU), waiting until one
// is free or ctx ends. Each successful call must be followed by one
// ReleaseArgon.
func (c *Controller) AcquireArgon(ctx context.Context) error {
	select {
	case c.argon <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("admission: waiting for an argon2 slot: %w", ctx.Err())
	}
}

// ReleaseArgon frees a slot taken by AcquireArgon.
func (c *Controller) ReleaseArgon() { <-c.argon }

// expiringSet is a bounded set of AuthKeys, each expiring ttl after it was
// added. The Controller's mutex guards it.
type expiringSet struct {
	m   map[AuthKey]time.Time // expiry
	ttl time.Duration
}

// hit reports whether k is in the set at now, forgetting it when expired.
func (s *expiringSet) hit(k AuthKey, now time.Time) bool {
	exp, ok := s.m[k]
	if ok && now.After(exp) {
		delete(s.m, k)
		return false
	}
	return ok
}

// add puts k in the set until now + ttl. When the set holds AuthCacheMax
// keys, the expired ones go first, then all.
func (s *expiringSet) add(k AuthKey, now time.Time) {
	if len(s.m) >= AuthCacheMax {
		for key, exp := range s.m {
			if now.After(exp) {
				delete(s.m, key)
			}
		}
		if len(s.m) >= AuthCacheMax {
			clear(s.m)
		}
	}
	s.m[k] = now.Add(s.ttl)
}
