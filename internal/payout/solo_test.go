package payout

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/store"
)

// creditsByBlock reads the credits table: block hash → user → amount.
func creditsByBlock(t *testing.T, st *store.Store) map[string]map[string]int64 {
	t.Helper()
	rows, err := st.Pool().Query(context.Background(), `SELECT b.hash, c.username, c.amount FROM credits c JOIN blocks b ON b.id = c.block_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]map[string]int64{}
	for rows.Next() {
		var hash, user string
		var amount int64
		if err := rows.Scan(&hash, &user, &amount); err != nil {
			t.Fatal(err)
		}
		if out[hash] == nil {
			out[hash] = map[string]int64{}
		}
		out[hash][user] += amount
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRunNeverCreditsSolo: on real PostgreSQL, the fixture's pool (PPLNS)
// blocks are credited exactly as they are without solo mining, while a
// solo miner's shares run through the same rounds (heavier than every
// pool share) and two of its blocks, one of them among the pool's, have
// matured: payout credits no solo block, credits no solo user, and a
// solo block neither ends a pool round nor holds back share retention.
func TestRunNeverCreditsSolo(t *testing.T) {
	ctx := context.Background()
	base := newFixture(t)
	if _, err := base.payer(t).Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	want := creditsByBlock(t, base.st)
	if len(want) != 3 {
		t.Fatalf("the fixture credits %d blocks, want 3", len(want))
	}

	f := newFixture(t)
	p2pkh, _, _ := regtestAddrs(t)
	solo := "solo:" + p2pkh // the same address also mines for the pool in the fixture
	var rows []shareRow
	for i := range 200 {
		// Between the pool's shares, on instance 7: inside every window.
		rows = append(rows, shareRow{t0.Add(time.Duration(i)*time.Second + 500*time.Millisecond), 7, uint64(i + 1), solo, 16})
	}
	insertShares(t, f.st, rows)
	for _, b := range []struct {
		height int64
		share  int
	}{{15, 70}, {28, 180}} {
		r := rows[b.share]
		h := blockHash(b.height)
		f.node.hashes[b.height] = h // on the best chain, matured by the node's height
		got, err := f.st.InsertBlock(ctx, store.Block{Height: int32(b.height), Hash: h.String(), PrevHash: strings.Repeat("0", 64),
			FoundAt: r.at, Username: solo, Worker: "w", Reward: 5000000000, NetworkDifficulty: 30,
			LastShare: store.SharePos{Time: r.at, Instance: r.inst, Seq: r.seq}})
		if err != nil || got.Mode != store.ModeSolo {
			t.Fatalf("insert solo block: mode %q, %v", got.Mode, err)
		}
	}
	// The pool's blocks at 20 and 30 come right after a solo block of
	// height 15 and 28; pool fixture blocks were recorded as PPLNS.
	pool, err := f.st.BlockByHash(ctx, blockHash(20).String())
	if err != nil || pool.Mode != store.ModePPLNS {
		t.Fatalf("pool block: mode %q, %v", pool.Mode, err)
	}

	rep, err := f.payer(t).Run(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Credited) != 3 {
		t.Fatalf("%d blocks credited, want the 3 pool blocks: %+v", len(rep.Credited), rep.Credited)
	}
	got := creditsByBlock(t, f.st)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("credits with solo mining alongside:\n%v\nwithout:\n%v", got, want)
	}
	for _, h := range []int64{15, 28} {
		b, err := f.st.BlockByHash(ctx, blockHash(h).String())
		if err != nil {
			t.Fatal(err)
		}
		if b.Status != store.BlockMatured || b.Mode != store.ModeSolo {
			t.Fatalf("solo block %d: status %q mode %q, want matured solo (classified, never credited)", h, b.Status, b.Mode)
		}
	}
	var splits int
	if err := f.st.Pool().QueryRow(ctx, `SELECT count(*) FROM block_splits s JOIN blocks b ON b.id = s.block_id
		WHERE b.mode = 'solo'`).Scan(&splits); err != nil || splits != 0 {
		t.Fatalf("%d splits of solo blocks (%v)", splits, err)
	}
	// A second run credits nothing more: the matured solo blocks stay.
	rep, err = f.payer(t).Run(ctx, false)
	if err != nil || len(rep.Credited) != 0 {
		t.Fatalf("second run credited %+v (%v)", rep.Credited, err)
	}

	// The pool's round views and the round summary leave solo out; a
	// solo block's round is its finder's shares since its previous block.
	var soloInRounds int
	if err := f.st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM block_rounds r JOIN blocks b ON b.id = r.block_id WHERE b.mode = 'solo')
		+ (SELECT count(*) FROM block_round_users WHERE username LIKE 'solo:%')`).Scan(&soloInRounds); err != nil || soloInRounds != 0 {
		t.Fatalf("block_rounds/block_round_users show %d solo rows (%v)", soloInRounds, err)
	}
	prev, err := f.st.PreviousBlock(ctx, pool.LastShare, pool.Username)
	if err != nil || prev.Mode != store.ModePPLNS || prev.Height != 10 {
		t.Fatalf("previous block of the pool's block 20: %+v (%v), want the pool's block 10", prev, err)
	}
	solo28, _ := f.st.BlockByHash(ctx, blockHash(28).String())
	prev, err = f.st.PreviousBlock(ctx, solo28.LastShare, solo)
	if err != nil || prev.Height != 15 {
		t.Fatalf("previous block of solo block 28: %+v (%v), want solo block 15", prev, err)
	}
	users, err := f.st.RoundSummary(ctx, prev.LastShare, solo28.LastShare, solo)
	if err != nil || len(users) != 1 || users[0].Username != solo || users[0].Shares != 110 {
		t.Fatalf("round of solo block 28: %+v (%v), want 110 shares of %s", users, err, solo)
	}
}
