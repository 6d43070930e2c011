package stratum

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/stratum/wire"
	"github.com/stratumd/stratumd/internal/testutil"
)

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
	if r := c1.call(wire.MethodSubscribe); r.errCode() != 0 {
		t.Fatalf("first connection: %s", r.raw)
	}
	if r := c2.call(wire.MethodSubscribe); r.errCode() != 0 {
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
	if r := c.call(wire.MethodSubscribe); r.errCode() != 0 {
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

// TestMaxConnsRefusedAtAccept: past Config.MaxConns (all listeners
// together) a new connection is closed at accept without a reply, counted
// as RefusedFull and logged once for a flood; the sessions already open
// keep working, and a closed one frees its slot.
func TestMaxConnsRefusedAtAccept(t *testing.T) {
	var logBuf testutil.SyncBuffer
	h := startHarness(t, harnessOpts{config: func(c *Config) {
		c.MaxConns = 2
		c.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
	}})
	c1, c2 := h.dial(), h.dial()
	for i, c := range []*client{c1, c2} {
		if r := c.call(wire.MethodSubscribe); r.errCode() != 0 {
			t.Fatalf("connection %d: %s", i+1, r.raw)
		}
	}
	for range 3 {
		if got := h.dial().waitClosed(); len(got) != 0 {
			t.Fatalf("connection over the cap got %v", got)
		}
	}
	st := h.srv.Stats()
	if st.Refused != 3 || st.RefusedFull != 3 || st.Connections != 2 || st.MaxConns != 2 {
		t.Fatalf("refused %d (full %d), open %d, cap %d; want 3, 3, 2, 2", st.Refused, st.RefusedFull, st.Connections, st.MaxConns)
	}
	if n := strings.Count(logBuf.String(), "connection refused"); n != 1 || !strings.Contains(logBuf.String(), "server full") {
		t.Fatalf("%d log lines for 3 refusals, want 1 naming the reason (the rest summarized):\n%s", n, logBuf.String())
	}
	// The open sessions are untouched.
	if r := c1.call(wire.MethodAuthorize, regtestAddress(t, 1), "x"); r.errCode() != 0 {
		t.Fatalf("open session after the refusals: %s", r.raw)
	}
	c2.conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, ctx, "the closed session to free its slot", func() bool { return h.srv.Stats().Connections == 1 })
	if r := h.dial().call(wire.MethodSubscribe); r.errCode() != 0 {
		t.Fatalf("after a session closed: %s", r.raw)
	}
}
