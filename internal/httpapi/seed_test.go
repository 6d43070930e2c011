package httpapi_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
)

// seeded is a database with a known history: users, shares over the last
// hours, blocks in several statuses and a payout ledger.
type seeded struct {
	st     *store.Store
	url    string
	now    time.Time // shares are placed relative to this time
	shares []store.StoredShare
	blocks map[string]store.Block // by name: "b1" credited, "b2" rejected, "b3" orphaned
	// block positions in shares (index of the block's own share)
	blockIdx map[string]int
}

const (
	alice = "alice"
	bob   = "bob"
	carol = "carol" // a user without shares or credits
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func seed(t testing.TB) *seeded {
	t.Helper()
	st, url := pgtest.NewStore(t)
	ctx := ctxT(t)
	s := &seeded{st: st, url: url, now: time.Now().UTC().Truncate(time.Microsecond),
		blocks: map[string]store.Block{}, blockIdx: map[string]int{}}
	for _, u := range []string{alice, bob, carol} {
		if _, err := st.CreateUser(ctx, store.NewUser{Name: u, PayoutAddress: "bcrt1q" + strings.Repeat(u[:1], 38)}); err != nil {
			t.Fatal(err)
		}
	}
	add := func(user, worker string, diff float64, ago time.Duration) {
		s.shares = append(s.shares, store.StoredShare{Share: store.Share{
			Time: s.now.Add(-ago), Username: user, Worker: worker, JobID: "1", Height: 500,
			Difficulty: diff, ShareDifficulty: diff * 1.5, InstanceID: 1,
		}})
	}
	// Within the last hour: alice rig1 10 × 100, alice rig2 5 × 200,
	// bob rigA 3 × 1000. Before it: bob rigA 4 × 1000 two hours ago.
	for i := range 10 {
		add(alice, "rig1", 100, time.Duration(50-5*i)*time.Minute)
	}
	for i := range 5 {
		add(alice, "rig2", 200, time.Duration(30-i)*time.Minute)
	}
	for i := range 3 {
		add(bob, "rigA", 1000, time.Duration(10-i)*time.Minute)
	}
	for i := range 4 {
		add(bob, "rigA", 1000, 2*time.Hour+time.Duration(i)*time.Minute)
	}
	sort.Slice(s.shares, func(i, j int) bool { return s.shares[i].Time.Before(s.shares[j].Time) })
	for i := range s.shares {
		s.shares[i].Seq = uint64(i + 1)
	}
	if err := st.StoreShares(ctx, [16]byte{1}, 1, s.shares); err != nil {
		t.Fatal(err)
	}

	// Blocks at share positions 5 (credited), 9 (rejected: not a round
	// boundary) and 14 (orphaned).
	for i, b := range []struct {
		name   string
		idx    int
		status store.BlockStatus
	}{{"b1", 5, store.BlockCredited}, {"b2", 9, store.BlockRejected}, {"b3", 14, store.BlockOrphaned}} {
		sh := s.shares[b.idx]
		blk, err := st.InsertBlock(ctx, store.Block{
			Height: int32(600 + i), Hash: fmt.Sprintf("%064x", 0xb10c+i), PrevHash: fmt.Sprintf("%064x", 0xa+i),
			FoundAt: sh.Time, Username: sh.Username, Worker: sh.Worker, Reward: 5_000_000_000,
			NetworkDifficulty: 1000, Status: b.status, InstanceID: 1,
			LastShare: store.SharePos{Time: sh.Time, Instance: 1, Seq: sh.Seq},
		})
		if err != nil {
			t.Fatal(err)
		}
		s.blocks[b.name], s.blockIdx[b.name] = blk, b.idx
	}

	// The ledger: b1 split between alice and bob; a confirmed payment to
	// alice, a broadcast one to both, a failed one to bob (not counted).
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	b1 := s.blocks["b1"].ID
	stmts := []string{
		fmt.Sprintf(`INSERT INTO block_splits (block_id, reward, fee_bps, pool_fee, pool_remainder, miners_total,
			pplns_factor, window_target, window_counted, window_shares)
			VALUES (%d, 5000000000, 100, 50000000, 0, 4950000000, 2, 2000, 2000, 6)`, b1),
		fmt.Sprintf(`INSERT INTO credits (block_id, username, amount, difficulty) VALUES
			(%d, 'alice', 3000000000, 1200), (%d, 'bob', 1950000000, 800)`, b1, b1),
		fmt.Sprintf(`INSERT INTO payments (state, total, fee_rate, fee, txid, raw_tx, block_hash, created_at) VALUES
			('confirmed', 1000000000, 2, 300, '%064x', '\x01', '%064x', now() - interval '3 hours')`, 0x7a1, 0xb1),
		`INSERT INTO payment_outputs (payment_id, username, address, amount)
			SELECT id, 'alice', 'bcrt1qaaaa', 1000000000 FROM payments WHERE state = 'confirmed'`,
		fmt.Sprintf(`INSERT INTO payments (state, total, fee_rate, fee, txid, raw_tx, created_at) VALUES
			('broadcast', 1200000000, 3, 450, '%064x', '\x02', now() - interval '1 hour')`, 0x7a2),
		`INSERT INTO payment_outputs (payment_id, username, address, amount)
			SELECT id, u, a, m FROM payments,
			(VALUES ('alice', 'bcrt1qaaaa', 500000000::bigint), ('bob', 'bcrt1qbbbb', 700000000::bigint)) v(u, a, m)
			WHERE state = 'broadcast'`,
		`INSERT INTO payments (state, total, fee_rate, created_at) VALUES ('failed', 100000, 2, now())`,
		`INSERT INTO payment_outputs (payment_id, username, address, amount)
			SELECT id, 'bob', 'bcrt1qbbbb', 100000 FROM payments WHERE state = 'failed'`,
	}
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return s
}

// sumShares sums the difficulty and counts the shares in (from, to] of the
// seeded shares, by index.
func (s *seeded) sumShares(from, to int) (n int64, diff float64, users map[string]float64) {
	users = map[string]float64{}
	for i := from + 1; i <= to; i++ {
		n++
		diff += s.shares[i].Difficulty
		users[s.shares[i].Username] += s.shares[i].Difficulty
	}
	return n, diff, users
}
