package stratum

import (
	"bufio"
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/stratum/wire"
)

func TestProfileCheck(t *testing.T) {
	global := Limits{MinDiff: 1, MaxDiff: 1 << 40, StartDiff: 1}
	for _, tc := range []struct {
		name string
		p    Profile
		want string // substring of the error; "" for none
	}{
		{"zero", Profile{}, ""},
		{"low port", Profile{MinDiff: 1e-4, MaxDiff: 0.01, StartDiff: 5e-4, Pow2: true}, ""},
		{"rental", Profile{MinDiff: 500_000, StartDiff: 1 << 20, VardiffTarget: 5 * time.Second}, ""},
		{"min only below global start", Profile{MinDiff: 1e-4}, ""},
		{"negative min", Profile{MinDiff: -1}, "min-diff must be a positive number"},
		{"NaN max", Profile{MaxDiff: math.NaN()}, "max-diff must be a positive number"},
		{"infinite start", Profile{StartDiff: math.Inf(1)}, "start-diff must be a positive number"},
		{"negative target", Profile{VardiffTarget: -time.Second}, "vardiff-target"},
		{"min above max", Profile{MinDiff: 10, MaxDiff: 1}, "min-diff 10 is above max-diff 1"},
		{"max below the global min", Profile{MaxDiff: 0.01}, "min-diff 1 (the server's) is above max-diff 0.01"},
		{"start below min", Profile{MinDiff: 1, MaxDiff: 8, StartDiff: 0.5}, "start-diff 0.5 is outside"},
		{"start below the global min", Profile{StartDiff: 0.5}, "(the server's)"},
		{"pow2 with no power of two", Profile{MinDiff: 5, MaxDiff: 7, Pow2: true}, "no power of two in [min-diff 5, max-diff 7]"},
		{"pow2 one power of two", Profile{MinDiff: 5, MaxDiff: 8, Pow2: true}, ""},
	} {
		err := tc.p.Check(global)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		case err != nil && (!errors.Is(err, ErrProfile) || !errors.Is(err, ErrConfig)):
			t.Errorf("%s: %v does not wrap ErrProfile and ErrConfig", tc.name, err)
		}
	}
}

func TestProfileResolve(t *testing.T) {
	global := Limits{MinDiff: 1, MaxDiff: 1 << 40, StartDiff: 16, VardiffTarget: 10 * time.Second, BanThreshold: 0.7}
	for _, tc := range []struct {
		name                string
		p                   Profile
		min, max, start     float64
		target              time.Duration
		pow2                bool
		globalMin, globalMx float64
	}{
		{"zero takes the server's", Profile{}, 1, 1 << 40, 16, 10 * time.Second, false, 0, 0},
		{"own range, start bounded to it", Profile{MinDiff: 1e-4, MaxDiff: 0.01}, 1e-4, 0.01, 0.01, 10 * time.Second, false, 0, 0},
		{"own start", Profile{MinDiff: 1e-4, MaxDiff: 0.01, StartDiff: 5e-4, Pow2: true}, 1e-4, 0.01, 5e-4, 10 * time.Second, true, 0, 0},
		{"high port", Profile{MinDiff: 500_000, StartDiff: 1 << 20, VardiffTarget: 3 * time.Second}, 500_000, 1 << 40, 1 << 20, 3 * time.Second, false, 0, 0},
		// Limits replaced at run time never make a profile unusable: the
		// profile's own value wins.
		{"server min raised over the profile's max", Profile{MaxDiff: 0.01}, 0.01, 0.01, 0.01, 10 * time.Second, false, 100, 0},
		{"server max lowered under the profile's min", Profile{MinDiff: 1e6}, 1e6, 1e6, 1e6, 10 * time.Second, false, 0, 10},
	} {
		g := global
		if tc.globalMin != 0 {
			g.MinDiff = tc.globalMin
			g.MaxDiff = max(g.MaxDiff, g.MinDiff)
		}
		if tc.globalMx != 0 {
			g.MaxDiff = tc.globalMx
		}
		l := tc.p.resolve(g)
		if l.MinDiff != tc.min || l.MaxDiff != tc.max || l.StartDiff != tc.start || l.VardiffTarget != tc.target || l.Pow2 != tc.pow2 {
			t.Errorf("%s: min %v max %v start %v target %v pow2 %v; want %v %v %v %v %v", tc.name,
				l.MinDiff, l.MaxDiff, l.StartDiff, l.VardiffTarget, l.Pow2, tc.min, tc.max, tc.start, tc.target, tc.pow2)
		}
		if l.BanThreshold != 0.7 {
			t.Errorf("%s: ban threshold %v: the server's ban settings must pass through", tc.name, l.BanThreshold)
		}
	}
}

func TestPow2Rounding(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{
		{1, 1}, {3, 4}, {2.8, 2}, {1000, 1024}, {500_000, 524288}, {0.0005, 1.0 / 2048}, {1e-4, 1.0 / 8192},
	} {
		if got := roundPow2(tc.in); got != tc.want {
			t.Errorf("roundPow2(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		lo, hi, least, greatest float64
		ok                      bool
	}{
		{1e-4, 0.01, 1.0 / 8192, 1.0 / 128, true},
		{1, 1, 1, 1, true},
		{5, 8, 8, 8, true},
		{5, 7, 8, 4, false},
		{0, 7, 0, 0, false},
	} {
		lo, hi, ok := pow2Bounds(tc.lo, tc.hi)
		if ok != tc.ok || (ok && (lo != tc.least || hi != tc.greatest)) {
			t.Errorf("pow2Bounds(%v, %v) = %v, %v, %v", tc.lo, tc.hi, lo, hi, ok)
		}
	}
	// Vardiff with Pow2 keeps every difficulty a power of two inside the
	// powers of two of [Min, Max].
	now := testEpoch
	v := NewVardiff(VardiffConfig{Min: 1e-4, Max: 0.01, Target: 10 * time.Second, Pow2: true}, 0.0005, now)
	if d := v.Difficulty(); d != 1.0/2048 {
		t.Fatalf("start %v, want 2^-11", d)
	}
	// A burst of fast shares raises it (fast path), a long silence lowers it.
	for i := range 20 {
		d, _ := v.OnShare(now.Add(time.Duration(i)*time.Millisecond), v.Difficulty())
		if math.Log2(d) != math.Round(math.Log2(d)) || d > 1.0/128 {
			t.Fatalf("fast share %d: difficulty %v is not a power of two within 2^-7", i, d)
		}
	}
	if v.Difficulty() <= 1.0/2048 {
		t.Fatalf("fast shares did not raise the difficulty: %v", v.Difficulty())
	}
	for i := 1; i <= 40; i++ {
		d, _ := v.OnTick(now.Add(time.Duration(i) * 10 * time.Minute))
		if math.Log2(d) != math.Round(math.Log2(d)) || d < 1.0/8192 {
			t.Fatalf("tick %d: difficulty %v is not a power of two within 2^-13", i, d)
		}
	}
	if v.Difficulty() != 1.0/8192 {
		t.Fatalf("a silent miner ends at %v, want the least power of two in range, 2^-13", v.Difficulty())
	}
}

// serveProfile serves a second listener of h's server with lc until the
// test ends, and returns its address.
func (h *harness) serveProfile(lc ListenerConfig) string {
	h.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := h.srv.ServeListener(ctx, l, lc); err != nil {
			h.t.Errorf("ServeListener: %v", err)
		}
	})
	h.t.Cleanup(func() { cancel(); wg.Wait() })
	return l.Addr().String()
}

func (h *harness) dialAddr(addr string) *client {
	h.t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return &client{t: h.t, conn: conn, r: bufio.NewReader(conn)}
}

// A listener's profile gives its sessions their start difficulty, bounds
// mining.suggest_difficulty (before and after authorize) and vardiff to
// its range, and rounds to powers of two with Pow2; the server's other
// listener keeps the server's limits; keys the profile leaves unset
// follow SetLimits.
func TestServeListenerProfile(t *testing.T) {
	h := startHarness(t, harnessOpts{config: func(c *Config) {
		c.MinDiff, c.MaxDiff, c.StartDiff = 1.0/(1<<20), 1<<20, 1.0/(1<<16)
	}})
	low := h.serveProfile(ListenerConfig{Profile: Profile{MinDiff: 1e-4, MaxDiff: 0.01, StartDiff: 5e-4, Pow2: true}})
	high := h.serveProfile(ListenerConfig{Profile: Profile{MinDiff: 500_000}})
	user := regtestAddress(t, 8) + ".w"

	c := h.dialAddr(low)
	c.handshake(user)
	if c.diff != 1.0/2048 {
		t.Errorf("low port start %v, want 5e-4 rounded to 2^-11", c.diff)
	}
	for _, tc := range []struct{ suggest, want float64 }{
		{1000, 1.0 / 128},    // bounded to 0.01, the greatest power of two in range
		{1e-9, 1.0 / 8192},   // bounded to 1e-4, the least power of two in range
		{0.003, 1.0 / 256},   // nearest power of two
		{0.0012, 1.0 / 1024}, // after authorize: a retarget at once
	} {
		c.retarget(tc.suggest)
		if c.diff != tc.want {
			t.Errorf("low port: suggest %v after authorize gave %v, want %v", tc.suggest, c.diff, tc.want)
		}
	}
	// Before authorize: the hint is the start difficulty, bounded too.
	c2 := h.dialAddr(low)
	c2.call(wire.MethodSubscribe)
	c2.call(wire.MethodSuggestDifficulty, 1)
	c2.call(wire.MethodAuthorize, user, "x")
	c2.expect(wire.MethodSetDifficulty)
	if c2.diff != 1.0/128 {
		t.Errorf("low port: suggest 1 before authorize gave %v, want 2^-7", c2.diff)
	}

	c3 := h.dialAddr(high)
	c3.handshake(user)
	if c3.diff != 500_000 {
		t.Errorf("high port start %v, want its min-diff 500000 (the server's start is below it)", c3.diff)
	}
	c3.retarget(1e7)
	c3.retarget(1)
	if c3.diff != 500_000 {
		t.Errorf("high port: suggest 1 gave %v, want it bounded to 500000", c3.diff)
	}

	// The default listener keeps the server's limits.
	c4 := h.dial()
	c4.handshake(user)
	if c4.diff != 1.53e-5 {
		t.Errorf("default port start %v, want the server's 2^-16 to three digits, 1.53e-05", c4.diff)
	}

	// Unset keys follow the server's limits as they change.
	l := h.srv.CurrentLimits()
	l.MaxDiff = 1 << 21
	if err := h.srv.SetLimits(l); err != nil {
		t.Fatal(err)
	}
	c5 := h.dialAddr(high)
	c5.call(wire.MethodSubscribe)
	c5.call(wire.MethodSuggestDifficulty, 1e12)
	c5.call(wire.MethodAuthorize, user, "x")
	c5.expect(wire.MethodSetDifficulty)
	if c5.diff != 1<<21 {
		t.Errorf("high port after SetLimits: suggest 1e12 gave %v, want the server's new max 2^21", c5.diff)
	}

	// A profile that cannot work is refused, and its listener closed.
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = h.srv.ServeListener(context.Background(), l2, ListenerConfig{Profile: Profile{MinDiff: 5, MaxDiff: 7, Pow2: true}})
	if !errors.Is(err, ErrProfile) {
		t.Errorf("bad profile: %v", err)
	}
	if _, err := l2.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener of a refused profile not closed: %v", err)
	}
}
