package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"math"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
)

// TestListenerProfiles: stratumd with four listeners, each with its own
// difficulty profile (a low port with power-of-two rounding, the default
// port on the global settings, a high port for rentals, a TLS port), the
// embedded regtest node and PostgreSQL; the in-repo miner on each: every
// session starts at its port's start difficulty, mining.suggest_difficulty
// after authorize is bounded to its port's range (and rounded on the
// pow2 port), shares are judged and credited at the port's difficulty,
// and PostgreSQL has them so.
func TestListenerProfiles(t *testing.T) {
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	certFile, keyFile, cert := selfSigned(t, dir, "profiles")
	r, addrs := startDaemonAll(t, db, 4, "--network", "regtest", "--auth", "open",
		"--datadir", filepath.Join(dir, "node"), "--share-dir", filepath.Join(dir, "shares"),
		"--min-diff", "1e-9", "--max-diff", "0.001", "--start-diff", "1e-6",
		"--listen", "127.0.0.1:0",
		"--listen", "127.0.0.1:0,min-diff=0.00001,max-diff=0.001,start-diff=0.00005,pow2",
		"--listen", "127.0.0.1:0,min-diff=500000,max-diff=4000000,start-diff=1000000,vardiff-target=30s",
		"--tls-listen", "127.0.0.1:0,min-diff=0.000001,max-diff=0.00001,start-diff=0.000002",
		"--tls-cert", certFile, "--tls-key", keyFile)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	dial := func(addr, worker string, tlsConn bool) *miner.Miner {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if tlsConn {
			pool := x509.NewCertPool()
			pool.AddCert(cert)
			conn = tls.Client(conn, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		}
		m := miner.New(conn, miner.Options{User: regtestDevAddress, Workers: []string{worker}})
		t.Cleanup(func() { m.Close() })
		if err := m.Handshake(ctx); err != nil {
			t.Fatalf("%s: %v", worker, err)
		}
		return m
	}
	mine := func(m *miner.Miner, worker string, n int) {
		t.Helper()
		for range n {
			job := m.CurrentJob()
			s, err := m.FindShareAt(ctx, job, job.Difficulty)
			if err != nil {
				t.Fatal(err)
			}
			res, err := m.Submit(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			// Every share is a regtest block: the tip moves under the
			// miner, and a share of the previous tip may be stale.
			if !res.Accepted && (res.Error == nil || res.Error.Code != 21) {
				t.Fatalf("%s: share at %v rejected: %v", worker, s.Difficulty, res.Error)
			}
		}
	}
	suggest := func(m *miner.Miner, worker string, d, want float64) {
		t.Helper()
		evs := m.Events()
		mark := evs[len(evs)-1].Seq
		if _, rerr, err := m.Call(ctx, "mining.suggest_difficulty", d); err != nil || rerr != nil {
			t.Fatalf("%s: suggest: %v %v", worker, rerr, err)
		}
		e, err := m.WaitEvent(ctx, func(e miner.Event) bool { return e.Seq > mark && e.Method == "mining.set_difficulty" })
		if err != nil {
			t.Fatal(err)
		}
		if e.Difficulty != want {
			t.Errorf("%s: suggest %v after authorize gave %v, want %v", worker, d, e.Difficulty, want)
		}
	}

	def := dial(addrs[0], "default", false)
	low := dial(addrs[1], "low", false)
	high := dial(addrs[2], "high", false)
	tlsm := dial(addrs[3], "tls", true)
	for _, c := range []struct {
		m    *miner.Miner
		name string
		want float64
	}{{def, "default", 1e-6}, {low, "low", 1.0 / (1 << 14)}, {high, "high", 1e6}, {tlsm, "tls", 2e-6}} {
		if got := c.m.Difficulty(); got != c.want {
			t.Errorf("%s port: start difficulty %v, want %v", c.name, got, c.want)
		}
	}

	mine(def, "default", 3)
	mine(low, "low", 3)
	mine(tlsm, "tls", 3)

	// The high port judges at its own difficulty: CPU work is low. (A
	// share of another port is a regtest block: the job may go stale
	// first, 21; then again on the new one.)
	for n := 0; ; n++ {
		s, err := high.FindShareAt(ctx, high.CurrentJob(), 1e-6)
		if err != nil {
			t.Fatal(err)
		}
		res, err := high.Submit(ctx, s)
		if err == nil && res.Error != nil && res.Error.Code == 21 && n < 10 {
			continue
		}
		if err != nil || res.Accepted || res.Error == nil || res.Error.Code != 23 {
			t.Errorf("high port: a share at 1e-6: %+v %v, want error 23 low difficulty", res.Error, err)
		}
		break
	}
	// Hints are bounded to the port's range, and rounded on the pow2 port.
	suggest(high, "high", 1, 500000)
	suggest(low, "low", 1000, 1.0/1024)
	suggest(low, "low", 1e-9, 1.0/(1<<16))
	suggest(def, "default", 1000, 0.001)

	for _, m := range []*miner.Miner{def, low, high, tlsm} {
		m.Close()
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	type wd struct {
		Worker string
		Diff   float64
	}
	got := dbRows[wd](t, db, `SELECT worker, difficulty FROM shares ORDER BY seq`)
	count := map[string]int{}
	for _, g := range got {
		count[g.Worker]++
		switch g.Worker {
		case "default":
			if g.Diff != 1e-6 {
				t.Errorf("default port share credited at %v, want 1e-6", g.Diff)
			}
		case "low":
			if g.Diff != 1.0/(1<<14) || math.Log2(g.Diff) != math.Round(math.Log2(g.Diff)) {
				t.Errorf("low port share credited at %v, want 2^-14", g.Diff)
			}
		case "tls":
			if g.Diff != 2e-6 {
				t.Errorf("tls port share credited at %v, want 2e-6", g.Diff)
			}
		default:
			t.Errorf("share of worker %q at %v", g.Worker, g.Diff)
		}
	}
	for _, w := range []string{"default", "low", "tls"} {
		if count[w] == 0 {
			t.Errorf("no share of the %s port stored: %v", w, count)
		}
	}
}

// dbRows runs query on db and returns its rows as T, field by column.
func dbRows[T any](t *testing.T, db, query string) []T {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, query)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[T])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReloadListenerProfiles: on SIGHUP the listeners' keys left unset
// follow the new global settings; a reload that would leave a listener's
// profile invalid is refused whole; changed listener options are reported
// as taking effect at the next start.
func TestReloadListenerProfiles(t *testing.T) {
	ignoreHUP(t)
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "stratumd.toml")
	write := fileWriter(t, conf)
	write("min-diff = 0.00001\nmax-diff = 1000.0\nlisten = [\"127.0.0.1:0,max-diff=0.01\"]\n")
	r, addrs := startDaemonAll(t, db, 1, "--config", conf, "--network", "regtest", "--auth", "open",
		"--datadir", filepath.Join(dir, "node"), "--share-dir", filepath.Join(dir, "shares"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	startDiff := func() float64 {
		t.Helper()
		m, err := miner.Dial(ctx, addrs[0], miner.Options{User: regtestDevAddress})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		return m.Difficulty()
	}
	if d := startDiff(); d != 0.00001 {
		t.Fatalf("start difficulty %v, want the global min-diff 1e-05 (start-diff unset)", d)
	}

	// The unset min-diff (and so the start) follows the global one.
	write("min-diff = 0.002\nmax-diff = 1000.0\nlisten = [\"127.0.0.1:0,max-diff=0.01\"]\n")
	if !hupUntil(func() bool { return r.d.server.CurrentLimits().MinDiff == 0.002 }) {
		t.Fatalf("limits after SIGHUP: %+v", r.d.server.CurrentLimits())
	}
	if d := startDiff(); d != 0.002 {
		t.Errorf("start difficulty after reload %v, want the new global min-diff 0.002", d)
	}

	// A global min-diff above the listener's max-diff: refused whole.
	write("min-diff = 0.1\nmax-diff = 1000.0\nlisten = [\"127.0.0.1:0,max-diff=0.01\"]\n")
	if !hupUntil(func() bool { return strings.Contains(r.logs.String(), "reload refused") }) {
		t.Fatal("a reload that breaks a listener's profile was not refused")
	}
	if l := r.d.server.CurrentLimits(); l.MinDiff != 0.002 {
		t.Fatalf("a refused reload changed the limits: %+v", l)
	}
	if !strings.Contains(r.logs.String(), `--listen \"127.0.0.1:0,max-diff=0.01\"`) {
		t.Errorf("the refusal does not name the listener:\n%s", r.logs)
	}

	// Changed listener options: reported, applied at the next start.
	write("min-diff = 0.002\nmax-diff = 1000.0\nlisten = [\"127.0.0.1:0,max-diff=0.05\"]\n")
	if !hupUntil(func() bool { return strings.Contains(r.logs.String(), "take effect at the next start") }) {
		t.Fatal("changed listener options were not reported on SIGHUP")
	}
}
