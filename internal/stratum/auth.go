package stratum

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/stratum/admission"
	"github.com/stratumd/stratumd/internal/username"
)

// authTimeout bounds one authorization's database work.
const authTimeout = 30 * time.Second

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

// authorize checks a mining.authorize user (the part before the first '.')
// and password under the configured mode, for a session from ip, and
// returns the user's name: in open mode the address in its canonical
// encoding (chain.PayoutAddress: an upper-case bech32 address, as QR codes
// carry it, is the same user as its lower-case form), otherwise user.
//
// In password mode a cached success passes; a (user, password) pair that
// failed within admission.AuthFailTTL fails at once; an address over its
// failed check limit fails with ErrAuthLimited; otherwise the password is
// verified (argon2). The admission controller remembers the outcomes.
func (s *Server) authorize(ctx context.Context, ip, user, password string) (string, error) {
	user, err := s.checkAuth(ctx, ip, user, password)
	switch {
	case errors.Is(err, ErrAuthLimited) || errors.Is(err, errKnownBad):
		s.st.authRefused.Add(1)
	case errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrNotAddress):
		s.st.authFailures.Add(1)
	}
	return user, err
}

func (s *Server) checkAuth(ctx context.Context, ip, user, password string) (string, error) {
	if s.cfg.Auth == AuthOpen {
		addr, err := chain.PayoutAddress(user, s.cfg.Network)
		if err != nil || username.Valid(addr.EncodeAddress()) != nil {
			return user, fmt.Errorf("%w: %q on %s", ErrNotAddress, user, s.cfg.Network.Name)
		}
		user = addr.EncodeAddress()
	} else if username.Valid(user) != nil {
		return user, fmt.Errorf("%w: invalid user name", ErrUnauthorized)
	}
	return user, s.checkUser(ctx, ip, user, password)
}

// checkUser is checkAuth for a user name already checked (and, in open
// mode, made canonical).
func (s *Server) checkUser(ctx context.Context, ip, user, password string) error {
	k := admission.AuthKey{User: user}
	if s.cfg.Auth != AuthOpen {
		k.Password = sha256.Sum256([]byte(password))
	}
	if done, err := s.authShortcut(k, ip); done {
		return err
	}
	// Identical concurrent checks merge; in password mode only per
	// address, so that one address's limit never decides another's check.
	flight := string(k.Password[:]) + user
	if s.cfg.Auth != AuthOpen {
		flight += "\x00" + ip
	}
	_, err, _ := s.authFlight.Do(flight, func() (any, error) {
		ctx, cancel := context.WithTimeout(ctx, authTimeout)
		defer cancel()
		if s.cfg.Auth == AuthOpen {
			if _, err := s.cfg.Users.EnsureUser(ctx, user, user); err != nil {
				return nil, err
			}
			s.adm.AuthSucceeded(k)
			return nil, nil
		}
		if err := s.adm.AcquireArgon(ctx); err != nil {
			return nil, err
		}
		defer s.adm.ReleaseArgon()
		// While this waited for a slot, another check may have settled it.
		if done, err := s.authShortcut(k, ip); done {
			return nil, err
		}
		_, err := s.cfg.Users.VerifyPassword(ctx, user, password)
		switch {
		case err == nil:
			s.adm.AuthSucceeded(k)
			return nil, nil
		case errors.Is(err, store.ErrBadPassword):
			s.adm.AuthFailed(ip, k)
			return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
		case errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
		return nil, err
	})
	return err
}

// authShortcut answers an authorization without a password check when the
// admission controller can: a cached success, a recently failed pair, or
// an address over its limit (logged once per address and window by the
// controller). done is false when the password must be checked. In open
// mode only successes are ever remembered.
func (s *Server) authShortcut(k admission.AuthKey, ip string) (done bool, err error) {
	switch s.adm.AuthShortcut(ip, k) {
	case admission.AuthCached:
		return true, nil
	case admission.AuthKnownBad:
		return true, fmt.Errorf("%w: %w", ErrUnauthorized, errKnownBad)
	case admission.AuthLimited:
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
	case errors.Is(err, ErrSoloAddress):
		return "solo user must be solo:<address of this network>[.worker]"
	case errors.Is(err, ErrOtherPayout):
		return "one payout per connection: every worker must be of the first worker's user (pool or solo address)"
	default:
		return "authorization unavailable; try again"
	}
}
