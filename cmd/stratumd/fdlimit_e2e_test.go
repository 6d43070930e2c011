package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/e2e/daemontest"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
)

// asDaemonEnv makes the test binary run as stratumd (TestMain).
const asDaemonEnv = "STRATUMD_TEST_AS_DAEMON"

// TestDescriptorLimitMinersCapped (issue 19, point 1): stratumd in a process
// of its own whose descriptor limit is 600 (soft and hard, so that the raise
// to the hard limit cannot lift it), in RPC mode on a real btcd, with the
// metrics listener on, and 700 miners dialling at once. Miners past the cap
// are closed at accept, counted in /metrics and logged once; the node
// connection, PostgreSQL and the spool keep their descriptors: every
// admitted miner gets the clean job of btcd's next block, and the shares
// miners then submit are stored in PostgreSQL.
func TestDescriptorLimitMinersCapped(t *testing.T) {
	if testing.Short() {
		t.Skip("needs btcd")
	}
	const (
		limit  = 600
		miners = 700
	)
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("prlimit (util-linux) is needed to start stratumd under a descriptor limit: %v", err)
	}
	btcd := btcdtest.Start(t, btcdtest.Options{Network: "simnet"})
	btcd.Generate(1)
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	payout := btcdtest.MiningAddress(btcd.Params)
	addr, metrics := daemontest.FreeAddr(t), daemontest.FreeAddr(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := daemontest.Start(t, self, daemontest.Options{
		Args: []string{"--db", db, "--listen", addr, "--metrics-listen", metrics,
			"--network", "simnet", "--node", "rpc", "--rpc-url", "http://" + btcd.RPCAddr(),
			"--rpc-user", btcdtest.RPCUser, "--rpc-pass", btcdtest.RPCPass, "--payout-address", payout,
			"--auth", "open", "--datadir", filepath.Join(dir, "node"), "--share-dir", filepath.Join(dir, "shares"),
			"--min-diff", "1e-12", "--max-diff", "1e-12", "--conn-rate-per-ip", "0"},
		Env:     []string{asDaemonEnv + "=1"},
		Wrapper: []string{prlimit, fmt.Sprintf("--nofile=%d:%d", limit, limit), "--"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	budget, err := p.WaitLog(ctx, func(l daemontest.Line) bool { return l.Msg() == "descriptor budget" })
	if err != nil {
		t.Fatal(err)
	}
	capN, err := strconv.Atoi(budget.Str("max_conns"))
	if err != nil || budget.Str("limit") != strconv.Itoa(limit) || capN <= 0 || capN >= miners {
		t.Fatalf("descriptor budget line %v: want limit %d and a cap below %d", budget, limit, miners)
	}
	t.Logf("descriptor budget: limit %s, cap %d, reserve %s", budget.Str("limit"), capN, budget.Str("reserve"))

	// 700 miners at once, a few dozen handshakes at a time.
	var (
		mu       sync.Mutex
		admitted []*miner.Miner
		refused  int
		wg       sync.WaitGroup
		sem      = make(chan struct{}, 64)
	)
	for range miners {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			m, err := miner.Dial(ctx, addr, miner.Options{User: payout, HandshakeTimeout: 30 * time.Second, MaxEvents: 16})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused++
				return
			}
			admitted = append(admitted, m)
		})
	}
	wg.Wait()
	defer func() {
		for _, m := range admitted {
			m.Close()
		}
	}()
	if len(admitted) != capN || refused != miners-capN {
		t.Fatalf("%d miners admitted, %d refused; want %d and %d", len(admitted), refused, capN, miners-capN)
	}

	// The node connection still works: btcd's next block reaches every
	// admitted miner as a clean job.
	hashes := btcd.Generate(1)
	for i, m := range admitted {
		if _, err := m.WaitEvent(ctx, func(e miner.Event) bool {
			return e.Job != nil && e.Job.Clean && e.Job.PrevHash == *hashes[0]
		}); err != nil {
			t.Fatalf("miner %d of %d: no clean job for btcd's block %s: %v", i+1, len(admitted), hashes[0], err)
		}
	}

	// PostgreSQL and the spool still work: shares are acknowledged and
	// stored.
	acked := 0
	for _, m := range admitted[:20] {
		res, err := m.Mine(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Accepted {
			acked++
		}
	}
	if acked == 0 {
		t.Fatal("no share accepted")
	}
	if err := waitShareRows(ctx, db, acked); err != nil {
		t.Fatal(err)
	}

	// The refusals are counted in /metrics and logged once (then
	// summarized), and nothing ran out of descriptors.
	m := scrapeMetrics(t, "http://"+metrics+"/metrics")
	if m["stratumd_connections_refused_full_total"] != float64(miners-capN) || m["stratumd_connections_max"] != float64(capN) {
		t.Fatalf("metrics: refused (full) %v, max %v; want %d and %d", m["stratumd_connections_refused_full_total"],
			m["stratumd_connections_max"], miners-capN, capN)
	}
	if n := p.Count(func(l daemontest.Line) bool { return strings.HasPrefix(l.Msg(), "stratum: connection refused") }); n != 1 {
		t.Errorf("%d refusal lines for %d refusals, want 1 (the rest summarized)", n, miners-capN)
	}
	if n := p.Count(func(l daemontest.Line) bool {
		return strings.Contains(fmt.Sprint(l), "too many open files") || strings.HasPrefix(l.Msg(), "rpcsource: NODE DOWN")
	}); n != 0 {
		t.Errorf("%d log lines of exhausted descriptors or a lost node:\n%s", n, p.Tail(20))
	}
	t.Logf("%d miners admitted (cap %d), %d refused; all admitted got the next block's clean job; %d shares acknowledged and stored",
		len(admitted), capN, refused, acked)
}

// waitShareRows waits until the shares table holds at least n rows.
func waitShareRows(ctx context.Context, db string, n int) error {
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for {
		var got int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM shares`).Scan(&got); err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d share rows, want %d: %w", got, n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// scrapeMetrics returns the unlabelled samples of a Prometheus text page.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") || strings.Contains(f[0], "{") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
