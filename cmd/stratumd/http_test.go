package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
)

func TestMetricsListenConfig(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	for _, bad := range []string{"9100", "localhost", "::1"} {
		_, _, err := parseConfig([]string{"--db", "postgres://x", "--network", "regtest", "--metrics-listen", bad}, noEnv, io.Discard)
		if !errors.Is(err, cliconf.ErrConfig) || !strings.Contains(err.Error(), "--metrics-listen") {
			t.Errorf("--metrics-listen %q: %v", bad, err)
		}
	}
	cfg, _, err := parseConfig([]string{"--db", "postgres://x", "--network", "regtest", "--metrics-listen", "127.0.0.1:9100"}, noEnv, io.Discard)
	if err != nil || cfg.MetricsListen != "127.0.0.1:9100" {
		t.Fatalf("%+v %v", cfg, err)
	}
}

// metricValue returns the value of the unlabelled series name (or the one
// with exactly the given label text, e.g. `{source="embedded"}`).
func metricValue(t *testing.T, base, series string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in /metrics", series)
	return 0
}

// TestDaemonServesMetrics: with --metrics-listen, the daemon serves
// /metrics, the JSON API and the page, and the metrics follow a miner's
// shares. As `make run` does, it pre-mines (--regtest-premine): one
// summary line, no line per block; and the ready line says where the page
// and the metrics are.
func TestDaemonServesMetrics(t *testing.T) {
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	r := startDaemon(t, db, "--network", "regtest", "--auth", "open", "--datadir", filepath.Join(dir, "node"),
		"--share-dir", filepath.Join(dir, "shares"), "--min-diff", "1e-9", "--max-diff", "1e-9",
		"--metrics-listen", "127.0.0.1:0", "--regtest-premine", "25")
	base := "http://" + r.d.ops.l.Addr().String()
	startCtx, startCancel := context.WithTimeout(context.Background(), time.Minute)
	defer startCancel()
	for !strings.Contains(r.logs.String(), "stratumd ready") {
		select {
		case <-startCtx.Done():
			t.Fatalf("no ready line:\n%s", r.logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
	startLogs := r.logs.String()
	if n := strings.Count(startLogs, "msg=pre-mined"); n != 1 || !strings.Contains(startLogs, "blocks=25 from=0 height=25") {
		t.Errorf("%d pre-mined lines, want one for 25 blocks:\n%s", n, startLogs)
	}
	for _, perBlock := range []string{"submitted block accepted", "found block announced"} {
		if strings.Contains(startLogs, perBlock) {
			t.Errorf("pre-mining logged %q per block:\n%s", perBlock, startLogs)
		}
	}
	for _, url := range []string{"web=" + base + "/", "metrics=" + base + "/metrics", "stratum=[stratum+tcp://" + r.addr + "]"} {
		if !strings.Contains(startLogs, url) {
			t.Errorf("the start-up logs do not say %s:\n%s", url, startLogs)
		}
	}
	if v := metricValue(t, base, `stratumd_node_up{source="embedded"}`); v != 1 {
		t.Errorf("node up %v", v)
	}
	// A regtest node without peers counts as synced, at 100 %.
	if v := metricValue(t, base, "stratumd_node_synced"); v != 1 {
		t.Errorf("stratumd_node_synced = %v", v)
	}
	if v := metricValue(t, base, "stratumd_node_sync_progress"); v != 1 {
		t.Errorf("stratumd_node_sync_progress = %v", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := miner.Dial(ctx, r.addr, miner.Options{User: regtestDevAddress, Workers: []string{"rig"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	res, err := m.Mine(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for _, x := range res {
		if x.Accepted {
			accepted++
		}
	}
	if v := metricValue(t, base, "stratumd_shares_accepted_total"); v != float64(accepted) || accepted == 0 {
		t.Errorf("accepted %v, miner saw %d", v, accepted)
	}
	if v := metricValue(t, base, `stratumd_user_hashrate{user="`+regtestDevAddress+`"}`); !(v > 0) {
		t.Errorf("user hashrate %v", v)
	}
	if v := metricValue(t, base, "stratumd_miners_authorized"); v != 1 {
		t.Errorf("authorized %v", v)
	}
	resp, err := http.Get(base + "/api/pool")
	if err != nil {
		t.Fatal(err)
	}
	var pool struct {
		Miners     int  `json:"miners"`
		DatabaseOK bool `json:"database_ok"`
	}
	err = json.NewDecoder(resp.Body).Decode(&pool)
	resp.Body.Close()
	if err != nil || pool.Miners != 1 || !pool.DatabaseOK {
		t.Errorf("/api/pool: %+v %v", pool, err)
	}
	resp, err = http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `<canvas id="chart"`) {
		t.Errorf("page: %d", resp.StatusCode)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/metrics"); err == nil {
		t.Error("metrics still served after the daemon stopped")
	}
}
