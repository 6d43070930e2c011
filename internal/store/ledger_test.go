package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
)

// TestPayoutRunLockDryRunAndCredit: one payout run at a time; a dry run's
// writes are gone at End; a matured block is credited exactly once; block
// moves check the state they start from.
func TestPayoutRunLockDryRunAndCredit(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	ctx := ctxT(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	hash := strings.Repeat("ab", 32)
	if _, err := st.InsertBlock(ctx, store.Block{Height: 500, Hash: hash, PrevHash: strings.Repeat("00", 32),
		FoundAt: now, Username: "alice", Worker: "rig1", Reward: 5000, NetworkDifficulty: 1,
		LastShare: store.SharePos{Time: now, Instance: 1, Seq: 42}}); err != nil {
		t.Fatal(err)
	}

	dry, err := st.BeginPayoutRun(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.BeginPayoutRun(ctx, false); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second run: %v, want ErrLocked", err)
	}
	if err := dry.MoveBlock(ctx, hash, store.BlockSubmitted, store.BlockMatured, "dry"); err != nil {
		t.Fatal(err)
	}
	if bs, err := dry.MaturedBlocks(ctx); err != nil || len(bs) != 1 {
		t.Fatalf("a dry run does not read its own write: %v %v", bs, err)
	}
	dry.End(ctx)
	dry.End(ctx) // idempotent
	if b, err := st.BlockByHash(ctx, hash); err != nil || b.Status != store.BlockSubmitted {
		t.Fatalf("after the dry run: %v %v", b.Status, err)
	}

	run, err := st.BeginPayoutRun(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer run.End(ctx)
	if err := run.MoveBlock(ctx, hash, store.BlockConfirmed, store.BlockMatured, ""); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("move from the wrong state: %v", err)
	}
	if err := run.MoveBlock(ctx, strings.Repeat("cd", 32), store.BlockSubmitted, store.BlockMatured, ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("move of an unknown block: %v", err)
	}
	if err := run.MoveBlock(ctx, hash, store.BlockSubmitted, store.BlockMatured, "101 confirmations"); err != nil {
		t.Fatal(err)
	}
	c := store.BlockCredit{Hash: hash, Reward: 5000, FeeBPS: 100, PoolFee: 50, Remainder: 1, MinersTotal: 4949,
		PPLNSFactor: 2, WindowTarget: 2, WindowCounted: 2, WindowShares: 1,
		Credits: []store.UserCredit{{Username: "alice", Amount: 4949, Difficulty: 2}}}
	if err := run.CreditBlock(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := run.CreditBlock(ctx, c); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second credit: %v, want ErrConflict", err)
	}
	if b, err := st.BlockByHash(ctx, hash); err != nil || b.Status != store.BlockCredited {
		t.Fatalf("after credit: %v %v", b.Status, err)
	}
	due, err := run.DueBalances(ctx, 1000)
	if err != nil || len(due) != 1 || due[0].Balance != 4949 {
		t.Fatalf("due balances %+v %v", due, err)
	}
	ls, err := st.LedgerStatus(ctx)
	if err != nil || len(ls.Balances) != 1 || ls.Balances[0].Balance.Balance != 4949 || ls.Balances[0].Credited != 4949 ||
		ls.Blocks[store.BlockCredited] != 1 {
		t.Fatalf("ledger status %+v %v", ls, err)
	}
}

// TestMigrationPaymentRBF: 00007 gives every signed payment its one
// transaction (the confirmed one's block recorded), and its Down section
// turns the new states back into old ones.
func TestMigrationPaymentRBF(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := ctxT(t)
	m, err := store.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// Down to before 00007, through the later migrations.
	downThrough7 := func() {
		t.Helper()
		for {
			v, err := m.Down(ctx)
			if err != nil || v < 7 {
				t.Fatalf("down: %d %v", v, err)
			}
			if v == 7 {
				return
			}
		}
	}
	downThrough7()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO payments (state, total, fee_rate, fee, txid, raw_tx, block_hash) VALUES
		('confirmed', 1000, 2, 300, repeat('a', 64), '\x01', repeat('b', 64)),
		('broadcast', 2000, 2, 400, repeat('c', 64), '\x02', NULL),
		('planned', 3000, 2, NULL, NULL, NULL, NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := conn.QueryRow(ctx, `SELECT string_agg(format('%s:%s:%s:%s:%s', p.state, t.kind, t.fee, t.fee_rate,
			coalesce(left(t.block_hash, 1), '-')), ' ' ORDER BY p.id)
		FROM payments p JOIN payment_txs t ON t.payment_id = p.id AND t.txid = p.txid`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "confirmed:payment:300:2:b broadcast:payment:400:2:-" {
		t.Fatalf("payment_txs after up: %s", got)
	}
	if _, err := conn.Exec(ctx, `UPDATE payments SET state = 'abandoning' WHERE state = 'broadcast';
		INSERT INTO payments (state, total, fee_rate, fee, txid, raw_tx) VALUES ('abandoned', 4000, 2, 1, repeat('d', 64), '\x03')`); err != nil {
		t.Fatal(err)
	}
	downThrough7()
	if err := conn.QueryRow(ctx, `SELECT string_agg(state, ' ' ORDER BY id) FROM payments`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "confirmed broadcast planned failed" {
		t.Fatalf("states after down: %s", got)
	}
}
