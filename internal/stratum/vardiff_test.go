package stratum

import (
	"github.com/stratumd/stratumd/internal/stratum/wire"

	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var simEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// sample is the difficulty in force from At on.
type sample struct {
	At   time.Duration
	Diff float64
}

// simMiner is a miner of known hashrate: at difficulty D its shares form a
// Poisson process of rate Rate/D per second (Rate in difficulty-1 shares
// per second, i.e. hashes per second / 2^32). RateAt, when set, overrides
// Rate as a function of the elapsed time.
type simMiner struct {
	Rate   float64
	RateAt func(elapsed time.Duration) float64
	Seed   uint64
	Tick   time.Duration // how often the session calls OnTick
}

// run drives a Vardiff for d of simulated time and returns the difficulty
// history (first sample at 0) and the number of shares sent.
func (m simMiner) run(cfg VardiffConfig, start float64, d time.Duration) ([]sample, int) {
	rng := rand.New(rand.NewPCG(m.Seed, 0x5eed))
	tick := m.Tick
	if tick == 0 {
		tick = 5 * time.Second
	}
	v := NewVardiff(cfg, start, simEpoch)
	hist := []sample{{0, v.Difficulty()}}
	rate := func(el time.Duration) float64 {
		if m.RateAt != nil {
			return m.RateAt(el)
		}
		return m.Rate
	}
	// nextShare draws the time of the next share after el at difficulty diff.
	nextShare := func(el time.Duration, diff float64) time.Duration {
		r := rate(el)
		if r <= 0 {
			return math.MaxInt64
		}
		secs := math.Min(rng.ExpFloat64()*diff/r, 1e9)
		return el + time.Duration(secs*float64(time.Second)) + 1
	}
	el := time.Duration(0)
	diff := v.Difficulty()
	share := nextShare(el, diff)
	tickAt := tick
	shares := 0
	rateNow := rate(0)
	for el < d {
		var nd float64
		var changed bool
		if share <= tickAt {
			el = share
			shares++
			nd, changed = v.OnShare(simEpoch.Add(el), diff)
		} else {
			el = tickAt
			tickAt += tick
			nd, changed = v.OnTick(simEpoch.Add(el))
		}
		if nd != v.Difficulty() {
			panic("returned difficulty differs from Difficulty()")
		}
		if changed != (nd != diff) {
			panic("changed flag disagrees with the difficulty")
		}
		if changed {
			diff = nd
			hist = append(hist, sample{el, diff})
		}
		if r := rate(el); changed || el == share || r != rateNow {
			rateNow = r
			share = nextShare(el, diff) // Poisson: memoryless, redraw is exact
		}
	}
	return hist, shares
}

// within reports whether a is within factor f of b.
func within(a, b, f float64) bool { return a <= b*f && a >= b/f }

// firstWithin returns when the difficulty first came within factor f of
// ideal and stayed there for at least hold, or -1.
func firstWithin(h []sample, ideal, f float64, end, hold time.Duration) time.Duration {
	for i, s := range h {
		if !within(s.Diff, ideal, f) {
			continue
		}
		until := end
		if i+1 < len(h) {
			until = h[i+1].At
		}
		if until-s.At >= hold || until == end {
			return s.At
		}
	}
	return -1
}

// fractionWithin returns the share of [from, to) during which the
// difficulty was within factor f of ideal.
func fractionWithin(h []sample, ideal, f float64, from, to time.Duration) float64 {
	var in time.Duration
	for i, s := range h {
		a := max(s.At, from)
		b := to
		if i+1 < len(h) {
			b = min(h[i+1].At, to)
		}
		if b > a && within(s.Diff, ideal, f) {
			in += b - a
		}
	}
	return float64(in) / float64(to-from)
}

func diffAt(h []sample, at time.Duration) float64 {
	d := h[0].Diff
	for _, s := range h {
		if s.At > at {
			break
		}
		d = s.Diff
	}
	return d
}

func TestVardiffConverges(t *testing.T) {
	const ideal = 65536.0 // 10 s per share at Target 10 s
	cfg := VardiffConfig{Target: 10 * time.Second, Min: 1e-6, Max: 1e15}
	rate := ideal / cfg.Target.Seconds()
	const (
		simFor = 60 * time.Minute
		seeds  = 20
	)
	cases := []struct {
		name string
		// start difficulty
		start float64
		// every seed within 1.5× of ideal (for at least a minute) by worst,
		// and on average by mean
		worst, mean time.Duration
	}{
		{"1e6 too low", ideal / 1e6, 5 * time.Minute, time.Minute},
		{"1e6 too high", ideal * 1e6, 20 * time.Minute, 12 * time.Minute},
		{"right", ideal, 0, 0},
		{"4x too low", ideal / 4, 12 * time.Minute, 3 * time.Minute},
		{"4x too high", ideal * 4, 12 * time.Minute, 4 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sumAt time.Duration
			var sumFrac float64
			for seed := uint64(1); seed <= seeds; seed++ {
				h, _ := simMiner{Rate: rate, Seed: seed}.run(cfg, tc.start, simFor)
				at := firstWithin(h, ideal, 1.5, simFor, time.Minute)
				if at < 0 || at > tc.worst {
					t.Errorf("seed %d: within 1.5× of %v at %v, want by %v (history %v)", seed, ideal, at, tc.worst, head(h))
					continue
				}
				sumAt += at
				// After convergence it stays close: within 1.5× most of the
				// time and never off by more than 2.5×.
				from := at + 5*time.Minute
				f := fractionWithin(h, ideal, 1.5, from, simFor)
				sumFrac += f
				if f < 0.6 {
					t.Errorf("seed %d: within 1.5× only %.0f%% of the time after convergence: %v", seed, 100*f, h)
				}
				for _, s := range h {
					if s.At >= from && !within(s.Diff, ideal, 2.5) {
						t.Errorf("seed %d: difficulty %v at %v, more than 2.5× from %v", seed, s.Diff, s.At, ideal)
						break
					}
				}
			}
			if mean := sumAt / seeds; mean > tc.mean {
				t.Errorf("mean convergence time %v, want at most %v", mean, tc.mean)
			}
			if mean := sumFrac / seeds; mean < 0.95 {
				t.Errorf("within 1.5× %.1f%% of the time after convergence on average, want >= 95%%", 100*mean)
			}
		})
	}
}

func head(h []sample) []sample { return h[:min(len(h), 12)] }

func TestVardiffHysteresis(t *testing.T) {
	// A steady miner at the ideal difficulty is rarely retargeted.
	const ideal = 4096.0
	cfg := VardiffConfig{}
	for seed := uint64(1); seed <= 10; seed++ {
		h, shares := simMiner{Rate: ideal / 10, Seed: seed}.run(cfg, ideal, 2*time.Hour)
		if shares < 500 || shares > 940 {
			t.Fatalf("seed %d: %d shares in 2 h, want about 720 (simulator broken?)", seed, shares)
		}
		if changes := len(h) - 1; changes > 12 {
			t.Errorf("seed %d: %d retargets in 2 h at the ideal difficulty: %v", seed, changes, head(h))
		}
	}
}

func TestVardiffFractional(t *testing.T) {
	// A CPU miner whose ideal difficulty is 0.0123: difficulties go below 1
	// when Min allows, with three significant digits.
	const ideal = 0.0123
	cfg := VardiffConfig{Min: 1.0 / 1024}
	h, _ := simMiner{Rate: ideal / 10, Seed: 7}.run(cfg, 1, time.Hour)
	if got := diffAt(h, time.Hour); !within(got, ideal, 1.5) {
		t.Fatalf("difficulty after 1 h = %v, want within 1.5× of %v (history %v)", got, ideal, head(h))
	}
	for _, s := range h[1:] {
		if s.Diff >= 1 {
			continue
		}
		txt := string(wire.AppendDifficulty(nil, s.Diff))
		if len(txt) > len("0.0009765625") {
			t.Errorf("difficulty %v prints as %q, want at most 3 significant digits", s.Diff, txt)
		}
	}
}

func TestVardiffBounds(t *testing.T) {
	cfg := VardiffConfig{Min: 64, Max: 4096}
	t.Run("fast miner capped at Max", func(t *testing.T) {
		h, _ := simMiner{Rate: 1e6, Seed: 1}.run(cfg, 64, 20*time.Minute)
		for _, s := range h {
			if s.Diff > cfg.Max || s.Diff < cfg.Min {
				t.Fatalf("difficulty %v outside [%v, %v]", s.Diff, cfg.Min, cfg.Max)
			}
		}
		if got := h[len(h)-1].Diff; got != cfg.Max {
			t.Fatalf("final difficulty %v, want Max %v", got, cfg.Max)
		}
	})
	t.Run("slow miner held at Min", func(t *testing.T) {
		h, _ := simMiner{Rate: 0.1, Seed: 2}.run(cfg, 4096, time.Hour)
		for _, s := range h {
			if s.Diff > cfg.Max || s.Diff < cfg.Min {
				t.Fatalf("difficulty %v outside [%v, %v]", s.Diff, cfg.Min, cfg.Max)
			}
		}
		if got := h[len(h)-1].Diff; got != cfg.Min {
			t.Fatalf("final difficulty %v, want Min %v", got, cfg.Min)
		}
	})
	t.Run("start clamped", func(t *testing.T) {
		for _, tc := range []struct{ start, want float64 }{
			{1, 64}, {1e9, 4096}, {math.NaN(), 64}, {-5, 64}, {math.Inf(1), 4096}, {100.4, 100},
		} {
			if got := NewVardiff(cfg, tc.start, simEpoch).Difficulty(); got != tc.want {
				t.Errorf("start %v: difficulty %v, want %v", tc.start, got, tc.want)
			}
		}
	})
}

func TestVardiffQuietMinerLowered(t *testing.T) {
	// A miner at the ideal difficulty goes silent after 10 minutes.
	const ideal = 65536.0
	cfg := VardiffConfig{Min: 1}
	stop := 10 * time.Minute
	m := simMiner{Seed: 3, RateAt: func(el time.Duration) float64 {
		if el >= stop {
			return 0
		}
		return ideal / 10
	}}
	h, _ := m.run(cfg, ideal, 40*time.Minute)
	before := diffAt(h, stop)
	if !within(before, ideal, 1.5) {
		t.Fatalf("difficulty before the silence %v, want near %v", before, ideal)
	}
	if got := diffAt(h, stop+3*time.Minute); got >= before/2 {
		t.Errorf("3 min into the silence difficulty %v, want well below %v", got, before)
	}
	if got := diffAt(h, 40*time.Minute); got != cfg.Min {
		t.Errorf("30 min into the silence difficulty %v, want Min %v", got, cfg.Min)
	}
	for i := 1; i < len(h); i++ {
		if h[i].At > stop+time.Minute && h[i].Diff > h[i-1].Diff {
			t.Errorf("difficulty rose during the silence: %v -> %v at %v", h[i-1].Diff, h[i].Diff, h[i].At)
		}
	}
}

func TestVardiffFollowsHashrateChange(t *testing.T) {
	// The hashrate drops 100× after 20 minutes, then recovers after 60:
	// the difficulty follows both ways without oscillating.
	const ideal = 1e6
	cfg := VardiffConfig{}
	m := simMiner{Seed: 4, RateAt: func(el time.Duration) float64 {
		if el >= 20*time.Minute && el < 60*time.Minute {
			return ideal / 10 / 100
		}
		return ideal / 10
	}}
	h, _ := m.run(cfg, ideal, 100*time.Minute)
	if f := fractionWithin(h, ideal/100, 1.5, 40*time.Minute, 60*time.Minute); f < 0.9 {
		t.Errorf("after the drop within 1.5× of %v only %.0f%% of the time: %v", ideal/100, 100*f, h)
	}
	if f := fractionWithin(h, ideal, 1.5, 65*time.Minute, 100*time.Minute); f < 0.9 {
		t.Errorf("after the recovery within 1.5× of %v only %.0f%% of the time: %v", ideal, 100*f, h)
	}
}

func TestVardiffIgnoresBadShares(t *testing.T) {
	v := NewVardiff(VardiffConfig{}, 1000, simEpoch)
	for i := range 100 {
		now := simEpoch.Add(time.Duration(i) * time.Millisecond)
		for _, d := range []float64{0, -1, math.NaN(), math.Inf(1)} {
			if got, changed := v.OnShare(now, d); changed || got != 1000 {
				t.Fatalf("share of difficulty %v changed the difficulty to %v", d, got)
			}
		}
	}
}
