package main

import (
	"errors"
	"io"
	"testing"

	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/proxyproto"
)

// TestFDReserve: every part that holds descriptors is counted from the
// configuration: the node by kind, PostgreSQL's pool, the listeners (with
// the PROXY protocol's pending headers), the metrics listener and the
// password worker only when they run.
func TestFDReserve(t *testing.T) {
	sum := func(parts []fdPart) map[string]int {
		m := map[string]int{}
		for _, p := range parts {
			m[p.name] += p.n
		}
		return m
	}
	rpc := &config{Node: "rpc", RPCURL: []string{"a", "b"}, ZMQBlock: []string{"z"}, Listen: listenList{{Addr: "x"}}, Auth: "open", PasswordNice: 15}
	got := sum(fdReserve(rpc, 10))
	want := map[string]int{"process": fdProcess, "listeners": fdPerListener, "postgres": 10 + fdPostgresExtra,
		"spool": fdSpool, "node": 2*fdRPCNode + fdZMQ}
	if len(got) != len(want) {
		t.Fatalf("rpc, open auth, no metrics: parts %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("rpc: %s %d, want %d", k, got[k], v)
		}
	}

	emb := &config{Node: "embedded", Listen: listenList{{Addr: "x"}, {Addr: "y"}}, TLSListen: listenList{{Addr: "z"}}, ProxyProtocol: true,
		P2PListen: []string{"p"}, MetricsListen: "127.0.0.1:9100", Auth: "password", PasswordNice: 15}
	got = sum(fdReserve(emb, 4))
	if w := 3 * (fdPerListener + proxyproto.DefaultMaxPending); got["listeners"] != w {
		t.Errorf("3 listeners behind the PROXY protocol: %d, want %d", got["listeners"], w)
	}
	if got["node"] < fdLevelDB+fdBlockFiles+125+1 {
		t.Errorf("embedded node: %d, less than leveldb, block files and 125 peers", got["node"])
	}
	if got["metrics"] != 1+opsMaxConns || got["password-worker"] != fdPasswordWorker {
		t.Errorf("metrics %d, password worker %d; want %d and %d", got["metrics"], got["password-worker"], 1+opsMaxConns, fdPasswordWorker)
	}
	emb.PasswordNice = 0
	if _, ok := sum(fdReserve(emb, 4))["password-worker"]; ok {
		t.Error("password worker counted with --password-nice 0 (checks in-process)")
	}
}

// TestPlanConns: the cap is the limit less the reserve and the margin;
// --max-conns may lower it, never raise it; a limit with no room fails.
func TestPlanConns(t *testing.T) {
	reserve := []fdPart{{"a", 40}, {"b", 60}}
	margin := func(limit uint64) int { return fdMarginBase + int(limit/fdMarginDivisor) }
	for _, c := range []struct {
		limit       uint64
		maxConns    int
		want        int
		wantClamped bool
	}{
		{600, 0, 600 - 100 - margin(600), false},
		{20000, 0, 20000 - 100 - margin(20000), false},
		{20000, 5000, 5000, false},
		{600, 5000, 600 - 100 - margin(600), true},
	} {
		b, err := planConns(c.limit, c.limit, reserve, c.maxConns)
		if err != nil {
			t.Fatalf("limit %d: %v", c.limit, err)
		}
		if b.maxConns != c.want || b.clamped != c.wantClamped {
			t.Errorf("limit %d, --max-conns %d: cap %d clamped %v; want %d, %v", c.limit, c.maxConns, b.maxConns, b.clamped, c.want, c.wantClamped)
		}
		if b.maxConns+b.reserved() > int(c.limit) {
			t.Errorf("limit %d: cap %d + reserve %d over the limit", c.limit, b.maxConns, b.reserved())
		}
	}
	if _, err := planConns(150, 150, reserve, 0); !errors.Is(err, cliconf.ErrConfig) {
		t.Errorf("limit 150 under a reserve of %d: %v, want ErrConfig", 100+margin(150), err)
	}
}

// TestMaxConnsAndReusePortFlags: --max-conns is checked, and both flags
// reach the configuration.
func TestMaxConnsAndReusePortFlags(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	base := []string{"--db", "postgres://x", "--network", "regtest", "--node", "embedded"}
	cfg, _, err := parseConfig(append(base, "--max-conns", "1000", "--reuse-port"), noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConns != 1000 || !cfg.ReusePort {
		t.Fatalf("max-conns %d, reuse-port %v", cfg.MaxConns, cfg.ReusePort)
	}
	if _, _, err := parseConfig(append(base, "--max-conns", "-1"), noEnv, io.Discard); !errors.Is(err, cliconf.ErrConfig) {
		t.Fatalf("--max-conns -1: %v, want ErrConfig", err)
	}
}
