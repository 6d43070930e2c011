package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stratumd/stratumd/internal/stratum/stratumtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startPool starts the real server (stratumtest) on a chain whose shares
// are not blocks.
func startPool(t *testing.T) *stratumtest.Pool {
	t.Helper()
	return stratumtest.Start(t, stratumtest.Config{Bits: 0x1d00ffff})
}

// TestRunAgainstServer runs the load core against the real server with 50
// connections for a second, with a new tip once all are connected, and
// checks that the report's counts agree with each other and with the
// server's.
func TestRunAgainstServer(t *testing.T) {
	for _, configure := range []bool{false, true} {
		name := "cpuminer"
		if configure {
			name = "espminer"
		}
		t.Run(name, func(t *testing.T) {
			p := startPool(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rep, err := Run(ctx, Config{
				Addr:        p.Addr,
				Conns:       50,
				Duration:    time.Second,
				Users:       []Credential{{User: stratumtest.Address(1), Password: "x"}},
				Configure:   configure,
				PID:         os.Getpid(),
				Settle:      time.Millisecond,
				OnConnected: func() { p.Source.Advance() },
			})
			if err != nil {
				t.Fatal(err)
			}
			c := rep.Connections
			if c.Attempted != 50 || c.Established != 50 || c.Failed != 0 || c.Dropped != 0 {
				t.Fatalf("connections %+v", c)
			}
			s := rep.Shares.json()
			if s.Accepted == 0 {
				t.Fatalf("no accepted shares: %+v", s)
			}
			if s.Submitted != s.Accepted+s.Rejected+s.Unanswered {
				t.Fatalf("submitted %d != accepted %d + rejected %d + unanswered %d",
					s.Submitted, s.Accepted, s.Rejected, s.Unanswered)
			}
			var reasons int64
			for k, v := range s.RejectReasons {
				if !strings.HasPrefix(k, "21 ") { // only stale shares around the new tip
					t.Errorf("unexpected rejection %q: %d", k, v)
				}
				reasons += v
			}
			if reasons != s.Rejected {
				t.Fatalf("reject reasons sum to %d, rejected %d", reasons, s.Rejected)
			}
			if got := int64(len(p.Shares())); got != s.Accepted {
				t.Fatalf("pool accepted %d, report %d", got, s.Accepted)
			}
			if got := int64(p.Server.Stats().SharesRejected["stale"]); got != s.Rejected {
				t.Fatalf("pool rejected %d stale, report %d", got, s.Rejected)
			}
			if l := rep.Latency; l.Count != int(s.Accepted+s.Rejected) || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.Max {
				t.Fatalf("latency %+v", l)
			}
			if s.AcceptedPerSec <= 0 || s.Seconds < 1 {
				t.Fatalf("rates %+v", s)
			}
			f := rep.FanOut
			if f.Jobs != 1 || f.Missed != 0 || len(f.PerJob) != 1 || f.PerJob[0].Received != 50 ||
				f.Delay.Count != 50 || f.Delay.P50 > f.Delay.P99 || f.Delay.P99 > f.Delay.Max {
				t.Fatalf("fan-out %+v", f)
			}
			if rep.RSS == nil || rep.RSS.BeforeKiB <= 0 || rep.RSS.AfterKiB <= 0 {
				t.Fatalf("rss %+v", rep.RSS)
			}
			// The server rejects (20) version bits outside its mask, and only
			// stale shares were rejected: every accepted share kept the
			// template's version outside the mask.
			if configure && p.Server.Stats().SharesRejected["version-bits"] != 0 {
				t.Fatalf("version bits rejected: %v", p.Server.Stats().SharesRejected)
			}

			var text, js bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + text.String())
			if !strings.Contains(text.String(), "50 established") {
				t.Fatalf("text report:\n%s", text.String())
			}
			if err := json.NewEncoder(&js).Encode(rep); err != nil {
				t.Fatal(err)
			}
			var back struct {
				Shares struct {
					Accepted int64 `json:"accepted"`
				} `json:"shares"`
			}
			if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Shares.Accepted != s.Accepted {
				t.Fatalf("json report %s: %v", js.String(), err)
			}
		})
	}
}

func TestRunRateLimited(t *testing.T) {
	p := startPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{
		Addr: p.Addr, Conns: 5, Duration: time.Second, Rate: 20,
		Users: []Credential{{User: stratumtest.Address(2)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// 20/s for one second: the pacer allows at most 21 (the first slot is
	// immediate), hashing permitting.
	if n := rep.Shares.Submitted.Load(); n == 0 || n > 21 {
		t.Fatalf("submitted %d at 20/s for 1s", n)
	}
}

func TestRunConnectFailures(t *testing.T) {
	p := startPool(t)
	p.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{Addr: p.Addr, Conns: 3, Users: []Credential{{User: stratumtest.Address(3)}}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connections.Failed != 3 || rep.Connections.Established != 0 {
		t.Fatalf("connections %+v", rep.Connections)
	}
	if len(rep.Connections.FailReasons) == 0 {
		t.Fatal("no failure reason")
	}
}

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	if _, _, err := parseFlags([]string{"-conns", "10"}, &stderr); err == nil {
		t.Fatal("no user accepted")
	}
	f, err := os.CreateTemp(t.TempDir(), "users")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("# pool users\nalice:pw\n\nbob\nsolo:bcrt1qaddr\nsolo:bcrt1qother:pw2\n")
	f.Close()
	cfg, asJSON, err := parseFlags([]string{"-users-file", f.Name(), "-json", "-conns", "7", "-rate", "100"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !asJSON || cfg.Conns != 7 || cfg.Rate != 100 || len(cfg.Users) != 4 ||
		cfg.Users[0] != (Credential{"alice", "pw"}) || cfg.Users[1] != (Credential{"bob", "x"}) ||
		cfg.Users[2] != (Credential{"solo:bcrt1qaddr", "x"}) || cfg.Users[3] != (Credential{"solo:bcrt1qother", "pw2"}) {
		t.Fatalf("config %+v", cfg)
	}
	if _, _, err := parseFlags([]string{"-user", "u", "-conns", "0"}, &stderr); err == nil {
		t.Fatal("zero connections accepted")
	}
}

func TestReadRSS(t *testing.T) {
	v, err := readRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if v <= 0 {
		t.Fatalf("rss %d", v)
	}
	if _, err := readRSS(-1); err == nil {
		t.Fatal("rss of pid -1")
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p := percentiles(d)
	if p.Count != 100 || p.P50 != 50 || p.P90 != 90 || p.P99 != 99 || p.Max != 100 {
		t.Fatalf("%+v", p)
	}
	if (percentiles(nil) != Percentiles{}) {
		t.Fatal("empty")
	}
}

// TestRunIdleFanOut is the fan-out measurement: idle connections, a new
// tip while they wait.
func TestRunIdleFanOut(t *testing.T) {
	p := startPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{
		Addr: p.Addr, Conns: 20, Duration: time.Second, Idle: true,
		Users:       []Credential{{User: stratumtest.Address(4)}},
		OnConnected: func() { p.Source.Advance() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Shares.Submitted.Load(); n != 0 || len(p.Shares()) != 0 {
		t.Fatalf("idle run submitted %d", n)
	}
	if f := rep.FanOut; f.Jobs != 1 || f.PerJob[0].Received != 20 || f.Missed != 0 {
		t.Fatalf("fan-out %+v", f)
	}
}
