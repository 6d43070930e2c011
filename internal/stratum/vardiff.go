package stratum

import (
	"math"
	"strconv"
	"time"
)

// Vardiff defaults, used for zero fields of VardiffConfig.
const (
	DefaultVardiffTarget        = 10 * time.Second
	DefaultVardiffRetargetEvery = 60 * time.Second
	DefaultVardiffMin           = 1.0
	DefaultVardiffMax           = 1 << 52 // ~4.5e15, above any network difficulty so far
	DefaultVardiffVariance      = 0.3
	DefaultVardiffFastShares    = 10
)

const (
	// fastRatio: the fast path fires when shares arrive at least this many
	// times faster than the target. With FastShares = 10 a miner at the right
	// difficulty trips it by chance about once in a million windows.
	fastRatio = 8.0
	// maxFastStep bounds one fast-path increase, so that a burst of shares
	// delivered together cannot throw the difficulty to the maximum.
	maxFastStep = 16.0
	// minEstimateShares is how many (decayed) shares the estimate needs
	// before it may raise the difficulty; below that it may only lower it.
	minEstimateShares = 4.0
)

// VardiffConfig configures a Vardiff. Zero fields take the defaults above.
type VardiffConfig struct {
	// Target is the wanted time between shares (default 10s).
	Target time.Duration
	// Min and Max bound the difficulty (defaults 1 and 2^52). Min may be
	// below 1 (fractional difficulties, e.g. for CPU miners).
	Min, Max float64
	// RetargetEvery is how often the difficulty is reconsidered (default 60s);
	// the fast path may act sooner.
	RetargetEvery time.Duration
	// Smoothing is the time constant of the hashrate estimate (default
	// 5×RetargetEvery): longer is steadier, shorter follows changes faster.
	Smoothing time.Duration
	// Variance is the hysteresis: the difficulty changes only when the ideal
	// one differs from it by more than this fraction (default 0.3, i.e.
	// outside [D/1.3, D×1.3]).
	Variance float64
	// FastShares is how many shares, arriving at least 8× faster than the
	// target, trigger a retarget before RetargetEvery (default 10).
	FastShares int
	// QuietAfter is how long without a share counts as quiet, letting the
	// difficulty fall by the silence alone (default max(RetargetEvery,
	// 12×Target): a miner at the right difficulty is that quiet once in
	// e^12 ≈ 160,000 shares).
	QuietAfter time.Duration
	// Pow2 rounds every difficulty to the nearest power of two (in
	// ratio), and Min and Max to the powers of two inside them (when
	// there are any).
	Pow2 bool
}

func (c VardiffConfig) withDefaults() VardiffConfig {
	if c.Target <= 0 {
		c.Target = DefaultVardiffTarget
	}
	if c.RetargetEvery <= 0 {
		c.RetargetEvery = DefaultVardiffRetargetEvery
	}
	if c.Smoothing <= 0 {
		c.Smoothing = 5 * c.RetargetEvery
	}
	if !(c.Min > 0) || math.IsInf(c.Min, 0) {
		c.Min = DefaultVardiffMin
	}
	if !(c.Max > 0) || math.IsInf(c.Max, 0) {
		c.Max = DefaultVardiffMax
	}
	if c.Max < c.Min {
		c.Max = c.Min
	}
	if c.Pow2 {
		if lo, hi, ok := pow2Bounds(c.Min, c.Max); ok {
			c.Min, c.Max = lo, hi
		}
	}
	if !(c.Variance > 0) || math.IsInf(c.Variance, 0) {
		c.Variance = DefaultVardiffVariance
	}
	if c.FastShares <= 0 {
		c.FastShares = DefaultVardiffFastShares
	}
	if c.QuietAfter <= 0 {
		c.QuietAfter = max(c.RetargetEvery, 12*c.Target)
	}
	return c
}

// Vardiff adjusts one connection's share difficulty so that its shares
// arrive about once per Target.
//
// The algorithm estimates the miner's hashrate ρ (difficulty-1 shares per
// second; hashes per second is ρ × 2^32). At difficulty D shares arrive at
// rate ρ/D, so with K shares counted over an exposure E = ∫dt/D the estimate
// is ρ = K/E. Both K and E decay exponentially with time constant Smoothing,
// so old behaviour fades; a share worked at an older difficulty d counts as
// d/D shares. The estimate is of the hashrate, so it stays valid across
// difficulty changes. The ideal difficulty is ρ × Target.
//
//   - Every RetargetEvery (on a share or a tick), if the ideal difficulty
//     differs from the current one by more than the Variance hysteresis,
//     the difficulty becomes the ideal one. With fewer than 4 shares in the
//     estimate, ρ is taken as (K+1)/E and may only lower the difficulty:
//     few shares mean either a slow miner or too high a difficulty.
//   - Quiet: if no share arrived for QuietAfter (or ever), ρ is taken as at
//     most 1/∫dt/D over the silence (as if one share arrived now; D/silence
//     when D did not change); when that bound is below the estimate, the
//     estimate is dropped and restarts empty. A silent miner's difficulty
//     thus falls 12× at the first quiet retarget and about 7× at each one
//     after (with the defaults).
//   - Fast: when at least FastShares shares arrived since the last retarget
//     at 8× the target rate or more, the estimate restarts from those shares
//     alone and the difficulty is raised at once, by at most 16× per step.
//     A miner starting a million times too low converges in seconds.
//
// New difficulties are rounded, then clamped to [Min, Max]: to an integer at
// or above 1 (what every firmware parses), and to three significant digits
// below 1 (so they print short, e.g. 0.00123, never in exponent form; a Min
// such as 2^-10 is kept exact and prints as 0.0009765625). With Pow2 they
// are rounded to a power of two instead, within the powers of two inside
// [Min, Max].
//
// A Vardiff is not safe for concurrent use; the session that owns the
// connection calls it. It never reads the clock: every call takes now.
type Vardiff struct {
	cfg  VardiffConfig
	diff float64

	// Decayed share count (a share worked at d while the difficulty was D
	// counts d/D) and exposure (∫dt/D), as of estAt.
	k, e  float64
	estAt time.Time

	lastShare time.Time // zero until the first share
	start     time.Time // creation time, stands for lastShare until a share

	// Since the last share (or start), ∫dt/D up to quietAt, the last share
	// or difficulty change.
	quietAt   time.Time
	quietWork float64

	// Shares since the last retarget decision.
	windowStart time.Time
	windowSum   float64
	windowCount int
}

// NewVardiff returns a Vardiff starting at difficulty start (rounded and
// clamped; Min when not a positive number) at time now.
func NewVardiff(cfg VardiffConfig, start float64, now time.Time) *Vardiff {
	cfg = cfg.withDefaults()
	v := &Vardiff{cfg: cfg, start: now, quietAt: now, estAt: now, windowStart: now}
	if !(start > 0) {
		start = cfg.Min
	}
	v.diff = v.normalize(start)
	return v
}

// Difficulty returns the current difficulty.
func (v *Vardiff) Difficulty() float64 { return v.diff }

// OnShare records an accepted share of difficulty shareDiff (the difficulty
// the share was worked at) and returns the difficulty to use from now on,
// with changed set when it differs from the previous one. Shares with a
// non-positive or non-finite difficulty are ignored.
func (v *Vardiff) OnShare(now time.Time, shareDiff float64) (newDiff float64, changed bool) {
	if !(shareDiff > 0) || math.IsInf(shareDiff, 0) {
		return v.diff, false
	}
	v.advance(now)
	v.k += shareDiff / v.diff
	v.lastShare = now
	v.quietAt, v.quietWork = now, 0
	v.windowSum += shareDiff
	v.windowCount++

	elapsed := now.Sub(v.windowStart)
	if v.windowCount >= v.cfg.FastShares {
		secs := max(elapsed.Seconds(), 1e-3)
		windowRate := v.windowSum / secs
		if windowRate*v.cfg.Target.Seconds() >= fastRatio*v.diff {
			// Restart the estimate from this window alone.
			v.k, v.e = v.windowSum/v.diff, secs/v.diff
			ideal := min(windowRate*v.cfg.Target.Seconds(), v.diff*maxFastStep)
			return v.apply(now, ideal)
		}
	}
	if elapsed >= v.cfg.RetargetEvery {
		return v.retarget(now)
	}
	return v.diff, false
}

// OnTick lets the difficulty fall when the miner has gone quiet; the session
// calls it periodically (every few seconds, or at least every
// RetargetEvery). It returns the difficulty to use and whether it changed.
func (v *Vardiff) OnTick(now time.Time) (newDiff float64, changed bool) {
	if now.Sub(v.windowStart) >= v.cfg.RetargetEvery {
		return v.retarget(now)
	}
	return v.diff, false
}

// retarget is the periodic decision.
func (v *Vardiff) retarget(now time.Time) (float64, bool) {
	v.advance(now)
	if !(v.e > 0) {
		v.resetWindow(now)
		return v.diff, false
	}
	rate, lowerOnly := v.k/v.e, false
	if v.k < minEstimateShares {
		rate, lowerOnly = (v.k+1)/v.e, true
	}
	last := v.lastShare
	if last.IsZero() {
		last = v.start
	}
	if silence := now.Sub(last); silence >= v.cfg.QuietAfter {
		// Expected shares during the silence: ρ × ∫dt/D. Having seen none,
		// take ρ <= 1/∫dt/D.
		bound := 1 / (v.quietWork + now.Sub(v.quietAt).Seconds()/v.diff)
		if bound < rate {
			// The silence contradicts the estimate: drop it.
			rate, lowerOnly = bound, true
			v.k, v.e = 0, 0
		}
	}
	ideal := rate * v.cfg.Target.Seconds()
	h := 1 + v.cfg.Variance
	if (ideal > v.diff*h && !lowerOnly) || ideal < v.diff/h {
		return v.apply(now, ideal)
	}
	v.resetWindow(now)
	return v.diff, false
}

// apply sets the difficulty to ideal (rounded and clamped) and starts a new window.
func (v *Vardiff) apply(now time.Time, ideal float64) (float64, bool) {
	v.resetWindow(now)
	d := v.normalize(ideal)
	if d == v.diff {
		return d, false
	}
	v.advance(now) // account the exposure at the old difficulty
	v.quietWork += now.Sub(v.quietAt).Seconds() / v.diff
	v.quietAt = now
	v.diff = d
	return d, true
}

func (v *Vardiff) resetWindow(now time.Time) {
	v.windowStart = now
	v.windowSum = 0
	v.windowCount = 0
}

// advance decays the estimate to now and adds the exposure since estAt.
func (v *Vardiff) advance(now time.Time) {
	dt := now.Sub(v.estAt)
	if dt <= 0 {
		return
	}
	tau := v.cfg.Smoothing.Seconds()
	f := math.Exp(-dt.Seconds() / tau)
	v.k *= f
	v.e = v.e*f + tau*(1-f)/v.diff
	v.estAt = now
}

// normalize rounds d as documented on Vardiff and clamps it to [Min, Max].
func (v *Vardiff) normalize(d float64) float64 {
	switch {
	case math.IsNaN(d):
		d = v.cfg.Min
	case v.cfg.Pow2:
		d = roundPow2(d)
	case d >= 1:
		d = math.Round(d)
	case d > 0:
		// Three significant digits: parse the decimal text back so the
		// value prints exactly as those digits.
		if r, err := strconv.ParseFloat(strconv.FormatFloat(d, 'g', 3, 64), 64); err == nil {
			d = r
		}
	}
	return math.Min(math.Max(d, v.cfg.Min), v.cfg.Max)
}
