package httpapi_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
)

// TestOperatorViews checks the SQL views and functions of migration 00005
// on the seeded history.
func TestOperatorViews(t *testing.T) {
	s := seed(t)
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const h = 4294967296.0

	type rate struct {
		User       string
		Workers    int64
		Shares     int64
		Difficulty float64
		Hashrate   float64
		LastShare  time.Time
	}
	userRates := func(q string) map[string]rate {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]rate{}
		var r rate
		if _, err := pgx.ForEachRow(rows, []any{&r.User, &r.Workers, &r.Shares, &r.Difficulty, &r.Hashrate, &r.LastShare}, func() error {
			out[r.User] = r
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return out
	}
	bobLast := s.now.Add(-8 * time.Minute)
	for _, q := range []string{`SELECT * FROM user_hashrate('1 hour')`, `SELECT * FROM user_hashrate_1h`} {
		got := userRates(q)
		want := map[string]rate{
			alice: {alice, 2, 15, 2000, 2000 * h / 3600, s.now.Add(-5 * time.Minute)},
			bob:   {bob, 1, 3, 3000, 3000 * h / 3600, bobLast},
		}
		if len(got) != 2 {
			t.Fatalf("%s: %+v", q, got)
		}
		for u, w := range want {
			g := got[u]
			if g.Workers != w.Workers || g.Shares != w.Shares || g.Difficulty != w.Difficulty || !near(g.Hashrate, w.Hashrate) {
				t.Errorf("%s: %s = %+v, want %+v", q, u, g, w)
			}
		}
		if !got[bob].LastShare.Equal(bobLast) {
			t.Errorf("%s: bob's last share %v, want %v", q, got[bob].LastShare, bobLast)
		}
	}
	got := userRates(`SELECT * FROM user_hashrate('3 hours')`)
	if b := got[bob]; b.Shares != 7 || b.Difficulty != 7000 || !near(b.Hashrate, 7000*h/10800) {
		t.Errorf("3 hours: bob %+v", b)
	}

	var workers int
	var rig2Diff float64
	if err := conn.QueryRow(ctx, `SELECT count(*), sum(difficulty_sum) FILTER (WHERE worker = 'rig2') FROM worker_hashrate('1 hour')`).
		Scan(&workers, &rig2Diff); err != nil {
		t.Fatal(err)
	}
	if workers != 3 || rig2Diff != 1000 {
		t.Errorf("worker_hashrate: %d workers, rig2 %v", workers, rig2Diff)
	}

	// Rounds: b2 is rejected, so b3's round starts after b1's share.
	rows, err := conn.Query(ctx, `SELECT block_id, status, round_start, round_end, shares, users, difficulty_sum, effort
		FROM block_rounds ORDER BY round_end`)
	if err != nil {
		t.Fatal(err)
	}
	type round struct {
		ID         int64
		Status     string
		Start      *time.Time
		End        time.Time
		Shares     int64
		Users      int64
		Difficulty float64
		Effort     float64
	}
	rounds, err := pgx.CollectRows(rows, pgx.RowToStructByPos[round])
	if err != nil {
		t.Fatal(err)
	}
	if len(rounds) != 2 {
		t.Fatalf("rounds %+v", rounds)
	}
	for i, w := range []struct {
		name     string
		from, to int
	}{{"b1", -1, 5}, {"b3", 5, 14}} {
		r, b := rounds[i], s.blocks[w.name]
		n, diff, users := s.sumShares(w.from, w.to)
		if r.ID != b.ID || r.Status != string(b.Status) || !r.End.Equal(s.shares[w.to].Time) ||
			r.Shares != n || r.Difficulty != diff || r.Users != int64(len(users)) || !near(r.Effort, diff/1000) {
			t.Errorf("round of %s: %+v, want %d shares, %v difficulty, %d users", w.name, r, n, diff, len(users))
		}
		if (w.from < 0) != (r.Start == nil) || (r.Start != nil && !r.Start.Equal(s.shares[w.from].Time)) {
			t.Errorf("round of %s starts at %v", w.name, r.Start)
		}
		// Per user.
		rows, err := conn.Query(ctx, `SELECT username, difficulty_sum FROM block_round_users WHERE block_id = $1`, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		perUser := map[string]float64{}
		var u string
		var d float64
		if _, err := pgx.ForEachRow(rows, []any{&u, &d}, func() error { perUser[u] = d; return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(perUser) != fmt.Sprint(users) {
			t.Errorf("round users of %s: %v, want %v", w.name, perUser, users)
		}
	}

	// Unpaid balances: carol, credited and paid in full, owes nothing.
	b1 := s.blocks["b1"].ID
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO credits (block_id, username, amount, difficulty) VALUES (%d, 'carol', 1000, 1)`, b1),
		fmt.Sprintf(`INSERT INTO payments (state, total, fee_rate, fee, txid, raw_tx) VALUES ('confirmed', 1000, 1, 1, '%064x', '\x03')`, 0x7a3),
		`INSERT INTO payment_outputs (payment_id, username, address, amount) SELECT max(id), 'carol', 'bcrt1qcccc', 1000 FROM payments`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rows, err = conn.Query(ctx, `SELECT username, payout_address, balance, pending, last_credit_at IS NOT NULL FROM unpaid_balances ORDER BY username`)
	if err != nil {
		t.Fatal(err)
	}
	type unpaid struct {
		User     string
		Address  *string
		Balance  int64
		Pending  int64
		Credited bool
	}
	owed, err := pgx.CollectRows(rows, pgx.RowToStructByPos[unpaid])
	if err != nil {
		t.Fatal(err)
	}
	if len(owed) != 2 || owed[0].User != alice || owed[0].Balance != 1_500_000_000 || owed[0].Pending != 500_000_000 ||
		owed[1].User != bob || owed[1].Balance != 1_250_000_000 || !owed[0].Credited ||
		owed[1].Address == nil || *owed[1].Address != "bcrt1q"+strings.Repeat("b", 38) {
		t.Errorf("unpaid balances %+v", owed)
	}
}

// readmeQueries are the example queries of the README: they must run and
// find the seeded rows.
var readmeQueries = []string{
	`SELECT username, workers, shares, round((hashrate / 1e12)::numeric, 3) AS th_per_s, last_share
	 FROM user_hashrate_1h ORDER BY hashrate DESC`,
	`SELECT * FROM user_hashrate('15 minutes') ORDER BY hashrate DESC LIMIT 20`,
	`SELECT * FROM worker_hashrate('24 hours') WHERE username = 'alice' ORDER BY worker`,
	`SELECT height, status, found_by, round_start, round_end, shares, users, round(effort::numeric, 3) AS effort
	 FROM block_rounds ORDER BY round_end DESC LIMIT 20`,
	`SELECT username, shares, difficulty_sum,
	        round((100 * difficulty_sum / sum(difficulty_sum) OVER ())::numeric, 2) AS pct
	 FROM block_round_users WHERE height = 600 ORDER BY difficulty_sum DESC`,
	`SELECT username, payout_address, balance / 1e8 AS btc, pending / 1e8 AS pending_btc, last_credit_at
	 FROM unpaid_balances ORDER BY balance DESC`,
}

func TestREADMEQueries(t *testing.T) {
	s := seed(t)
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range readmeQueries {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil || n == 0 {
			t.Errorf("%s: %d rows, %v", q, n, err)
		}
	}
}

// TestOperatorViewsDown: migration 00005's Down removes exactly what its
// Up created, and Up works again after it.
func TestOperatorViewsDown(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := ctxT(t)
	m, err := store.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	objects := func() (views, funcs int) {
		if err := conn.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM pg_views WHERE schemaname = 'public' AND viewname IN
				('user_hashrate_1h', 'block_rounds', 'block_round_users', 'unpaid_balances', 'balances')),
			(SELECT count(*) FROM pg_proc WHERE proname IN ('user_hashrate', 'worker_hashrate'))`).Scan(&views, &funcs); err != nil {
			t.Fatal(err)
		}
		return views, funcs
	}
	if v, f := objects(); v != 5 || f != 2 {
		t.Fatalf("after up: %d views, %d functions", v, f)
	}
	// Down until 00005 is undone (later migrations, if any, first).
	for {
		v, err := m.Down(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v == 5 {
			break
		}
		if v < 5 {
			t.Fatalf("went down to %d without meeting 00005", v)
		}
	}
	if v, f := objects(); v != 1 || f != 0 {
		t.Fatalf("after down: %d views (want balances alone), %d functions", v, f)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if v, f := objects(); v != 5 || f != 2 {
		t.Fatalf("after up again: %d views, %d functions", v, f)
	}
}
