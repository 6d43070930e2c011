//go:build chaos

package hostile

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/e2e/daemontest"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
)

// hold waits d: the length of a measurement window, not an event.
func hold(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// ipAllocator hands out attacker source addresses.
func ipAllocator() func() string {
	var n atomic.Int64
	return func() string { return ipFor(int(n.Add(1))) }
}

const adminPassword = "correct horse battery staple"

// TestHostileClients: every attack at once against stratumd while honest
// miners mine; each attempt ends in an error reply or a disconnect, nothing
// panics, and the honest miners' acceptance and latency hold.
func TestHostileClients(t *testing.T) {
	const (
		handshake = 2 * time.Second
		idle      = 5 * time.Second
		window    = 10 * time.Second
		miners    = 4
		pace      = 40 * time.Millisecond // 25 submits/s per honest miner
	)
	db := pgtest.NewDatabase(t)
	addUser(t, db, "honest", "honest-pw")
	addUser(t, db, "attacker", "attacker-pw")
	dir := t.TempDir()
	addr := daemontest.FreeAddr(t)
	args := append(baseArgs(dir, db, addr), "--auth", "password", "--admin-password", adminPassword,
		"--handshake-timeout", handshake.String(), "--idle-timeout", idle.String(), "--log-level", "debug")
	p := daemontest.Start(t, stratumdBin, daemontest.Options{Args: args})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := &env{addr: addr, floodAddr: floodTarget(t, addr, handshake), handshakeTimeout: handshake, idleTimeout: idle, user: "attacker", password: "attacker-pw", ip: ipAllocator()}

	h := startHonest(t, addr, "honest", "honest-pw", miners, pace)
	if n := attackerNice(t); n > 0 {
		t.Logf("attackers (this test process) at nice %d; stratumd and the honest miners at the normal priority", n)
	}
	baseFrom := time.Now()
	hold(ctx, window)
	baseTo := time.Now()

	// An admin session for the SQL attack, opened before the brute force
	// uses up the admin limiter.
	admin, err := minerFrom(ctx, "127.0.250.1", addr, miner.Options{User: "attacker", Password: "attacker-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if o := call(ctx, admin, "mining.authorize_admin", adminPassword); o != outResult {
		t.Fatalf("admin login: %s", o)
	}

	const evilUser, evilPassword = "x');DROP/**/TABLE/**/shares;--", "p'w\"d;--"
	attacks := []func() *result{
		func() *result { return idleConnections(ctx, e, 10_000) },
		func() *result { return slowloris(ctx, e) },
		func() *result { return longLines(ctx, e) },
		func() *result { return invalidUTF8(ctx, e) },
		func() *result { return deepJSON(ctx, e) },
		func() *result { return hugeNumbers(ctx, e) },
		func() *result { return wrongTypes(ctx, e) },
		func() *result { return foreignShares(ctx, e) },
		func() *result { return replayShares(ctx, e) },
		func() *result { return ntimeVersion(ctx, e) },
		func() *result { return adminBruteForce(ctx, e) },
		func() *result { return sqlNames(ctx, e, admin, evilUser, evilPassword) },
	}
	results := make([]*result, len(attacks))
	attackFrom := time.Now()
	var wg sync.WaitGroup
	for i, a := range attacks {
		wg.Go(func() { results[i] = a() })
	}
	wg.Wait()
	attackTo := time.Now()
	// The same honest load once more after the attacks.
	hold(ctx, window/2)
	afterTo := time.Now()
	if err := h.stop(); err != nil {
		t.Errorf("honest miners' process: %v", err)
	}

	base, under, after := h.window(baseFrom, baseTo), h.window(attackFrom, attackTo), h.window(attackTo, afterTo)
	t.Logf("honest miners (%d, one submit per %v each):", miners, pace)
	t.Logf("  no attack:    %v", base)
	t.Logf("  under attack: %v", under)
	t.Logf("  after:        %v", after)
	logSlowest(t, h.h, attackFrom, attackTo, p.Lines())

	if err := p.Stop(); err != nil {
		t.Errorf("stratumd stop: %v", err)
	}
	st, err := p.ServerStats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server counters: %v; rejected %v", st.Counters, st.Rejected)
	lines := p.Lines()
	for _, r := range results {
		t.Run(strings.ReplaceAll(r.name, " ", "_"), func(t *testing.T) {
			t.Logf("%d attempts in %v from %d addresses: %v", r.attempts, r.took.Round(time.Millisecond), len(r.ips), fmtOutcomes(r.outcomes))
			for _, n := range r.notes {
				t.Log(n)
			}
			t.Logf("server log lines for these addresses: %s", logCounts(lines, r.ips))
			for _, pr := range r.problems {
				t.Error(pr)
			}
			if r.attempts == 0 {
				t.Error("no attempt made")
			}
		})
	}

	t.Run("server_survived", func(t *testing.T) {
		if n := st.Counters["Panics"]; n != 0 {
			t.Errorf("%d sessions panicked", n)
		}
		if st.Counters["Malformed"] == 0 || st.Counters["Bans"] == 0 {
			t.Errorf("malformed lines %d and bans %d not counted", st.Counters["Malformed"], st.Counters["Bans"])
		}
		// The connection flood outruns the default per-address rate (50/s
		// after 200 at once): most of it is refused at accept, before any
		// session work, and every refusal is counted.
		early := 0
		for _, r := range results {
			early += r.refusedAtAccept
		}
		if n := st.Counters["RefusedRate"]; e.floodAddr == addr && (n == 0 || n < int64(early)) {
			t.Errorf("%d connections refused for the per-address rate; the attackers saw %d closed at once", n, early)
		}
	})
	t.Run("admin_brute_force_rate_limited", func(t *testing.T) {
		failed := p.Count(func(l daemontest.Line) bool { return l.Msg() == "stratum: admin login failed" })
		refused := p.Count(func(l daemontest.Line) bool { return l.Msg() == "stratum: admin login refused: too many failures" })
		t.Logf("admin logins checked and failed: %d; refused unchecked by the rate limit: %d", failed, refused)
		if failed > 30 {
			t.Errorf("%d wrong admin passwords were checked; the limit is 30 a minute", failed)
		}
		if refused == 0 {
			t.Error("no admin attempt was refused by the rate limit")
		}
	})
	t.Run("sql_names_stored_verbatim", func(t *testing.T) { checkSQLNames(t, db, evilUser) })
	t.Run("honest_miners_unaffected", func(t *testing.T) {
		if h.h.disconnects != 0 {
			t.Errorf("%d honest miners were disconnected: %v", h.h.disconnects, h.h.lastErr)
		}
		if base.submits < 100 || under.submits < 100 {
			t.Fatalf("too few honest submits to compare: %d and %d", base.submits, under.submits)
		}
		if under.rate() < base.rate()-0.01 {
			t.Errorf("acceptance fell from %.2f %% to %.2f %% under attack", base.rate()*100, under.rate()*100)
		}
		// Two cores run stratumd, the attackers and the honest miners: the
		// bounds allow for the attackers' own CPU, not for a stall.
		if under.p50 > 3*base.p50+5*time.Millisecond {
			t.Errorf("median submit latency %v under attack, %v without", under.p50, base.p50)
		}
		// Under attack the p99 is 1.8–4.1 ms against 0.44–0.65 ms without
		// (submits timed by the kernel on both ends, miners out of step;
		// docs/RELIABILITY.md); it was about 30 ms before the connection
		// rate limit, the argon2 worker and the accept pacing. What is
		// left is the shared box: the flood sent to a sink instead of
		// stratumd costs the honest miners as much (envFloodSink), and a
		// stall traced in stratumd was its processor idle while the
		// spool's fdatasync, which every acknowledgement waits for, took
		// 10 ms on the disk the attacks also make the node, the share
		// dumps and PostgreSQL write to. The bound leaves room for a noisy
		// CI box and catches a stall.
		if under.p99 > 3*base.p99+15*time.Millisecond {
			t.Errorf("p99 submit latency %v under attack, %v without", under.p99, base.p99)
		}
	})
}

// logSlowest logs the slowest honest submits of [from, to) and the blocks
// stratumd found meanwhile, as offsets from from: on regtest the attacks'
// forged and replayed shares are blocks more often than not, and a found
// block's writes (the node's block store, the share dump) share the disk
// with the spool commit that every acknowledgement waits for.
func logSlowest(t *testing.T, h *honest, from, to time.Time, lines []daemontest.Line) {
	t.Helper()
	in := h.between(from, to)
	sort.Slice(in, func(i, j int) bool { return in[i].latency > in[j].latency })
	var parts []string
	for _, x := range in[:min(8, len(in))] {
		sent := x.at.Add(-x.latency) // x.at is when the reply was read: about when it came
		parts = append(parts, fmt.Sprintf("+%v %v", sent.Sub(from).Round(time.Millisecond), x.latency.Round(10*time.Microsecond)))
	}
	t.Logf("  slowest under attack (sent at +offset, latency): %s", strings.Join(parts, ", "))
	var blocks []string
	for _, l := range lines {
		if l.Msg() != "stratum: block found" {
			continue
		}
		if at, err := time.Parse(time.RFC3339Nano, l.Str("time")); err == nil && !at.Before(from) && at.Before(to) {
			blocks = append(blocks, fmt.Sprintf("+%v", at.Sub(from).Round(time.Millisecond)))
		}
	}
	if len(blocks) == 0 {
		blocks = []string{"none"}
	}
	t.Logf("  blocks found under attack (the attacks' shares): %s", strings.Join(blocks, ", "))
}

func fmtOutcomes(m map[outcome]int) string {
	var parts []string
	for o, n := range m {
		parts = append(parts, fmt.Sprintf("%s: %d", o, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// logCounts counts stratumd's log lines per message for the given remote
// addresses.
func logCounts(lines []daemontest.Line, ips []string) string {
	want := map[string]bool{}
	for _, ip := range ips {
		want[ip] = true
	}
	counts := map[string]int{}
	for _, l := range lines {
		if want[l.RemoteIP()] {
			counts[strings.TrimPrefix(l.Msg(), "stratum: ")]++
		}
	}
	var parts []string
	for m, n := range counts {
		parts = append(parts, fmt.Sprintf("%q %d", m, n))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// checkSQLNames checks that the SQL-named user exists verbatim, its share
// is stored with the SQL worker name, and the tables are intact.
func checkSQLNames(t *testing.T, db, evilUser string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var users, evil int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE name = $1) FROM users`, evilUser).Scan(&users, &evil); err != nil {
		t.Fatalf("users table: %v", err)
	}
	if evil != 1 {
		t.Errorf("user %q: %d rows", evilUser, evil)
	}
	var shares, evilShares int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE username = $1 AND worker = $2) FROM shares`,
		evilUser, "'); DROP TABLE shares;--").Scan(&shares, &evilShares); err != nil {
		t.Fatalf("shares table: %v", err)
	}
	t.Logf("users: %d rows; shares: %d rows, %d by the SQL-named user and worker", users, shares, evilShares)
	if evilShares != 1 || shares < 100 {
		t.Errorf("shares: %d rows, %d of the SQL-named user; want 1 and the honest ones", shares, evilShares)
	}
}

// TestSQLMetacharactersOpenMode: under open authorization a user name must
// be an address, so SQL in it is refused (24); SQL in the worker part is
// data, stored verbatim.
func TestSQLMetacharactersOpenMode(t *testing.T) {
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	addr := daemontest.FreeAddr(t)
	p := daemontest.Start(t, stratumdBin, daemontest.Options{Args: append(baseArgs(dir, db, addr), "--auth", "open")})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ip := ipAllocator()
	for _, n := range []string{"'; DROP TABLE shares; --", devAddress + "'--", "bcrt1q'OR'1'='1", `"; DELETE FROM users; --`, "$1"} {
		c, err := dialFrom(ctx, ip(), addr)
		if err != nil {
			t.Fatal(err)
		}
		m := miner.New(c, miner.Options{User: n})
		call(ctx, m, "mining.subscribe")
		if o := call(ctx, m, "mining.authorize", n, "x"); o != errorOutcome(24) && o != errorOutcome(20) {
			t.Errorf("authorize %q: %s, want error 24 (or 20)", n, o)
		}
		m.Close()
	}
	const worker = "'); DROP TABLE shares;--"
	m, err := minerFrom(ctx, ip(), addr, miner.Options{User: devAddress, Workers: []string{worker}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.FindShare(ctx)
	for err == nil && s.MeetsNetwork {
		s, err = m.FindShare(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res, err := m.Submit(ctx, s); err != nil || !res.Accepted {
		t.Fatalf("share of worker %q: %v %v", worker, err, res.Error)
	}
	m.Close()
	if err := p.Stop(); err != nil { // the final drain stores the share
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM shares WHERE username = $1 AND worker = $2`, devAddress, worker).Scan(&n); err != nil {
		t.Fatalf("shares table: %v", err)
	}
	if n != 1 {
		t.Fatalf("%d shares stored for worker %q, want 1", n, worker)
	}
	var users int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&users); err != nil || users != 1 {
		t.Fatalf("users: %d, %v; want only %s", users, err, devAddress)
	}
}

// TestShareReplayAcrossRestart: a share accepted before a restart of
// stratumd (graceful, same tip) is submitted again on a new session after
// it. It must be refused: accepting it credits the same work twice.
func TestShareReplayAcrossRestart(t *testing.T) {
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	addr := daemontest.FreeAddr(t)
	p := daemontest.Start(t, stratumdBin, daemontest.Options{Args: append(baseArgs(dir, db, addr), "--auth", "open")})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := miner.Options{User: devAddress}
	m, err := miner.Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.FindShare(ctx)
	for err == nil && s.MeetsNetwork { // keep the tip: no block
		s, err = m.FindShare(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Submit(ctx, s)
	if err != nil || !res.Accepted {
		t.Fatalf("original share: %v %v", err, res.Error)
	}
	en1, _ := m.Extranonce1()
	m.Close()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	p.Restart()
	m2, err := miner.Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	en1b, _ := m2.Extranonce1()
	h2, legit := validFor(m2, s) // before the submit: an accepted block clears the jobs
	res, err = m2.Submit(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before the restart: extranonce1 %x, job %s; after: extranonce1 %x, job %s; the replay hashes the same: %v",
		en1, s.JobID, en1b, m2.CurrentJob().ID, h2 == s.Hash)
	switch {
	case res.Accepted && h2 == s.Hash:
		t.Errorf("a share accepted before the restart was accepted again after it (job %s, extranonce1 %x both times): the same work is credited twice",
			s.JobID, en1)
	case res.Accepted && !legit:
		t.Errorf("the replayed share was accepted although it does not meet the new session's target")
	}
}
