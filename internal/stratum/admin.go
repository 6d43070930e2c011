package stratum

import (
	"errors"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

// handleAuthorizeAdmin checks the admin password against its hash. Every
// attempt is logged, never with the password; failures are rate-limited
// by the admission controller.
func (c *session) handleAuthorizeAdmin(req wire.Request) error {
	pw, err := wire.DecodeAuthorizeAdmin(req.Params)
	if err != nil {
		return c.invalidParams(req.ID, err)
	}
	log := c.logger()
	s := c.srv
	if s.adminHash == "" {
		log.Warn("stratum: admin login attempted; admin calls are off")
		return c.replyError(req.ID, wire.CodeOther, "admin calls disabled")
	}
	if !s.adm.AdminAllowed(c.ip) {
		log.Warn("stratum: admin login refused: too many failures")
		return c.replyError(req.ID, wire.CodeOther, "too many attempts; try later")
	}
	if err := s.adm.AcquireArgon(c.group.ctx); err != nil {
		return c.replyError(req.ID, wire.CodeOther, "server shutting down")
	}
	ok, _, err := s.hasher.Verify(s.adminHash, pw)
	s.adm.ReleaseArgon()
	if err != nil || !ok {
		s.adm.AdminFailed(c.ip)
		log.Warn("stratum: admin login failed")
		return c.replyError(req.ID, wire.CodeUnauthorized, "wrong admin password")
	}
	c.admin = true
	log.Info("stratum: admin login")
	return c.replyTrue(req.ID)
}

// handleAddUser creates a user with a password (stored hashed) and an
// optional payout address, checked for the network, for an admin session.
// The password is never logged.
func (c *session) handleAddUser(req wire.Request) error {
	p, err := wire.DecodeAddUser(req.Params)
	if err != nil {
		return c.invalidParams(req.ID, err)
	}
	log := c.logger().With("user", p.Username)
	if !c.admin {
		log.Warn("stratum: add_user refused: not an admin session")
		return c.replyError(req.ID, wire.CodeUnauthorized, "admin only")
	}
	s := c.srv
	if p.Address != "" {
		addr, err := chain.PayoutAddress(p.Address, s.cfg.Network)
		if err != nil {
			log.Info("stratum: add_user: invalid address", "err", err)
			return c.replyError(req.ID, wire.CodeOther, err.Error())
		}
		p.Address = addr.EncodeAddress()
	}
	if !s.adm.AddUserAllowed() {
		log.Warn("stratum: add_user refused: rate limit")
		return c.replyError(req.ID, wire.CodeOther, "too many calls; try later")
	}
	if err := s.adm.AcquireArgon(c.group.ctx); err != nil {
		return c.replyError(req.ID, wire.CodeOther, "server shutting down")
	}
	_, err = s.cfg.Users.CreateUser(c.group.ctx, store.NewUser{Name: p.Username, Password: p.Password, PayoutAddress: p.Address})
	s.adm.ReleaseArgon()
	switch {
	case err == nil:
		log.Info("stratum: user added by admin", "address", p.Address)
		return c.replyTrue(req.ID)
	case errors.Is(err, store.ErrExists):
		log.Info("stratum: add_user: user exists")
		return c.replyError(req.ID, wire.CodeOther, "user exists")
	case errors.Is(err, store.ErrInvalid):
		log.Info("stratum: add_user: invalid user", "err", err)
		return c.replyError(req.ID, wire.CodeOther, "invalid user name or password")
	default:
		log.Error("stratum: add_user failed", "err", err)
		return c.replyError(req.ID, wire.CodeOther, "could not create user")
	}
}
