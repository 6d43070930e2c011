package httpapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"golang.org/x/sync/errgroup"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/httpapi"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/store/spool"
	"github.com/stratumd/stratumd/internal/stratum"
)

// scrape fetches and parses base/metrics.
func scrape(t testing.TB, base string) *exposition {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != httpapi.ContentTypeMetrics {
		t.Fatalf("/metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	e, err := parseExposition(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return e
}

func regtestAddr(t testing.TB, b byte) btcutil.Address {
	t.Helper()
	var h [20]byte
	for i := range h {
		h[i] = b
	}
	a, err := btcutil.NewAddressWitnessPubKeyHash(h[:], &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fixedResubmitter reports the same resubmitter counters every time.
type fixedResubmitter stratum.ResubmitterStats

func (f fixedResubmitter) Stats() stratum.ResubmitterStats { return stratum.ResubmitterStats(f) }

// TestMetricsMoveWithShares runs the stratum server on a chaintest chain
// with PostgreSQL, a real spool and drainer, and the HTTP server on a real
// listener; the in-repo CPU miner's shares move the counters, the hashrate
// and the database write histogram, and a block in the database shows in
// the block counts.
func TestMetricsMoveWithShares(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	sp, err := spool.Open(spool.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	drainer, err := store.NewDrainer(store.DrainerConfig{Store: st, Spool: sp, InstanceID: 2,
		QuarantineDir: filepath.Join(t.TempDir(), "q"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	params := &chaincfg.RegressionNetParams
	src := chaintest.New(params)
	src.SetBits(0x1e0fffff) // network difficulty 2^-12: shares at 1e-6 are rarely blocks
	pkScript, err := txscript.PayToAddrScript(regtestAddr(t, 0x42))
	if err != nil {
		t.Fatal(err)
	}
	tracker := httpapi.NewTracker(httpapi.TrackerConfig{})
	srv, err := stratum.New(stratum.Config{
		Source: src, Network: params, Users: st, Shares: store.NewShareWriter(sp), Blocks: st,
		PayoutScript: pkScript, InstanceID: 2, Auth: stratum.AuthOpen,
		Limits:   stratum.Limits{MinDiff: 1e-7, MaxDiff: 1 << 20, StartDiff: 1e-6, VardiffTarget: time.Hour},
		Observer: tracker,
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Config{
		Stratum: srv, Drainer: drainer, Store: st, Tracker: tracker, Version: "v1.2.3 \"x\"",
		Resubmitter: fixedResubmitter{Pending: 2, Resubmitted: 9, Failed: 4, OnChain: 5, Orphaned: 1, Rejected: 0},
		Node: func() httpapi.NodeHealth {
			return httpapi.NodeHealth{Kind: "rpc", Height: 7, Up: true, Outages: 3, Nodes: []httpapi.NodeState{
				{Name: "http://a:8332", Healthy: true, Height: 7, Outages: 1},
				{Name: "http://b:8332", Healthy: false, Height: 5, Outages: 2, ZMQGaps: 4},
			}}
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	stratumL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + httpL.Addr().String()

	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	infraCtx, stopInfra := context.WithCancel(context.Background())
	var ig errgroup.Group
	ig.Go(func() error { return sp.Run(infraCtx) })
	ig.Go(func() error { return drainer.Run(infraCtx) })
	g.Go(func() error { return srv.Run(ctx) })
	g.Go(func() error { return srv.Serve(ctx, stratumL) })
	g.Go(func() error { return api.Serve(ctx, httpL) })
	defer func() {
		cancel()
		if err := g.Wait(); err != nil {
			t.Error(err)
		}
		stopInfra()
		if err := ig.Wait(); err != nil {
			t.Error(err)
		}
		// The HTTP server is gone with its context.
		if _, err := http.Get(base + "/metrics"); err == nil {
			t.Error("HTTP server still answers after its context ended")
		}
	}()

	// Before any miner: the families are there, at zero; no job yet
	// means no template age.
	e := scrape(t, base)
	for _, name := range []string{"stratumd_connections", "stratumd_miners_subscribed", "stratumd_miners_authorized",
		"stratumd_shares_accepted_total", "stratumd_hashrate", "stratumd_spool_backlog", "stratumd_database_up",
		"stratumd_shares_version_bits_unnegotiated_total", "stratumd_miner_replies_total", "stratumd_reconnects_total"} {
		if e.types[name] == "" || e.help[name] == "" {
			t.Errorf("%s has no TYPE or HELP", name)
		}
	}
	if e.types["stratumd_db_write_seconds"] != "histogram" || e.types["stratumd_shares_rejected_total"] != "counter" {
		t.Errorf("types %v", e.types)
	}
	if e.get(t, "stratumd_shares_accepted_total") != 0 || e.get(t, "stratumd_hashrate") != 0 ||
		e.get(t, "stratumd_database_up") != 1 || e.get(t, "stratumd_blocks", "status", "orphaned") != 0 {
		t.Error("metrics not at zero before any share")
	}
	if e.get(t, "stratumd_build_info", "version", `v1.2.3 "x"`) != 1 {
		t.Error("build info")
	}
	if e.get(t, "stratumd_rpc_node_up", "node", "http://b:8332") != 0 || e.get(t, "stratumd_rpc_node_up", "node", "http://a:8332") != 1 ||
		e.get(t, "stratumd_rpc_node_outages_total", "node", "http://b:8332") != 2 || e.get(t, "stratumd_node_up", "source", "rpc") != 1 ||
		e.get(t, "stratumd_node_outages_total") != 3 || e.get(t, "stratumd_node_height") != 7 ||
		e.get(t, "stratumd_rpc_zmq_gaps_total", "node", "http://b:8332") != 4 || e.get(t, "stratumd_rpc_zmq_gaps_total", "node", "http://a:8332") != 0 {
		t.Error("node health metrics wrong")
	}

	mctx, mcancel := context.WithTimeout(ctx, time.Minute)
	defer mcancel()
	user := regtestAddr(t, 0x07).EncodeAddress()
	m, err := miner.Dial(mctx, stratumL.Addr().String(), miner.Options{User: user, Workers: []string{"rig1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// A new tip: its job is fanned out to the miner (and timed).
	src.Advance()
	cleanJobs := 0
	if _, err := m.WaitEvent(mctx, func(ev miner.Event) bool {
		if ev.Job != nil && ev.Job.Clean {
			cleanJobs++
		}
		return cleanJobs == 2 // the first job, then the new tip's
	}); err != nil {
		t.Fatal(err)
	}
	const n = 6
	results, err := m.Mine(mctx, n)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.Accepted {
			t.Fatalf("share rejected: %v", r.Error)
		}
		if r.MeetsNetwork {
			t.Skip("a share at difficulty 1e-6 was a block (p < 1%); the counts would differ")
		}
	}
	if r, err := m.Submit(mctx, results[0].Share); err != nil || r.Accepted {
		t.Fatalf("duplicate: %+v %v", r, err)
	}

	// Wait until the drainer has stored every durable share.
	if err := drainer.WaitStored(mctx, sp.Durable()); err != nil {
		t.Fatal(err)
	}
	// A block of the pool's, orphaned since.
	if _, err := st.InsertBlock(mctx, store.Block{Height: 9, Hash: strings.Repeat("ab", 32), PrevHash: strings.Repeat("cd", 32),
		FoundAt: time.Now(), Username: user, Worker: "rig1", NetworkDifficulty: 1, Status: store.BlockOrphaned,
		LastShare: store.SharePos{Time: time.Now(), Instance: 2, Seq: 1}}); err != nil {
		t.Fatal(err)
	}

	e = scrape(t, base)
	if got := e.get(t, "stratumd_shares_accepted_total"); got != n {
		t.Errorf("accepted %v, want %d", got, n)
	}
	if got := e.get(t, "stratumd_shares_rejected_total", "reason", "duplicate"); got != 1 {
		t.Errorf("duplicates %v, want 1", got)
	}
	if got := e.get(t, "stratumd_shares_rejected_total", "reason", "low-difficulty"); got != 0 {
		t.Errorf("low-difficulty %v, want 0", got)
	}
	// Every close reason is there from the start, at 0 while the one miner
	// is still connected.
	if got := e.get(t, "stratumd_sessions_closed_total", "reason", "hung-up"); got != 0 {
		t.Errorf("sessions closed (hung-up) %v, want 0", got)
	}
	if got := e.get(t, "stratumd_share_difficulty_total"); math.Abs(got-n*1e-6) > 1e-15 {
		t.Errorf("difficulty total %v, want %v", got, n*1e-6)
	}
	if e.get(t, "stratumd_connections") != 1 || e.get(t, "stratumd_miners_subscribed") != 1 ||
		e.get(t, "stratumd_miners_authorized") != 1 || e.get(t, "stratumd_connections_accepted_total") != 1 {
		t.Error("connection gauges wrong")
	}
	pool := e.get(t, "stratumd_hashrate")
	userRate := e.get(t, "stratumd_user_hashrate", "user", user)
	if !(pool > 0) || userRate != pool || e.get(t, "stratumd_active_workers") != 1 || e.get(t, "stratumd_active_users") != 1 {
		t.Errorf("hashrate pool %v user %v", pool, userRate)
	}
	if e.get(t, "stratumd_spool_backlog") != 0 || e.get(t, "stratumd_spool_stored_total") != n {
		t.Error("spool metrics wrong")
	}
	count := e.get(t, "stratumd_db_write_seconds_count")
	if !(count >= 1) || e.get(t, "stratumd_db_write_seconds_bucket", "le", "+Inf") != count || !(e.get(t, "stratumd_db_write_seconds_sum") > 0) {
		t.Errorf("db write histogram: count %v", count)
	}
	prev := 0.0
	for _, b := range store.LatencyBounds() {
		v := e.get(t, "stratumd_db_write_seconds_bucket", "le", fmt.Sprint(b.Seconds()))
		if v < prev || v > count {
			t.Errorf("bucket le=%v: %v after %v (count %v)", b.Seconds(), v, prev, count)
		}
		prev = v
	}
	if e.get(t, "stratumd_blocks", "status", "orphaned") != 1 || e.get(t, "stratumd_blocks", "status", "credited") != 0 {
		t.Error("block counts wrong")
	}
	if e.get(t, "stratumd_found_blocks_pending") != 2 || e.get(t, "stratumd_block_resubmissions_total") != 9 ||
		e.get(t, "stratumd_block_resubmissions_failed_total") != 4 ||
		e.get(t, "stratumd_found_blocks_settled_total", "outcome", "confirmed") != 5 ||
		e.get(t, "stratumd_found_blocks_settled_total", "outcome", "orphaned") != 1 ||
		e.get(t, "stratumd_found_blocks_settled_total", "outcome", "rejected") != 0 {
		t.Error("resubmitter metrics wrong")
	}
	_, height := src.Tip()
	if e.get(t, "stratumd_job_height") != float64(height+1) || !(e.get(t, "stratumd_template_age_seconds") >= 0) ||
		e.get(t, "stratumd_jobs_total") < 1 {
		t.Error("job metrics wrong")
	}
	if d := e.get(t, "stratumd_network_difficulty"); math.Abs(d-chain.TargetDifficulty(blockchain.CompactToBig(0x1e0fffff))) > 1e-12 {
		t.Errorf("network difficulty %v", d)
	}
	if !(e.get(t, "stratumd_fanout_max_seconds") > 0) {
		t.Error("no fan-out time")
	}

	// The JSON view agrees.
	var p httpapi.PoolJSON
	get(t, base, "/api/pool", &p)
	if p.Miners != 1 || p.SharesAccepted != n || !(p.Hashrate > 0) || p.BlocksFound == nil || *p.BlocksFound != 1 {
		t.Errorf("pool %+v", p)
	}
	var u httpapi.UserJSON
	get(t, base, "/api/users/"+user, &u)
	if len(u.Workers) != 1 || u.Workers[0].Name != "rig1" || u.Workers[0].Shares1h != n || !(u.Workers[0].Hashrate > 0) {
		t.Errorf("user %+v", u)
	}
}
