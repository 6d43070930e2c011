package stratum

import (
	"context"
	"fmt"
	"math"
	"net"
	"time"
)

// Profile is one listener's difficulty profile (ServeListener): its own
// share difficulty bounds, start difficulty, vardiff target and optional
// power-of-two rounding. A zero field takes the server's Limits, which may
// change while the server runs (SetLimits), so a profile is resolved
// against the limits in force whenever a session asks.
type Profile struct {
	// MinDiff and MaxDiff bound the difficulty of the listener's sessions;
	// MinDiff may be below 1.
	MinDiff, MaxDiff float64
	// StartDiff is a new session's difficulty; zero: the server's
	// StartDiff, bounded to the listener's [MinDiff, MaxDiff].
	StartDiff float64
	// VardiffTarget is the wanted time between a session's shares.
	VardiffTarget time.Duration
	// Pow2 rounds every difficulty the listener's sessions get to a power
	// of two (..., 1/4, 1/2, 1, 2, 4, ...) inside [MinDiff, MaxDiff], for
	// firmware that mishandles other values.
	Pow2 bool
}

// ListenerConfig is what the sessions of one listener share beyond the
// server's Config.
type ListenerConfig struct {
	// Profile is the listener's difficulty profile; its zero fields take
	// the server's Limits.
	Profile Profile
	// Solo makes every miner of the listener mine solo: its user name is
	// "<address>[.worker]" or "solo:<address>[.worker]" (solo.go).
	Solo bool
}

// ErrProfile reports a Profile that cannot work; it wraps ErrConfig.
var ErrProfile = fmt.Errorf("%w: difficulty profile", ErrConfig)

// Check reports why p cannot work under the limits l (the server's, or
// those it is about to get): a difficulty that is not a positive finite
// number, a negative vardiff target, MinDiff above MaxDiff or StartDiff
// outside them once the zero fields take l's values, or Pow2 with no power
// of two in [MinDiff, MaxDiff]. The error wraps ErrProfile and names the
// setting at fault and, when it came from l, says so.
func (p Profile) Check(l Limits) error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"min-diff", p.MinDiff}, {"max-diff", p.MaxDiff}, {"start-diff", p.StartDiff}} {
		if f.v != 0 && !(f.v > 0 && !math.IsInf(f.v, 0)) {
			return fmt.Errorf("%w: %s must be a positive number, got %v", ErrProfile, f.name, f.v)
		}
	}
	if p.VardiffTarget < 0 {
		return fmt.Errorf("%w: vardiff-target must not be negative, got %v", ErrProfile, p.VardiffTarget)
	}
	l = l.withDefaults()
	lo, hi := p.MinDiff, p.MaxDiff
	loFrom, hiFrom := "", ""
	if lo == 0 {
		lo, loFrom = l.MinDiff, " (the server's)"
	}
	if hi == 0 {
		hi, hiFrom = l.MaxDiff, " (the server's)"
	}
	if lo > hi {
		return fmt.Errorf("%w: min-diff %v%s is above max-diff %v%s", ErrProfile, lo, loFrom, hi, hiFrom)
	}
	if s := p.StartDiff; s != 0 && (s < lo || s > hi) {
		return fmt.Errorf("%w: start-diff %v is outside [min-diff %v%s, max-diff %v%s]", ErrProfile, s, lo, loFrom, hi, hiFrom)
	}
	if p.Pow2 || l.Pow2 {
		if _, _, ok := pow2Bounds(lo, hi); !ok {
			return fmt.Errorf("%w: pow2: no power of two in [min-diff %v%s, max-diff %v%s]", ErrProfile, lo, loFrom, hi, hiFrom)
		}
	}
	return nil
}

// set reports whether p overrides anything.
func (p Profile) set() bool { return p != Profile{} }

// resolve returns l (defaults applied) with p's non-zero fields over it.
// It never fails: where p and l disagree, p's own values win (a MaxDiff
// of p below l's MinDiff lowers the minimum to it, and the other way
// round), and the start difficulty is bounded to the result, so that
// limits replaced at run time (SetLimits) cannot make a listener's
// profile unusable; Check refuses such combinations up front.
func (p Profile) resolve(l Limits) Limits {
	l = l.withDefaults()
	if !p.set() {
		return l
	}
	if p.MinDiff > 0 && !math.IsInf(p.MinDiff, 0) {
		l.MinDiff = p.MinDiff
		l.MaxDiff = max(l.MaxDiff, l.MinDiff)
	}
	if p.MaxDiff > 0 && !math.IsInf(p.MaxDiff, 0) {
		l.MaxDiff = p.MaxDiff
		l.MinDiff = min(l.MinDiff, l.MaxDiff)
	}
	if p.StartDiff > 0 && !math.IsInf(p.StartDiff, 0) {
		l.StartDiff = p.StartDiff
	}
	if p.VardiffTarget > 0 {
		l.VardiffTarget = p.VardiffTarget
	}
	l.Pow2 = l.Pow2 || p.Pow2
	l.StartDiff = l.clamp(l.StartDiff)
	return l
}

// pow2Bounds returns the least and the greatest power of two in [lo, hi],
// and false when there is none (or lo and hi are not positive).
func pow2Bounds(lo, hi float64) (least, greatest float64, ok bool) {
	if !(lo > 0) || !(hi >= lo) || math.IsInf(hi, 0) {
		return 0, 0, false
	}
	least = math.Exp2(math.Ceil(math.Log2(lo)))
	if least < lo { // rounding in Log2
		least *= 2
	}
	greatest = math.Exp2(math.Floor(math.Log2(hi)))
	if greatest > hi {
		greatest /= 2
	}
	return least, greatest, least <= greatest
}

// roundPow2 returns the power of two nearest to d (in ratio: 3 rounds to
// 4, 2.8 to 2), or d itself when it is not a positive finite number.
func roundPow2(d float64) float64 {
	if !(d > 0) || math.IsInf(d, 0) {
		return d
	}
	return math.Exp2(math.Round(math.Log2(d)))
}

// groupLimits caches one listener's limits: its profile resolved against
// the server's limits in force, recomputed when SetLimits replaces them.
type groupLimits struct {
	from *Limits // the server's limits the cached value was resolved from
	eff  Limits
}

// limits returns the difficulty and ban settings of g's sessions: the
// server's, with g's profile over them.
func (g *serveGroup) limits(s *Server) *Limits {
	l := s.limits.Load()
	if !g.profile.set() {
		return l
	}
	if c := g.cache.Load(); c != nil && c.from == l {
		return &c.eff
	}
	c := &groupLimits{from: l, eff: g.profile.resolve(*l)}
	g.cache.Store(c)
	return &c.eff
}

// ServeListener is Serve for a listener with its own settings: the
// sessions accepted on l get lc.Profile's difficulties, and mine solo
// with lc.Solo. It fails at once,
// with an error wrapping ErrProfile and closing l, when the profile cannot
// work under the server's limits (Profile.Check).
func (s *Server) ServeListener(ctx context.Context, l net.Listener, lc ListenerConfig) error {
	if err := lc.Profile.Check(*s.limits.Load()); err != nil {
		l.Close()
		return fmt.Errorf("stratum: listener %v: %w", l.Addr(), err)
	}
	return s.serve(ctx, l, lc)
}

// limits returns the difficulty and ban settings of the session: the
// server's, with its listener's profile over them.
func (c *session) limits() *Limits { return c.group.limits(c.srv) }
