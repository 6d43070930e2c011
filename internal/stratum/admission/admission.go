package admission

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero fields of Limits.
const (
	DefaultBanMalformed = 5
	DefaultBanDuration  = 10 * time.Minute
)

// ErrLimits reports Limits that cannot work.
var ErrLimits = errors.New("admission: invalid limits")

// Limits are the settings that may change while the controller is in use
// (SetLimits, e.g. on SIGHUP). Zero fields take the defaults stated.
type Limits struct {
	// MaxConnsPerIP caps the open connections from one address; Admit
	// refuses more. Zero means no cap.
	MaxConnsPerIP int
	// ConnRatePerIP is how many new connections per second one address
	// may open on average; Admit refuses connections beyond it (and beyond
	// ConnBurstPerIP at once). A refused connection does not use up the
	// rate, and a closed one gives nothing back. Zero means no limit.
	ConnRatePerIP float64
	// ConnBurstPerIP is how many connections one address may open at once
	// before ConnRatePerIP applies (default: one second's worth, at
	// least 1). Unused without ConnRatePerIP.
	ConnBurstPerIP int
	// BanMalformed bans an address after this many malformed lines within
	// BanDuration (default 5).
	BanMalformed int
	// BanDuration is how long a ban for malformed lines lasts (default 10
	// min).
	BanDuration time.Duration
}

// WithDefaults returns l with its zero fields set to their defaults.
func (l Limits) WithDefaults() Limits {
	if l.BanMalformed <= 0 {
		l.BanMalformed = DefaultBanMalformed
	}
	if l.BanDuration <= 0 {
		l.BanDuration = DefaultBanDuration
	}
	if l.ConnRatePerIP > 0 && l.ConnBurstPerIP <= 0 {
		l.ConnBurstPerIP = int(max(1, math.Ceil(l.ConnRatePerIP)))
	}
	return l
}

// check reports limits that cannot work, wrapping ErrLimits.
func (l Limits) check() error {
	if l.MaxConnsPerIP < 0 {
		return fmt.Errorf("%w: negative per-IP connection cap", ErrLimits)
	}
	if l.ConnRatePerIP < 0 || math.IsNaN(l.ConnRatePerIP) || math.IsInf(l.ConnRatePerIP, 0) || l.ConnBurstPerIP < 0 {
		return fmt.Errorf("%w: per-IP connection rate %v, burst %d", ErrLimits, l.ConnRatePerIP, l.ConnBurstPerIP)
	}
	return nil
}

// Config configures a Controller. Zero fields take the defaults stated.
type Config struct {
	// Limits are the initial limits; see SetLimits.
	Limits Limits
	// ArgonSlots bounds the concurrent password hashing (AcquireArgon);
	// default GOMAXPROCS-1, at least 1: one processor always stays free
	// for the sessions, so a flood of password checks (each ~30 ms of
	// CPU) cannot hold every processor while miners' submits wait for the
	// scheduler's 10 ms preemption.
	ArgonSlots int
	// Logger receives the refusal and failed-authorization log lines
	// (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock of every window, bucket, ban and cache (default
	// time.Now). The refusal summary's period runs on the runtime's timers.
	Now func() time.Time
}

// Stats are a Controller's counters since New.
type Stats struct {
	// Refused counts connections refused by Admit and Refuse;
	// RefusedRate, those of them over the per-address connection rate;
	// RefusedFull, those refused because the server held as many
	// connections as it may (Refuse with RefusedFull).
	Refused, RefusedRate, RefusedFull uint64
	// Evicted counts address records forgotten while not idle because the
	// table reached MaxAddresses (see Controller).
	Evicted uint64
}

// Controller is the pool's admission and abuse control: per-address
// connection counts, connection rate and bans, the failed-authorization
// cache and limit, the admin-call limits and the argon2 slots. The
// accept loop and the sessions ask it questions and tell it what
// happened; it never reaches into them.
//
// Everything per address lives in one record of one table under one
// mutex; a record is forgotten once it holds nothing that could change an
// answer (no connection, no ban, every window ended, a full connection
// bucket), at the address's last close or in a sweep when the table has
// doubled. The table holds at most MaxAddresses records but for those with
// an open connection or a ban (both bounded by what an address can do per
// second): when a sweep leaves it full, records with neither are forgotten
// too, in no particular order, so that a flood from many
// addresses (an IPv6 prefix) cannot grow it without bound; such an address
// then starts afresh (its malformed lines, failed checks and connection
// bucket forgotten), and Stats.Evicted counts it. Nothing here is a goroutine of its own except the refusal
// summary's timer (FlushRefusals stops it). All methods are safe for
// concurrent use.
type Controller struct {
	log    *slog.Logger
	now    func() time.Time
	limits atomic.Pointer[Limits]
	argon  chan struct{} // one token per running argon2 computation

	mu       sync.Mutex
	addrs    map[string]*addr
	sweepAt  int         // sweep idle records when addrs reaches this size
	maxAddrs int         // MaxAddresses; smaller in tests
	authOK   expiringSet // successful authorizations
	authBad  expiringSet // recent wrong (user, password) pairs
	adminAll window      // failed admin logins from all addresses
	addUsers window      // mining.add_user calls

	refused, refusedRate, refusedFull, evicted atomic.Uint64
	refusals                                   refusalLog
}

// addr is what the controller knows about one remote address. What only
// a misbehaving address needs is kept apart, so that an honest miner's
// record stays small (48 bytes).
type addr struct {
	conns   int    // open connections
	accepts bucket // new connections, for Limits.ConnRatePerIP
	abuse   *abuse // nil until the first malformed line, ban or failed check
}

// abuse is an address's record of misbehaviour.
type abuse struct {
	malformed   window    // malformed lines, over Limits.BanDuration
	bannedUntil time.Time // zero: not banned
	authFails   window    // failed password checks, over AuthFailWindow
	authLogged  bool      // the limit's refusal was logged in authFails' window
	adminFails  window    // failed admin logins, over AdminWindow
}

// malformedKeep is the least time malformed lines are remembered, whatever
// BanDuration is now (it may grow on a reload).
const malformedKeep = time.Hour

// idle reports whether a holds nothing that could change an answer at now
// under lim, so that forgetting it changes nothing.
func (a *addr) idle(now time.Time, lim *Limits) bool {
	return a.conns <= 0 && a.accepts.full(now, lim.ConnRatePerIP) && (a.abuse == nil || a.abuse.idle(now, lim))
}

func (b *abuse) idle(now time.Time, lim *Limits) bool {
	return !now.Before(b.bannedUntil) && b.malformed.count(now, max(malformedKeep, lim.BanDuration)) == 0 &&
		b.authFails.count(now, AuthFailWindow) == 0 && b.adminFails.count(now, AdminWindow) == 0
}

// banned reports whether a is banned at now.
func (a *addr) banned(now time.Time) bool {
	return a.abuse != nil && now.Before(a.abuse.bannedUntil)
}

// misbehaved returns a's abuse record, adding one when there is none.
func (a *addr) misbehaved() *abuse {
	if a.abuse == nil {
		a.abuse = &abuse{}
	}
	return a.abuse
}

// New returns a Controller for cfg. It starts nothing. It fails with
// ErrLimits for limits that cannot work.
func New(cfg Config) (*Controller, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ArgonSlots <= 0 {
		cfg.ArgonSlots = max(1, runtime.GOMAXPROCS(0)-1)
	}
	c := &Controller{
		log:      cfg.Logger,
		now:      cfg.Now,
		argon:    make(chan struct{}, cfg.ArgonSlots),
		addrs:    make(map[string]*addr),
		sweepAt:  minSweep,
		maxAddrs: MaxAddresses,
		authOK:   expiringSet{m: make(map[AuthKey]time.Time), ttl: AuthCacheTTL},
		authBad:  expiringSet{m: make(map[AuthKey]time.Time), ttl: AuthFailTTL},
	}
	if err := c.SetLimits(cfg.Limits); err != nil {
		return nil, err
	}
	return c, nil
}

// SetLimits replaces the limits; the next question is answered under
// them. It fails with ErrLimits for a negative cap, rate or burst.
func (c *Controller) SetLimits(l Limits) error {
	if err := l.check(); err != nil {
		return err
	}
	l = l.WithDefaults()
	c.limits.Store(&l)
	return nil
}

// Limits returns the limits in force, defaults applied.
func (c *Controller) Limits() Limits { return *c.limits.Load() }

// Stats returns the controller's counters.
func (c *Controller) Stats() Stats {
	return Stats{Refused: c.refused.Load(), RefusedRate: c.refusedRate.Load(), RefusedFull: c.refusedFull.Load(),
		Evicted: c.evicted.Load()}
}

// Reason says why Admit refused a connection, as logged.
type Reason string

// Reasons a connection is refused.
const (
	RefusedBanned Reason = "banned"
	RefusedCap    Reason = "per-IP connection cap"
	RefusedRate   Reason = "per-IP connection rate"
	// RefusedFull is the caller's own refusal (Refuse): the server holds
	// as many connections, all addresses together, as its descriptor
	// budget allows.
	RefusedFull Reason = "server full"
)

// Admit counts a new connection from ip unless ip is banned, already has
// MaxConnsPerIP connections open or opened connections faster than
// ConnRatePerIP allows. A refusal is counted in Stats and logged through
// the refusal summary, naming remote (the connection's full address); the
// caller closes the connection. Every admitted connection must be
// Released.
func (c *Controller) Admit(ip, remote string) (ok bool, why Reason) {
	if ok, why = c.admit(ip); !ok {
		c.refuse(ip, remote, why)
	}
	return ok, why
}

func (c *Controller) admit(ip string) (bool, Reason) {
	now, lim := c.now(), c.limits.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.addrs[ip]
	if a != nil && a.banned(now) {
		return false, RefusedBanned
	}
	if a != nil && lim.MaxConnsPerIP > 0 && a.conns >= lim.MaxConnsPerIP {
		return false, RefusedCap
	}
	if a == nil {
		a = c.addLocked(ip, now, lim)
	}
	if lim.ConnRatePerIP > 0 && !a.accepts.take(now, lim.ConnRatePerIP, lim.ConnBurstPerIP) {
		return false, RefusedRate
	}
	a.conns++
	return true, ""
}

// Refuse counts and logs (through the refusal summary) a connection the
// caller refused for a reason of its own, such as RefusedFull; nothing
// about ip changes. The caller closes the connection.
func (c *Controller) Refuse(ip, remote string, why Reason) {
	c.refuse(ip, remote, why)
}

// Release counts the close of a connection from ip that Admit admitted.
func (c *Controller) Release(ip string) {
	now, lim := c.now(), c.limits.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.addrs[ip]
	if a == nil {
		return
	}
	a.conns--
	if a.idle(now, lim) {
		delete(c.addrs, ip)
	}
}

// Malformed counts a malformed line from ip and bans ip for BanDuration
// once BanMalformed of them came within BanDuration. It reports a new
// ban.
func (c *Controller) Malformed(ip string) (banned bool) {
	now, lim := c.now(), c.limits.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.getLocked(ip, now, lim).misbehaved()
	if n, _ := b.malformed.add(now, lim.BanDuration); n < lim.BanMalformed {
		return false
	}
	b.malformed = window{}
	b.bannedUntil = now.Add(lim.BanDuration)
	return true
}

// Ban bans ip until the given time (a longer ban stays).
func (c *Controller) Ban(ip string, until time.Time) {
	now, lim := c.now(), c.limits.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.getLocked(ip, now, lim).misbehaved()
	if until.After(b.bannedUntil) {
		b.bannedUntil = until
	}
}

// Banned reports whether ip is banned now.
func (c *Controller) Banned(ip string) bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.addrs[ip]
	return a != nil && a.banned(now)
}

// Unban lifts a ban on ip.
func (c *Controller) Unban(ip string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.addrs[ip]; a != nil && a.abuse != nil {
		a.abuse.bannedUntil = time.Time{}
	}
}

// minSweep is the table size below which no sweep runs.
const minSweep = 1024

// MaxAddresses bounds the address table (about 250 bytes a record at the
// most, so 64 MiB): see Controller. An honest pool's table holds its
// miners' addresses and is far smaller.
const MaxAddresses = 1 << 18

// getLocked returns ip's record, adding one when there is none. c.mu is
// held.
func (c *Controller) getLocked(ip string, now time.Time, lim *Limits) *addr {
	if a := c.addrs[ip]; a != nil {
		return a
	}
	return c.addLocked(ip, now, lim)
}

// addLocked adds a record for ip, which has none. When the table has
// reached sweepAt it first forgets the idle records, and then waits for
// the table to double again, so that sweeps cost O(1) per record added.
// c.mu is held.
func (c *Controller) addLocked(ip string, now time.Time, lim *Limits) *addr {
	if len(c.addrs) >= min(c.sweepAt, c.maxAddrs) {
		c.sweepLocked(now, lim)
		if len(c.addrs) >= c.maxAddrs {
			c.evictLocked(now)
		}
		c.sweepAt = max(minSweep, 2*len(c.addrs))
	}
	a := &addr{}
	c.addrs[ip] = a
	return a
}

// evictLocked forgets records with no open connection and no ban until the
// table is down to three quarters of maxAddrs (or none is left to forget).
// c.mu is held.
func (c *Controller) evictLocked(now time.Time) {
	target := c.maxAddrs / 4 * 3
	n := 0
	for ip, a := range c.addrs {
		if len(c.addrs) <= target {
			break
		}
		if a.conns <= 0 && !a.banned(now) {
			delete(c.addrs, ip)
			n++
		}
	}
	if n > 0 {
		c.evicted.Add(uint64(n))
		c.log.Warn("stratum: address table full; forgot addresses that were not idle",
			"forgot", n, "kept", len(c.addrs), "max", c.maxAddrs)
	}
}

// sweepLocked forgets the idle records. c.mu is held.
func (c *Controller) sweepLocked(now time.Time, lim *Limits) {
	for ip, a := range c.addrs {
		if a.idle(now, lim) {
			delete(c.addrs, ip)
		}
	}
}
