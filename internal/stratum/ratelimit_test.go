package stratum

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/testutil"
)

func TestTokenBucket(t *testing.T) {
	const rate, burst = 10.0, 3 // 10 per second, 3 at once
	var b tokenBucket
	now := testEpoch
	if !b.full(now, rate) {
		t.Fatal("zero bucket not full")
	}
	for i := range burst {
		if !b.take(now, rate, burst) {
			t.Fatalf("take %d of the burst refused", i+1)
		}
	}
	if b.take(now, rate, burst) {
		t.Fatal("take beyond the burst allowed")
	}
	if b.full(now, rate) {
		t.Fatal("empty bucket reported full")
	}
	// 99 ms refill 0.99 of a token: still none.
	if b.take(now.Add(99*time.Millisecond), rate, burst) {
		t.Fatal("take allowed before a token was refilled")
	}
	// At 100 ms one token is back, and only one.
	now = now.Add(100 * time.Millisecond)
	if !b.take(now, rate, burst) {
		t.Fatal("refilled token refused")
	}
	if b.take(now, rate, burst) {
		t.Fatal("second take after one refill allowed")
	}
	// A clock that goes back refills nothing and breaks nothing.
	if b.take(now.Add(-time.Hour), rate, burst) {
		t.Fatal("take allowed on a clock that went back")
	}
	// After a long pause the bucket is full again, but holds no more than
	// the burst.
	now = now.Add(time.Hour)
	if !b.full(now, rate) {
		t.Fatal("bucket not full after an hour")
	}
	n := 0
	for b.take(now, rate, burst) {
		n++
	}
	if n != burst {
		t.Fatalf("%d takes after a long pause, want the burst %d", n, burst)
	}
	// full turns true exactly when the deficit has been refilled.
	if b.full(now.Add(299*time.Millisecond), rate) || !b.full(now.Add(300*time.Millisecond), rate) {
		t.Fatal("full before 300 ms or not after (3 tokens at 10/s)")
	}
}

func TestBanListConnRate(t *testing.T) {
	var b banList
	b.init()
	lim := Limits{ConnRatePerIP: 2, ConnBurstPerIP: 2}.withDefaults()
	now := testEpoch
	for i := range 2 {
		if ok, why := b.admit("10.0.0.1", now, &lim); !ok {
			t.Fatalf("connection %d of the burst refused: %s", i+1, why)
		}
	}
	if ok, why := b.admit("10.0.0.1", now, &lim); ok || why != refuseRate {
		t.Fatalf("third connection at once: admitted %v (%q), want refused for the rate", ok, why)
	}
	// Another address has a bucket of its own.
	if ok, _ := b.admit("10.0.0.2", now, &lim); !ok {
		t.Fatal("another address refused")
	}
	// Closing connections gives no tokens back: a connect-close loop is
	// limited as well, and the address is remembered until its bucket is
	// full again.
	b.release("10.0.0.1", now, &lim)
	b.release("10.0.0.1", now, &lim)
	if b.ips["10.0.0.1"] == nil {
		t.Fatal("address with an empty bucket forgotten at its last close")
	}
	if ok, _ := b.admit("10.0.0.1", now, &lim); ok {
		t.Fatal("admitted after closing, before the rate refilled")
	}
	now = now.Add(500 * time.Millisecond) // one token at 2/s
	if ok, _ := b.admit("10.0.0.1", now, &lim); !ok {
		t.Fatal("refused after a token was refilled")
	}
	b.release("10.0.0.1", now, &lim)
	// Once the bucket is full again, the sweep forgets the address.
	b.sweep(now.Add(2*time.Second), &lim)
	if b.ips["10.0.0.1"] != nil {
		t.Fatal("idle address with a full bucket kept by the sweep")
	}
	// Without a rate there is no limit.
	open := Limits{}.withDefaults()
	for i := range 1000 {
		if ok, why := b.admit("10.0.0.3", now, &open); !ok {
			t.Fatalf("connection %d refused without a rate: %s", i, why)
		}
	}
}

func TestLimitsConnRateDefaults(t *testing.T) {
	for _, c := range []struct {
		rate      float64
		burst     int
		wantBurst int
	}{
		{0, 0, 0}, {0.5, 0, 1}, {20, 0, 20}, {2.5, 0, 3}, {20, 100, 100},
	} {
		l := Limits{ConnRatePerIP: c.rate, ConnBurstPerIP: c.burst}.withDefaults()
		if l.ConnBurstPerIP != c.wantBurst {
			t.Errorf("rate %v burst %d: burst %d, want %d", c.rate, c.burst, l.ConnBurstPerIP, c.wantBurst)
		}
	}
}

func TestRefusalLog(t *testing.T) {
	var r refusalLog
	if _, ok := r.flush(); ok {
		t.Fatal("flush without a refusal reported a period")
	}
	now := testEpoch
	if !r.add(now, "10.0.0.1", refuseRate) {
		t.Fatal("first refusal not reported as first")
	}
	for i := range 3000 {
		ip := "10.0.0.1"
		if i%3 != 0 {
			ip = "10.1.0." + strconv.Itoa(i) // many distinct addresses
		}
		why := refuseRate
		if i%100 == 0 {
			why = refuseBanned
		}
		if r.add(now.Add(time.Duration(i)*time.Millisecond), ip, why) {
			t.Fatalf("refusal %d reported as first of a period", i+2)
		}
	}
	s, ok := r.flush()
	if !ok || s.n != 3000 || !s.since.Equal(now) {
		t.Fatalf("summary: ok %v, %d refusals since %v; want 3000 since %v", ok, s.n, s.since, now)
	}
	if s.reasons[refuseRate] != 2970 || s.reasons[refuseBanned] != 30 {
		t.Fatalf("reasons %v", s.reasons)
	}
	if s.addrs != refusalLogAddrs {
		t.Fatalf("%d addresses counted, want the bound %d", s.addrs, refusalLogAddrs)
	}
	if len(s.top) != refusalLogTop+1 || s.top[0] != "10.0.0.1×1000" || s.top[len(s.top)-1] != "others×977" {
		t.Fatalf("top %v", s.top)
	}
	var buf bytes.Buffer
	s.log(slog.New(slog.NewTextHandler(&buf, nil)))
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "count=3000") || !strings.Contains(got, "per-IP connection rate: 2970") {
		t.Fatalf("summary line: %s", got)
	}
	// The period is closed: the next refusal starts a new one.
	if _, ok := r.flush(); ok {
		t.Fatal("second flush reported a period")
	}
	if !r.add(now.Add(time.Hour), "10.0.0.9", refuseCap) {
		t.Fatal("refusal after a flush not first of a new period")
	}
	s, _ = r.flush()
	buf.Reset()
	s.log(slog.New(slog.NewTextHandler(&buf, nil)))
	if s.n != 0 || buf.Len() != 0 {
		t.Fatalf("a period with only its first refusal logged %q", buf.String())
	}
}

// TestConnRateRefusedAtAccept: connections beyond the per-IP burst are
// closed at accept without a reply, counted, and logged once; after the
// rate refills a new one gets in.
func TestConnRateRefusedAtAccept(t *testing.T) {
	var logBuf testutil.SyncBuffer
	h := startHarness(t, harnessOpts{config: func(c *Config) {
		c.ConnRatePerIP, c.ConnBurstPerIP = 1, 2
		c.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
	}})
	c1, c2 := h.dial(), h.dial()
	if r := c1.call(MethodSubscribe); r.errCode() != 0 {
		t.Fatalf("first connection: %s", r.raw)
	}
	if r := c2.call(MethodSubscribe); r.errCode() != 0 {
		t.Fatalf("second connection: %s", r.raw)
	}
	for range 3 {
		c := h.dial()
		if got := c.waitClosed(); len(got) != 0 {
			t.Fatalf("connection over the burst got %v", got)
		}
	}
	st := h.srv.Stats()
	if st.Refused != 3 || st.RefusedRate != 3 {
		t.Fatalf("refused %d, for the rate %d; want 3 and 3", st.Refused, st.RefusedRate)
	}
	if n := strings.Count(logBuf.String(), "connection refused"); n != 1 {
		t.Fatalf("%d log lines for 3 refusals, want 1 (the rest summarized):\n%s", n, logBuf.String())
	}
	h.clock.Advance(time.Second) // one token
	c := h.dial()
	if r := c.call(MethodSubscribe); r.errCode() != 0 {
		t.Fatalf("after the rate refilled: %s", r.raw)
	}
}

func TestSetLimitsConnRate(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	for _, l := range []Limits{{ConnRatePerIP: -1}, {ConnRatePerIP: math.NaN()}, {ConnRatePerIP: math.Inf(1)}, {ConnRatePerIP: 1, ConnBurstPerIP: -1}} {
		if err := h.srv.SetLimits(l); !errors.Is(err, ErrConfig) {
			t.Errorf("SetLimits(rate %v, burst %d): %v, want ErrConfig", l.ConnRatePerIP, l.ConnBurstPerIP, err)
		}
	}
	if err := h.srv.SetLimits(Limits{ConnRatePerIP: 50}); err != nil {
		t.Fatal(err)
	}
	if l := h.srv.CurrentLimits(); l.ConnRatePerIP != 50 || l.ConnBurstPerIP != 50 {
		t.Errorf("limits in force: rate %v burst %d, want 50 and 50", l.ConnRatePerIP, l.ConnBurstPerIP)
	}
}
