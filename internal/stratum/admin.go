package stratum

import (
	"errors"
	"sync"
	"time"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/store"
)

// Admin call limits.
const (
	adminWindow = time.Minute
	// adminFailuresPerIP is how many failed mining.authorize_admin calls
	// one address may make per adminWindow; later calls are refused
	// without checking.
	adminFailuresPerIP = 5
	// adminFailuresGlobal bounds failed calls from all addresses together.
	adminFailuresGlobal = 30
	// addUsersPerWindow bounds mining.add_user calls from all sessions.
	addUsersPerWindow = 60
)

// window counts events in a fixed time window.
type window struct {
	start time.Time
	n     int
}

// count returns the events in the window of the given length at now,
// restarting it when over.
func (w *window) count(now time.Time, length time.Duration) int {
	if now.Sub(w.start) >= length {
		w.start, w.n = now, 0
	}
	return w.n
}

// adminLimiter rate-limits the admin calls.
type adminLimiter struct {
	mu       sync.Mutex
	perIP    map[string]*window
	global   window
	addUsers window
}

func (a *adminLimiter) init() { a.perIP = make(map[string]*window) }

// allowAuth reports whether ip may try mining.authorize_admin now.
func (a *adminLimiter) allowAuth(ip string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.global.count(now, adminWindow) >= adminFailuresGlobal {
		return false
	}
	w := a.perIP[ip]
	return w == nil || w.count(now, adminWindow) < adminFailuresPerIP
}

// failAuth counts a failed mining.authorize_admin from ip.
func (a *adminLimiter) failAuth(ip string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.global.count(now, adminWindow)
	a.global.n++
	w := a.perIP[ip]
	if w == nil {
		if len(a.perIP) >= 10_000 {
			for k, v := range a.perIP {
				if now.Sub(v.start) >= adminWindow {
					delete(a.perIP, k)
				}
			}
		}
		w = &window{start: now}
		a.perIP[ip] = w
	}
	w.count(now, adminWindow)
	w.n++
}

// allowAddUser counts a mining.add_user call and reports whether it may run.
func (a *adminLimiter) allowAddUser(now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.addUsers.count(now, adminWindow) >= addUsersPerWindow {
		return false
	}
	a.addUsers.n++
	return true
}

// handleAuthorizeAdmin checks the admin password against its hash. Every
// attempt is logged, never with the password; failures are rate-limited.
func (c *session) handleAuthorizeAdmin(req Request) {
	pw, err := DecodeAuthorizeAdmin(req.Params)
	if err != nil {
		c.invalidParams(req.ID, err)
		return
	}
	log := c.logger()
	s := c.srv
	if s.adminHash == "" {
		log.Warn("stratum: admin login attempted; admin calls are off")
		c.replyError(req.ID, CodeOther, "admin calls disabled")
		return
	}
	now := s.now()
	if !s.admin.allowAuth(c.ip, now) {
		log.Warn("stratum: admin login refused: too many failures")
		c.replyError(req.ID, CodeOther, "too many attempts; try later")
		return
	}
	if err := s.acquireArgon(c.group.ctx); err != nil {
		c.replyError(req.ID, CodeOther, "server shutting down")
		return
	}
	ok, _, err := s.hasher.Verify(s.adminHash, pw)
	s.releaseArgon()
	if err != nil || !ok {
		s.admin.failAuth(c.ip, now)
		log.Warn("stratum: admin login failed")
		c.replyError(req.ID, CodeUnauthorized, "wrong admin password")
		return
	}
	c.admin = true
	log.Info("stratum: admin login")
	c.replyTrue(req.ID)
}

// handleAddUser creates a user with a password (stored hashed) and an
// optional payout address, checked for the network, for an admin session.
// The password is never logged.
func (c *session) handleAddUser(req Request) {
	p, err := DecodeAddUser(req.Params)
	if err != nil {
		c.invalidParams(req.ID, err)
		return
	}
	log := c.logger().With("user", p.Username)
	if !c.admin {
		log.Warn("stratum: add_user refused: not an admin session")
		c.replyError(req.ID, CodeUnauthorized, "admin only")
		return
	}
	s := c.srv
	if p.Address != "" {
		addr, err := chain.PayoutAddress(p.Address, s.cfg.Network)
		if err != nil {
			log.Info("stratum: add_user: invalid address", "err", err)
			c.replyError(req.ID, CodeOther, err.Error())
			return
		}
		p.Address = addr.EncodeAddress()
	}
	if !s.admin.allowAddUser(s.now()) {
		log.Warn("stratum: add_user refused: rate limit")
		c.replyError(req.ID, CodeOther, "too many calls; try later")
		return
	}
	if err := s.acquireArgon(c.group.ctx); err != nil {
		c.replyError(req.ID, CodeOther, "server shutting down")
		return
	}
	_, err = s.cfg.Users.CreateUser(c.group.ctx, store.NewUser{Name: p.Username, Password: p.Password, PayoutAddress: p.Address})
	s.releaseArgon()
	switch {
	case err == nil:
		log.Info("stratum: user added by admin", "address", p.Address)
		c.replyTrue(req.ID)
	case errors.Is(err, store.ErrExists):
		log.Info("stratum: add_user: user exists")
		c.replyError(req.ID, CodeOther, "user exists")
	case errors.Is(err, store.ErrInvalid):
		log.Info("stratum: add_user: invalid user", "err", err)
		c.replyError(req.ID, CodeOther, "invalid user name or password")
	default:
		log.Error("stratum: add_user failed", "err", err)
		c.replyError(req.ID, CodeOther, "could not create user")
	}
}
