package admission

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stratumd/stratumd/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testEpoch is the fake clock's start.
var testEpoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// newTest returns a Controller on a fake clock at testEpoch, logging into
// the returned buffer.
func newTest(t *testing.T, lim Limits) (*Controller, *testutil.Clock, *testutil.SyncBuffer) {
	t.Helper()
	clock := testutil.NewClock(testEpoch)
	logs := &testutil.SyncBuffer{}
	c, err := New(Config{Limits: lim, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.FlushRefusals)
	return c, clock, logs
}

func TestConnRate(t *testing.T) {
	c, clock, _ := newTest(t, Limits{ConnRatePerIP: 2, ConnBurstPerIP: 2})
	for i := range 2 {
		if ok, why := c.Admit("10.0.0.1", "10.0.0.1:1"); !ok {
			t.Fatalf("connection %d of the burst refused: %s", i+1, why)
		}
	}
	if ok, why := c.Admit("10.0.0.1", "10.0.0.1:1"); ok || why != RefusedRate {
		t.Fatalf("third connection at once: admitted %v (%q), want refused for the rate", ok, why)
	}
	// Another address has a bucket of its own.
	if ok, _ := c.Admit("10.0.0.2", "10.0.0.2:1"); !ok {
		t.Fatal("another address refused")
	}
	// Closing connections gives no tokens back: a connect-close loop is
	// limited as well, and the address is remembered until its bucket is
	// full again.
	c.Release("10.0.0.1")
	c.Release("10.0.0.1")
	if c.addrs["10.0.0.1"] == nil {
		t.Fatal("address with an empty bucket forgotten at its last close")
	}
	if ok, _ := c.Admit("10.0.0.1", "10.0.0.1:1"); ok {
		t.Fatal("admitted after closing, before the rate refilled")
	}
	clock.Advance(500 * time.Millisecond) // one token at 2/s
	if ok, _ := c.Admit("10.0.0.1", "10.0.0.1:1"); !ok {
		t.Fatal("refused after a token was refilled")
	}
	c.Release("10.0.0.1")
	// Once the bucket is full again, the sweep forgets the address.
	clock.Advance(2 * time.Second)
	c.mu.Lock()
	c.sweepLocked(clock.Now(), c.limits.Load())
	c.mu.Unlock()
	if c.addrs["10.0.0.1"] != nil {
		t.Fatal("idle address with a full bucket kept by the sweep")
	}
	if st := c.Stats(); st.Refused != 2 || st.RefusedRate != 2 {
		t.Fatalf("stats %+v, want 2 refused for the rate", st)
	}
	// Without a rate there is no limit.
	if err := c.SetLimits(Limits{}); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if ok, why := c.Admit("10.0.0.3", "10.0.0.3:1"); !ok {
			t.Fatalf("connection %d refused without a rate: %s", i, why)
		}
	}
}

func TestConnCap(t *testing.T) {
	c, _, _ := newTest(t, Limits{MaxConnsPerIP: 2})
	for i := range 2 {
		if ok, why := c.Admit("10.0.0.1", "10.0.0.1:1"); !ok {
			t.Fatalf("connection %d refused: %s", i+1, why)
		}
	}
	if ok, why := c.Admit("10.0.0.1", "10.0.0.1:1"); ok || why != RefusedCap {
		t.Fatalf("third connection: admitted %v (%q), want refused for the cap", ok, why)
	}
	if ok, _ := c.Admit("10.0.0.2", "10.0.0.2:1"); !ok {
		t.Fatal("another address refused")
	}
	c.Release("10.0.0.1")
	if ok, why := c.Admit("10.0.0.1", "10.0.0.1:1"); !ok {
		t.Fatalf("refused after one closed: %s", why)
	}
	c.Release("10.0.0.1")
	c.Release("10.0.0.1")
	if c.addrs["10.0.0.1"] != nil {
		t.Fatal("address kept after its last close")
	}
	if st := c.Stats(); st.Refused != 1 || st.RefusedRate != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMalformedBan(t *testing.T) {
	c, clock, _ := newTest(t, Limits{BanMalformed: 3})
	const ip = "192.0.2.1"
	// Lines spread over more than BanDuration do not add up.
	c.Malformed(ip)
	c.Malformed(ip)
	clock.Advance(DefaultBanDuration)
	for i := range 2 {
		if c.Malformed(ip) {
			t.Fatalf("line %d of a new window banned", i+1)
		}
	}
	if c.Banned(ip) {
		t.Fatal("banned before the threshold")
	}
	if !c.Malformed(ip) || !c.Banned(ip) {
		t.Fatal("not banned at the third line within the window")
	}
	if ok, why := c.Admit(ip, ip+":1"); ok || why != RefusedBanned {
		t.Fatalf("banned address: admitted %v (%q)", ok, why)
	}
	// A ban counts the lines from zero again.
	for i := range 2 {
		if c.Malformed(ip) {
			t.Fatalf("line %d after a ban banned again before the threshold", i+1)
		}
	}
	clock.Advance(DefaultBanDuration - time.Nanosecond)
	if !c.Banned(ip) {
		t.Fatal("ban ended early")
	}
	clock.Advance(time.Nanosecond)
	if c.Banned(ip) {
		t.Fatal("ban did not end after BanDuration")
	}
	if ok, why := c.Admit(ip, ip+":1"); !ok {
		t.Fatalf("refused after the ban: %s", why)
	}
}

func TestBanUnban(t *testing.T) {
	c, clock, _ := newTest(t, Limits{})
	const ip = "192.0.2.1"
	c.Ban(ip, testEpoch.Add(time.Hour))
	c.Ban(ip, testEpoch.Add(time.Minute)) // a shorter ban leaves the longer
	clock.Advance(30 * time.Minute)
	if !c.Banned(ip) || c.Banned("192.0.2.2") {
		t.Fatal("ban not kept, or another address banned")
	}
	if ok, _ := c.Admit(ip, ip+":1"); ok {
		t.Fatal("banned address admitted")
	}
	c.Unban(ip)
	if c.Banned(ip) {
		t.Fatal("still banned after Unban")
	}
	if ok, why := c.Admit(ip, ip+":1"); !ok {
		t.Fatalf("refused after Unban: %s", why)
	}
	if st := c.Stats(); st.Refused != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSweep: records are forgotten once they hold nothing live, and the
// table sweeps itself as it grows.
func TestSweep(t *testing.T) {
	c, clock, _ := newTest(t, Limits{ConnRatePerIP: 1})
	c.Malformed("10.1.0.1")
	c.AuthFailed("10.1.0.2", AuthKey{User: "alice"})
	c.AdminFailed("10.1.0.3")
	c.Ban("10.1.0.4", testEpoch.Add(time.Minute))
	for i := range minSweep - 4 {
		ip := fmt.Sprintf("10.2.%d.%d", i/256, i%256)
		c.Admit(ip, ip)
		c.Release(ip)
	}
	if n := len(c.addrs); n != minSweep {
		t.Fatalf("%d records before the sweep, want %d", n, minSweep)
	}
	// One second later every connection bucket is full again; the next new
	// address sweeps them, and the live records stay.
	clock.Advance(time.Second)
	c.Admit("10.3.0.1", "10.3.0.1:1")
	if n := len(c.addrs); n != 5 {
		t.Fatalf("%d records after the sweep, want the 4 live ones and the new one", n)
	}
	if c.sweepAt != minSweep {
		t.Fatalf("next sweep at %d, want %d", c.sweepAt, minSweep)
	}
	// Failed admin and password windows end after a minute, the malformed
	// count after an hour.
	clock.Advance(time.Minute)
	c.mu.Lock()
	c.sweepLocked(clock.Now(), c.limits.Load())
	c.mu.Unlock()
	for _, ip := range []string{"10.1.0.2", "10.1.0.3", "10.1.0.4"} {
		if c.addrs[ip] != nil {
			t.Errorf("%s kept after its window ended", ip)
		}
	}
	if c.addrs["10.1.0.1"] == nil || c.addrs["10.3.0.1"] == nil {
		t.Error("malformed count or open connection forgotten")
	}
}

func TestSetLimits(t *testing.T) {
	c, _, _ := newTest(t, Limits{})
	for _, l := range []Limits{{MaxConnsPerIP: -1}, {ConnRatePerIP: -1}, {ConnRatePerIP: math.NaN()}, {ConnRatePerIP: math.Inf(1)}, {ConnRatePerIP: 1, ConnBurstPerIP: -1}} {
		if err := c.SetLimits(l); !errors.Is(err, ErrLimits) {
			t.Errorf("SetLimits(%+v): %v, want ErrLimits", l, err)
		}
	}
	if _, err := New(Config{Limits: Limits{MaxConnsPerIP: -1}}); !errors.Is(err, ErrLimits) {
		t.Errorf("New with a negative cap: %v", err)
	}
	if err := c.SetLimits(Limits{ConnRatePerIP: 50}); err != nil {
		t.Fatal(err)
	}
	if l := c.Limits(); l.ConnRatePerIP != 50 || l.ConnBurstPerIP != 50 || l.BanMalformed != DefaultBanMalformed || l.BanDuration != DefaultBanDuration {
		t.Errorf("limits in force: %+v", l)
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
		l := Limits{ConnRatePerIP: c.rate, ConnBurstPerIP: c.burst}.WithDefaults()
		if l.ConnBurstPerIP != c.wantBurst {
			t.Errorf("rate %v burst %d: burst %d, want %d", c.rate, c.burst, l.ConnBurstPerIP, c.wantBurst)
		}
	}
}

// BenchmarkAdmitRelease is the accept path: one Admit and one Release,
// over 4,096 addresses, from parallel goroutines.
func BenchmarkAdmitRelease(b *testing.B) {
	c, err := New(Config{Limits: Limits{ConnRatePerIP: 1e9, MaxConnsPerIP: 1 << 20}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ips := make([]string, 4096)
	for i := range ips {
		ips[i] = fmt.Sprintf("10.0.%d.%d", i/256, i%256)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			ip := ips[i%len(ips)]
			if ok, _ := c.Admit(ip, ip); ok {
				c.Release(ip)
			}
			i++
		}
	})
}

// TestAddressTableBounded: a flood of malformed lines from more addresses
// than the table holds keeps it at its bound; addresses with an open
// connection or a ban are never forgotten, the others are (counted), and
// an idle table is swept without evicting anything.
func TestAddressTableBounded(t *testing.T) {
	c, clock, logs := newTest(t, Limits{BanMalformed: 3})
	c.maxAddrs = 2000
	if ok, _ := c.Admit("10.0.0.1", "10.0.0.1:1"); !ok {
		t.Fatal("first connection refused")
	}
	c.Ban("10.0.0.2", clock.Now().Add(time.Hour))
	for i := range 10_000 {
		c.Malformed(fmt.Sprintf("2001:db8::%x", i))
		if n := len(c.addrs); n > c.maxAddrs {
			t.Fatalf("after %d addresses the table holds %d records, more than %d", i+1, n, c.maxAddrs)
		}
	}
	if _, ok := c.addrs["10.0.0.1"]; !ok {
		t.Error("the connected address was forgotten")
	}
	if !c.Banned("10.0.0.2") {
		t.Error("the banned address was forgotten")
	}
	ev := c.Stats().Evicted
	if ev < 10_000-uint64(c.maxAddrs) {
		t.Errorf("evicted %d records, want at least %d", ev, 10_000-c.maxAddrs)
	}
	if !strings.Contains(logs.String(), "address table full") {
		t.Error("eviction not logged")
	}
	// Two hours later every malformed record is idle: the next sweep
	// forgets them, and half a table of new addresses fits without
	// evicting anything.
	clock.Advance(2 * time.Hour)
	for i := range c.maxAddrs / 2 {
		c.Malformed(fmt.Sprintf("2001:db8:1::%x", i))
	}
	if got := c.Stats().Evicted; got != ev {
		t.Errorf("evicted %d after the old records went idle, want still %d", got, ev)
	}
}
