package payout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type shareRow struct {
	at   time.Time
	inst uint8
	seq  uint64
	user string
	diff float64
}

func insertShares(t testing.TB, st *store.Store, rows []shareRow) {
	t.Helper()
	ctx := context.Background()
	if len(rows) == 0 {
		return
	}
	lo, hi := rows[0].at, rows[0].at
	for _, r := range rows {
		lo, hi = minTime(lo, r.at), maxTime(hi, r.at)
	}
	if err := st.EnsurePartitions(ctx, lo, hi); err != nil {
		t.Fatal(err)
	}
	n := len(rows)
	ts, us := make([]time.Time, n), make([]string, n)
	is, ss, ds := make([]int16, n), make([]int64, n), make([]float64, n)
	for i, r := range rows {
		ts[i], us[i], is[i], ss[i], ds[i] = r.at, r.user, int16(r.inst), int64(r.seq), r.diff
	}
	_, err := st.Pool().Exec(ctx, `INSERT INTO shares (time, username, worker, job_id, height, difficulty, share_difficulty,
			instance_id, spool_id, seq)
		SELECT t, u, 'w', 'j', 1, d, d, i, '6c3e0c4e-5a3c-4b7e-9d55-0d6f1c1e1a01', s
		FROM unnest($1::timestamptz[], $2::text[], $3::smallint[], $4::bigint[], $5::float8[]) AS x(t, u, i, s, d)`,
		ts, us, is, ss, ds)
	if err != nil {
		t.Fatal(err)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// bruteWindow computes the window the slow, obvious way.
func bruteWindow(rows []shareRow, last store.SharePos, target float64) map[string]float64 {
	rs := append([]shareRow(nil), rows...)
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if !a.at.Equal(b.at) {
			return a.at.After(b.at)
		}
		if a.inst != b.inst {
			return a.inst > b.inst
		}
		return a.seq > b.seq
	})
	out := map[string]float64{}
	var acc float64
	for _, r := range rs {
		if r.at.After(last.Time) || (r.at.Equal(last.Time) && (r.inst > last.Instance || (r.inst == last.Instance && r.seq > last.Seq))) {
			continue
		}
		if acc >= target {
			break
		}
		part := min(r.diff, target-acc)
		out[r.user] += part
		acc += part
	}
	return out
}

func TestSelectWindowSmall(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	ctx := context.Background()
	rows := []shareRow{
		{t0, 0, 1, "a", 4},
		{t0.Add(time.Second), 0, 2, "b", 4},
		{t0.Add(2 * time.Second), 1, 1, "a", 2},
		{t0.Add(2 * time.Second), 0, 3, "c", 2}, // same time: instance 0 before instance 1
		{t0.Add(3 * time.Second), 0, 4, "b", 1}, // the block's share
		{t0.Add(4 * time.Second), 0, 5, "c", 8}, // after the block: never counted
	}
	insertShares(t, st, rows)
	last := store.SharePos{Time: t0.Add(3 * time.Second), Instance: 0, Seq: 4}
	for _, tc := range []struct {
		target float64
		want   map[string]float64
		full   bool
		shares int64
		oldest uint64
	}{
		{1, map[string]float64{"b": 1}, true, 1, 4},
		{4, map[string]float64{"b": 1, "a": 2, "c": 1}, true, 3, 3}, // c's share counted in half
		{5, map[string]float64{"b": 1, "a": 2, "c": 2}, true, 3, 3},
		{8, map[string]float64{"b": 4, "a": 2, "c": 2}, true, 4, 2}, // b's older share: 3 of 4
		{13, map[string]float64{"b": 5, "a": 6, "c": 2}, true, 5, 1},
		{100, map[string]float64{"b": 5, "a": 6, "c": 2}, false, 5, 1}, // young pool: all there is
	} {
		w, err := SelectWindow(ctx, st, last, tc.target)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, x := range w.Weights {
			got[x.Username] = x.Difficulty
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || w.Full() != tc.full || w.Shares != tc.shares {
			t.Errorf("target %v: got %v full=%v shares=%d, want %v full=%v shares=%d", tc.target, got, w.Full(), w.Shares, tc.want, tc.full, tc.shares)
		}
		if w.Oldest == nil || w.Oldest.Seq != tc.oldest {
			t.Errorf("target %v: oldest %+v, want seq %d", tc.target, w.Oldest, tc.oldest)
		}
	}
	if _, err := SelectWindow(ctx, st, last, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("target 0: %v", err)
	}
	// Nothing before the first share: an empty window, not an error.
	w, err := SelectWindow(ctx, st, store.SharePos{Time: t0.Add(-time.Hour), Seq: 1}, 10)
	if err != nil || w.Shares != 0 || len(w.Weights) != 0 || w.Oldest != nil {
		t.Fatalf("empty window: %+v %v", w, err)
	}
}

// TestSelectWindowMatchesBruteForce checks the chunked walk (with halving
// and gap jumps) against the obvious computation on 60k bursty shares
// spread over three days.
func TestSelectWindowMatchesBruteForce(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []shareRow
	at := t0
	for i := range 60000 {
		switch {
		case i%10000 == 9999:
			at = at.Add(7 * time.Hour) // an idle pool
		case i%3 == 0:
			// bursts: several shares in the same microsecond
		default:
			at = at.Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
		}
		rows = append(rows, shareRow{at, uint8(rng.IntN(3)), uint64(i + 1), fmt.Sprintf("u%d", rng.IntN(40)), float64(int(1) << rng.IntN(6))})
	}
	insertShares(t, st, rows)
	for _, tc := range []struct {
		lastIdx int
		target  float64
	}{
		{59999, 1000}, {59999, 100000}, {59999, 600000}, {59999, 5e6}, {30000, 250000}, {12345, 77777.5},
	} {
		r := rows[tc.lastIdx]
		last := store.SharePos{Time: r.at, Instance: r.inst, Seq: r.seq}
		w, err := SelectWindow(ctx, st, last, tc.target)
		if err != nil {
			t.Fatal(err)
		}
		want := bruteWindow(rows, last, tc.target)
		if len(w.Weights) != len(want) {
			t.Fatalf("%+v: %d users, want %d", tc, len(w.Weights), len(want))
		}
		var sum float64
		for _, x := range w.Weights {
			if d := x.Difficulty - want[x.Username]; d > 1e-6 || d < -1e-6 {
				t.Fatalf("%+v: %s %v, want %v", tc, x.Username, x.Difficulty, want[x.Username])
			}
			sum += x.Difficulty
		}
		if d := sum - w.Counted; d > 1e-6 || d < -1e-6 {
			t.Fatalf("%+v: counted %v, weights sum %v", tc, w.Counted, sum)
		}
	}
}

// ---- runs with a fake wallet ----

type fixture struct {
	st     *store.Store
	url    string
	node   *fakeNode
	wallet *fakeWallet
	users  map[string]string // username → payout address
	params *chaincfg.Params
}

func regtestAddrs(t testing.TB) (p2pkh, p2wpkh, p2tr string) {
	t.Helper()
	params := &chaincfg.RegressionNetParams
	h := make([]byte, 32)
	for i := range h {
		h[i] = byte(i + 1)
	}
	a1, _ := btcutil.NewAddressPubKeyHash(h[:20], params)
	a2, _ := btcutil.NewAddressWitnessPubKeyHash(h[1:21], params)
	a3, err := btcutil.NewAddressTaproot(h, params)
	if err != nil {
		t.Fatal(err)
	}
	return a1.EncodeAddress(), a2.EncodeAddress(), a3.EncodeAddress()
}

func blockHash(height int64) chainhash.Hash {
	var h chainhash.Hash
	h[0], h[1], h[31] = byte(height), byte(height>>8), 0xbb
	return h
}

// newFixture: four users mine; three blocks (heights 10, 20, 30) on the
// best chain, one (25) orphaned; the node is at 130, so 10, 20 and 30 are
// mature (100 confirmations + margin 0).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, url := pgtest.NewStore(t)
	ctx := context.Background()
	p2pkh, p2wpkh, p2tr := regtestAddrs(t)
	f := &fixture{st: st, url: url, params: &chaincfg.RegressionNetParams,
		node: &fakeNode{best: 130, hashes: map[int64]chainhash.Hash{}}, wallet: newFakeWallet(&chaincfg.RegressionNetParams),
		users: map[string]string{p2pkh: p2pkh, p2wpkh: p2wpkh, p2tr: p2tr, "alice": p2wpkh}}
	// alice has a password account with a payout address; nobody has none.
	if _, err := st.Pool().Exec(ctx, `INSERT INTO users (name, payout_address) VALUES ('alice', $1), ('nobody', NULL)`, p2wpkh); err != nil {
		t.Fatal(err)
	}
	names := []string{p2pkh, p2wpkh, p2tr, "alice", "nobody"}
	var rows []shareRow
	for i := range 200 {
		rows = append(rows, shareRow{t0.Add(time.Duration(i) * time.Second), uint8(i % 2), uint64(i + 1), names[i%len(names)], float64(1 + i%3)})
	}
	insertShares(t, st, rows)
	for i := int64(1); i <= 130; i++ {
		f.node.hashes[i] = blockHash(i)
	}
	for _, b := range []struct {
		height int64
		last   int
		hash   chainhash.Hash
	}{{10, 49, blockHash(10)}, {20, 99, blockHash(20)}, {25, 120, blockHash(9999)}, {30, 199, blockHash(30)}} {
		r := rows[b.last]
		if _, err := st.InsertBlock(ctx, store.Block{Height: int32(b.height), Hash: b.hash.String(), PrevHash: strings.Repeat("0", 64),
			FoundAt: r.at, Username: r.user, Worker: "w", Reward: 5000000000 + b.height, NetworkDifficulty: 30,
			LastShare: store.SharePos{Time: r.at, Instance: r.inst, Seq: r.seq}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		f.wallet.fund(40_0000_0000)
	}
	return f
}

func (f *fixture) payer(t testing.TB) *Payer {
	t.Helper()
	f.node.chain = f.wallet
	if f.wallet.height < f.node.best {
		f.wallet.height = f.node.best
	}
	p, err := NewPayer(StoreLedger(f.st), f.node, f.wallet, Options{Params: f.params, FeeBPS: 100, MinPayout: 100000,
		FeeRate: 2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// check asserts that ledger and wallet agree: every payment that is not
// planned is in the wallet exactly as stored; what each address received
// equals what the ledger says was paid to it; no input was spent twice.
func (f *fixture) check(t *testing.T, wantAllPaid bool) {
	t.Helper()
	ctx := context.Background()
	// The paying transactions (first and bumps) of every payment.
	paying := map[int64][]chainhash.Hash{}
	rows, err := f.st.Pool().Query(ctx, `SELECT payment_id, txid FROM payment_txs WHERE kind <> 'abandon'`)
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	var txid string
	if _, err := pgx.ForEachRow(rows, []any{&id, &txid}, func() error {
		h, err := chainhash.NewHashFromStr(txid)
		paying[id] = append(paying[id], *h)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	rows, err = f.st.Pool().Query(ctx, `SELECT p.id, p.state, coalesce(p.txid, ''), o.address, o.amount
		FROM payment_outputs o JOIN payments p ON p.id = o.payment_id`)
	if err != nil {
		t.Fatal(err)
	}
	ledger := map[string]int64{}
	var state, addr string
	var amt int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &state, &txid, &addr, &amt}, func() error {
		h, _ := chainhash.NewHashFromStr(txid)
		sent := false
		if h != nil {
			st, _ := f.wallet.Status(ctx, *h)
			sent = st.Known
		}
		if (state == "broadcast" || state == "confirmed") && !sent {
			return fmt.Errorf("payment %s is %s but the wallet does not know it", txid, state)
		}
		if sent && state != "signed" && state != "broadcast" && state != "confirmed" && state != "abandoning" {
			return fmt.Errorf("payment %s is %s but was sent", txid, state)
		}
		live := 0
		for _, h := range paying[id] {
			if f.wallet.live(h) {
				live++
			}
		}
		if live > 1 {
			return fmt.Errorf("payment %d has %d paying transactions in the mempool or in blocks", id, live)
		}
		if live == 1 {
			if state == "abandoned" || state == "failed" {
				return fmt.Errorf("payment %d is %s but pays", id, state)
			}
			a, err := btcutil.DecodeAddress(addr, f.params)
			if err != nil {
				return err
			}
			pk, _ := txscript.PayToAddrScript(a)
			ledger[string(pk)] += amt
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got := f.wallet.received()
	if fmt.Sprint(got) != fmt.Sprint(ledger) {
		t.Fatalf("wallet paid %v\nledger says %v", got, ledger)
	}
	if f.wallet.doubleSpends != 0 {
		t.Fatalf("%d double spend attempts", f.wallet.doubleSpends)
	}
	var credited, blocksCredited int64
	if err := f.st.Pool().QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM credits`).Scan(&credited); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Pool().QueryRow(ctx, `SELECT count(*) FROM blocks WHERE status = 'credited'`).Scan(&blocksCredited); err != nil {
		t.Fatal(err)
	}
	var splitsOK bool
	if err := f.st.Pool().QueryRow(ctx, `SELECT bool_and(s.miners_total = (SELECT sum(amount) FROM credits c WHERE c.block_id = s.block_id)
		AND s.reward = b.reward) IS NOT FALSE FROM block_splits s JOIN blocks b ON b.id = s.block_id`).Scan(&splitsOK); err != nil || !splitsOK {
		t.Fatalf("block_splits disagree with credits: %v", err)
	}
	if !wantAllPaid {
		return
	}
	if blocksCredited != 3 {
		t.Fatalf("%d blocks credited, want 3", blocksCredited)
	}
	var paid, nobody, open int64
	if err := f.st.Pool().QueryRow(ctx, `SELECT coalesce(sum(paid), 0), coalesce(sum(balance) FILTER (WHERE username = 'nobody'), 0),
		coalesce(sum(pending), 0) FROM balances`).Scan(&paid, &nobody, &open); err != nil {
		t.Fatal(err)
	}
	if open != 0 || paid+nobody != credited || nobody == 0 {
		t.Fatalf("credited %d, paid %d, nobody's balance %d, pending %d", credited, paid, nobody, open)
	}
}

// finish reruns (mining in between) until nothing is open.
func (f *fixture) finish(t *testing.T) {
	t.Helper()
	for range 4 {
		f.wallet.mine()
		// An interrupted run's connection was closed by its cancelled
		// context; PostgreSQL ends that session (and frees its advisory
		// lock) a moment later, as it would after a killed process.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := f.payer(t).Run(context.Background(), false)
			if errors.Is(err, ErrLocked) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		f.checkLocks(t)
	}
}

// openInputs reads the inputs of the open payments (signed, broadcast)
// from the ledger.
func openInputs(t testing.TB, st *store.Store) map[wire.OutPoint]bool {
	t.Helper()
	rows, err := st.Pool().Query(context.Background(), `SELECT i.txid, i.vout FROM payment_inputs i
		JOIN payments p ON p.id = i.payment_id WHERE p.state IN ('signed', 'broadcast', 'abandoning')`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[wire.OutPoint]bool{}
	var txid string
	var vout int64
	if _, err := pgx.ForEachRow(rows, []any{&txid, &vout}, func() error {
		h, err := chainhash.NewHashFromStr(txid)
		out[wire.OutPoint{Hash: *h, Index: uint32(vout)}] = true
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkLocks asserts that, after a run that was not interrupted, the
// wallet's locks are exactly the inputs of the open payments.
func (f *fixture) checkLocks(t *testing.T) {
	t.Helper()
	want := openInputs(t, f.st)
	got := f.wallet.lockedSet()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("wallet locks %v\nopen payments' inputs %v", got, want)
	}
}

func TestRunCreditsAndPays(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rep, err := f.payer(t).Run(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Credited) != 3 || len(rep.Payments) != 1 || rep.Payments[0].State != "broadcast" {
		t.Fatalf("report: %+v", rep)
	}
	for _, c := range rep.Credited {
		if sumSplit(c.Split) != c.Reward || !c.WindowFull || c.Window.Target != 60 {
			t.Fatalf("credited %+v", c)
		}
	}
	orphan, err := f.st.BlockByHash(ctx, blockHash(9999).String())
	if err != nil || orphan.Status != store.BlockOrphaned {
		t.Fatalf("orphan: %+v %v", orphan.Status, err)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].Username != "nobody" {
		t.Fatalf("skipped %+v", rep.Skipped)
	}
	// alice and her address share one output script: 4 outputs, 3 scripts
	if n := len(rep.Payments[0].Outputs); n != 4 {
		t.Fatalf("%d outputs", n)
	}
	f.check(t, false)
	f.checkLocks(t)
	if len(f.wallet.lockedSet()) == 0 {
		t.Fatal("a broadcast payment's inputs are not locked")
	}
	f.finish(t)
	f.check(t, true)
	if n := len(f.wallet.lockedSet()); n != 0 {
		t.Fatalf("%d locks left after every payment confirmed", n)
	}
	// A further run pays nothing and credits nothing.
	sends := f.wallet.sends
	rep, err = f.payer(t).Run(ctx, false)
	if err != nil || len(rep.Credited) != 0 || len(rep.Payments) != 0 || f.wallet.sends != sends {
		t.Fatalf("second run: %+v %v (sends %d → %d)", rep, err, sends, f.wallet.sends)
	}
	// The confirmed payment's fee is what its inputs and outputs say.
	var fee, total, in int64
	if err := f.st.Pool().QueryRow(ctx, `SELECT p.fee, p.total, (SELECT sum(amount) FROM payment_inputs i WHERE i.payment_id = p.id)
		FROM payments p WHERE state = 'confirmed'`).Scan(&fee, &total, &in); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := f.st.Pool().QueryRow(ctx, `SELECT raw_tx FROM payments`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	tx, err := parseTx(raw)
	if err != nil {
		t.Fatal(err)
	}
	var out int64
	for _, o := range tx.TxOut {
		out += o.Value
	}
	if in-out != fee || fee < 2*int64(tx.SerializeSize()) {
		t.Fatalf("fee %d, inputs %d, outputs %d, size %d", fee, in, out, tx.SerializeSize())
	}
}

func TestRunDryRunWritesNothing(t *testing.T) {
	f := newFixture(t)
	rep, err := f.payer(t).Run(context.Background(), true)
	if err != nil || !rep.DryRun || len(rep.Credited) != 3 || len(rep.Payments) != 1 || rep.Payments[0].State != "planned" {
		t.Fatalf("dry run: %+v %v", rep, err)
	}
	var n int64
	if err := f.st.Pool().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM credits) + (SELECT count(*) FROM payments)
		+ (SELECT count(*) FROM blocks WHERE status <> 'submitted')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("dry run wrote %d rows (%v)", n, err)
	}
	if f.wallet.signs+f.wallet.sends != 0 {
		t.Fatalf("dry run used the wallet")
	}
}

func TestRunOneAtATime(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	conn, err := f.st.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, store.PayoutLockKey); err != nil {
		t.Fatal(err)
	}
	if _, err := f.payer(t).Run(ctx, false); !errors.Is(err, ErrLocked) {
		t.Fatalf("second run: %v, want ErrLocked", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, store.PayoutLockKey); err != nil {
		t.Fatal(err)
	}
	if _, err := f.payer(t).Run(ctx, false); err != nil {
		t.Fatal(err)
	}
}

func TestRunInsufficientFundsStaysPlanned(t *testing.T) {
	f := newFixture(t)
	f.wallet = newFakeWallet(f.params) // empty
	rep, err := f.payer(t).Run(context.Background(), false)
	if !errors.Is(err, ErrInsufficientFunds) || len(rep.Payments) != 1 || rep.Payments[0].State != "planned" {
		t.Fatalf("%+v %v", rep, err)
	}
	f.wallet.fund(200_0000_0000)
	f.finish(t)
	f.check(t, true)
}

// TestRunInterrupted stops a run after every step, by an error, a panic or
// a cancelled context; then reruns until done. Whatever happened, the
// ledger and the wallet agree, nothing is paid twice and nothing is lost.
func TestRunInterrupted(t *testing.T) {
	steps := []string{StepClassified, StepCredited, StepLocksReconciled, StepPlanned, StepInputsRecorded, StepBuilt,
		StepSignedOnly, StepStored, StepSent, StepBroadcast, StepConfirmed, StepUnlocked, StepPaymentDone}
	for _, step := range steps {
		for _, mode := range []string{"error", "panic", "cancel"} {
			t.Run(step+"/"+mode, func(t *testing.T) {
				f := newFixture(t)
				var cancel context.CancelFunc
				hit := 0
				p := f.payer(t)
				p.o.StepHook = func(s string) error {
					if s != step {
						return nil
					}
					hit++
					switch mode {
					case "panic":
						panic("killed at " + s)
					case "cancel":
						cancel()
						return nil
					}
					return errors.New("killed")
				}
				// Two runs with the hook (the second meets later steps),
				// mining in between.
				for range 2 {
					var ctx context.Context
					ctx, cancel = context.WithCancel(context.Background())
					func() {
						defer func() { recover() }()
						p.Run(ctx, false)
					}()
					cancel()
					f.wallet.mine()
				}
				if hit == 0 {
					t.Fatalf("step %s never reached", step)
				}
				f.check(t, false)
				f.finish(t)
				f.check(t, true)
			})
		}
	}
}

// TestRunRebroadcastsSameBytes: a broadcast payment the wallet lost is sent
// again with the stored bytes, never rebuilt.
func TestRunRebroadcastsSameBytes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.payer(t).Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	var txid string
	if err := f.st.Pool().QueryRow(ctx, `SELECT txid FROM payments WHERE state = 'broadcast'`).Scan(&txid); err != nil {
		t.Fatal(err)
	}
	h, _ := chainhash.NewHashFromStr(txid)
	f.wallet.forget(*h)
	signs := f.wallet.signs
	if _, err := f.payer(t).Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.wallet.Status(ctx, *h); !st.Known || f.wallet.signs != signs {
		t.Fatalf("not rebroadcast as is: known=%v signs %d → %d", st.Known, signs, f.wallet.signs)
	}
	f.finish(t)
	f.check(t, true)
}

// TestRunBroadcastRefusedStaysSigned: a refused broadcast leaves the payment
// signed with the error recorded; the next run sends the same bytes.
func TestRunBroadcastRefusedStaysSigned(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.wallet.failSend = func(*wire.MsgTx) error { return fmt.Errorf("node down: %w", ErrWallet) }
	rep, err := f.payer(t).Run(ctx, false)
	if !errors.Is(err, ErrWallet) || rep.Payments[0].State != "signed" || rep.Payments[0].Error == "" {
		t.Fatalf("%+v %v", rep, err)
	}
	var stored string
	if err := f.st.Pool().QueryRow(ctx, `SELECT txid FROM payments`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	f.wallet.failSend = nil
	f.finish(t)
	f.check(t, true)
	var final string
	if err := f.st.Pool().QueryRow(ctx, `SELECT txid FROM payments WHERE state = 'confirmed'`).Scan(&final); err != nil || final != stored {
		t.Fatalf("confirmed %s, first signed %s (%v)", final, stored, err)
	}
}

// TestRunReleasesLeakedLock is the case: a run dies after locking
// the wallet's only output and before signing; the lock must not keep the
// next run from paying (btcwallet hides locked outputs).
func TestRunReleasesLeakedLock(t *testing.T) {
	f := newFixture(t)
	f.wallet = newFakeWallet(f.params)
	f.wallet.fund(200_0000_0000)
	p := f.payer(t)
	p.o.StepHook = func(s string) error {
		if s == StepBuilt {
			return errors.New("killed")
		}
		return nil
	}
	if _, err := p.Run(context.Background(), false); !errors.Is(err, errInterrupted) {
		t.Fatalf("first run: %v", err)
	}
	if n := len(f.wallet.lockedSet()); n != 1 {
		t.Fatalf("%d locks after the interrupted run, want the leaked one", n)
	}
	if u, _ := f.wallet.ListUnspent(context.Background()); len(u) != 0 {
		t.Fatalf("a locked output is listed: %v", u)
	}
	rep, err := f.payer(t).Run(context.Background(), false)
	if err != nil || len(rep.Payments) != 1 || rep.Payments[0].State != "broadcast" {
		t.Fatalf("second run: %+v %v", rep, err)
	}
	f.checkLocks(t)
	f.finish(t)
	f.check(t, true)
}

// TestRunRelocksAfterWalletRestart: a wallet restart loses the locks of an
// open payment; the next run locks its inputs again.
func TestRunRelocksAfterWalletRestart(t *testing.T) {
	f := newFixture(t)
	f.wallet.failSend = func(*wire.MsgTx) error { return fmt.Errorf("node down: %w", ErrWallet) }
	if _, err := f.payer(t).Run(context.Background(), false); !errors.Is(err, ErrWallet) {
		t.Fatal(err)
	}
	before := f.wallet.lockedSet()
	if len(before) == 0 {
		t.Fatal("the signed payment's inputs are not locked")
	}
	f.wallet.restart()
	f.wallet.failSend = nil
	if _, err := f.payer(t).Run(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if after := f.wallet.lockedSet(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("locks after restart %v, before %v", after, before)
	}
	f.finish(t)
	f.check(t, true)
}

// TestRunSignFailureUnlocks: inputs locked for a payment the wallet
// refuses to sign are released at once.
func TestRunSignFailureUnlocks(t *testing.T) {
	f := newFixture(t)
	f.wallet.failSign = func(*wire.MsgTx) error { return fmt.Errorf("wallet locked: %w", ErrWallet) }
	rep, err := f.payer(t).Run(context.Background(), false)
	if !errors.Is(err, ErrWallet) || rep.Payments[0].State != "planned" {
		t.Fatalf("%+v %v", rep, err)
	}
	if n := len(f.wallet.lockedSet()); n != 0 {
		t.Fatalf("%d locks left after a refused signature", n)
	}
	f.wallet.failSign = nil
	f.finish(t)
	f.check(t, true)
}

// TestRunForeignLocks: by default payout releases every lock that is not
// an open payment's input; with KeepForeignLocks it releases only locks of
// outputs a payment recorded.
func TestRunForeignLocks(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprint("keep=", keep), func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			foreign := wire.OutPoint{Hash: chainhash.Hash{0xf0}, Index: 7}
			f.wallet.LockUnspent(ctx, []wire.OutPoint{foreign})
			// A leaked lock of payout's own: recorded, never signed.
			p := f.payer(t)
			p.o.KeepForeignLocks = keep
			p.o.StepHook = func(s string) error {
				if s == StepBuilt {
					return errors.New("killed")
				}
				return nil
			}
			p.Run(ctx, false)
			p.o.StepHook = nil
			if _, err := p.Run(ctx, false); err != nil {
				t.Fatal(err)
			}
			locks := f.wallet.lockedSet()
			if locks[foreign] != keep {
				t.Fatalf("foreign lock kept: %v, want %v", locks[foreign], keep)
			}
			delete(locks, foreign)
			want := openInputs(t, f.st)
			if fmt.Sprint(locks) != fmt.Sprint(want) {
				t.Fatalf("locks %v, want %v", locks, want)
			}
		})
	}
}
