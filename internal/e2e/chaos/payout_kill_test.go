//go:build chaos

package chaos

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/e2e/daemontest"
	"github.com/stratumd/stratumd/internal/payout"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
)

// pkFunding is how many coinbases the wallet gets before the scenarios: each
// scenario spends three (the payments' change comes back as well).
const pkFunding = 150

// pkMaxReruns bounds the reruns of one scenario.
const pkMaxReruns = 10

// payoutRig is the part every scenario shares: the payout binary, one btcd
// and one btcwallet, and the found blocks each scenario records.
type payoutRig struct {
	bin    string
	node   *btcdtest.Node
	wallet *btcdtest.Wallet
	found  []*wire.MsgBlock
	// foundAt[i] is the height of found[i].
	foundAt []int32
	params  *chaincfg.Params
}

// pkScenario is one cell of the matrix.
type pkScenario struct {
	name string
	// phase "pay" breaks the first run (credit, plan, pay); "confirm"
	// breaks the run after the payments' block (their confirmation).
	phase string
	kill  int    // PAYOUT_TEST_KILL_STEP of the broken run, 0 none
	pause string // PAYOUT_TEST_PAUSE_STEP of the broken run (NAME:N), "" none
	// onPause runs on the test goroutine while payout is held at the
	// pause; it must resume or kill the run. It returns when the fault
	// began.
	onPause func(h held) time.Time
	what    string // what was killed, for the table
}

// held is a payout run waiting at its pause.
type held struct {
	step   string // "K name"
	resume func() // let the run go on
	kill   func() // SIGKILL it where it waits
}

// pkResult is one row of the matrix.
type pkResult struct {
	name     string
	phase    string
	step     string // "K name (payment n)"
	what     string
	killed   bool // the broken run died by SIGKILL
	paidOnce bool // on chain: every recipient one output, its credit
	locked   int  // listlockunspent after the scenario
	unspent  int  // of those, outputs nobody spent: coins the wallet withholds
	recover  time.Duration
	reruns   int
	notes    []string
	passed   []string // NAME:N of every boundary the broken run passed, in order
}

// TestPayoutKill is the payout kill matrix of issue 15, point 5: the real
// payout binary (built here), one real btcd and btcwallet (simnet) for all
// scenarios, and a fresh PostgreSQL database per scenario.
//
// Every scenario records, in its own database, the same two found blocks
// (two of the wallet's matured coinbases) with the shares of three new
// recipients (P2PKH, P2WPKH, P2TR), stored as stratumd's drainer stores
// them. One run credits both blocks and makes three payments
// (--max-outputs 1), each spending a coinbase of its own: the wallet holds
// pkFunding matured coinbases, and unconfirmed change is not spent.
//
// A scenario breaks one run:
//
//   - "pay" phase, K = 1, 2, ... until the run ends before step K: the
//     first run SIGKILLs itself at its K-th step boundary
//     (PAYOUT_TEST_KILL_STEP=K; PAYOUT_TEST_STEP_LOG names the step);
//   - "confirm" phase: the same for the run after the payments' block;
//   - in both phases, every boundary (NAME:N, the N-th step called NAME)
//     that some run passed but no K hit, as the count can shift by a step
//     from run to run: the run is held there (PAYOUT_TEST_PAUSE_STEP=NAME:N)
//     and SIGKILLed by the test;
//   - btcwallet: payout held at a named step (PAYOUT_TEST_PAUSE_STEP=NAME:N)
//     while the test SIGKILLs payout and then btcwallet, or btcwallet alone,
//     and starts btcwallet again on its data directory, before the rerun or
//     while payout goes on.
//
// Then payout runs again, with a block mined whenever payments wait for a
// confirmation, until the ledger has nothing open; then one more block and
// one more run, which must pay nothing. What is checked is on chain and in
// the wallet, not in our tables:
//
//   - every block since the scenario began, read from btcd: each recipient
//     got exactly one output, of exactly its credited amount;
//   - btcd's mempool is empty (nothing stuck);
//   - btcwallet's listlockunspent is empty (when it is not, the scenario
//     fails, and the test unlocks everything so that the next row shows
//     only its own locks).
//
// Time to recover runs from the fault (payout's or btcwallet's death) to the
// end of the first run that exits 0 and leaves no payment planned or signed;
// confirmation blocks are not in it. The matrix is printed as a Markdown
// table: docs/RELIABILITY.md, "Payout kill matrix (real btcwallet)".
func TestPayoutKill(t *testing.T) {
	started := time.Now()
	rig := startPayoutRig(t)
	t.Logf("set-up (build, btcd, btcwallet, %d funding blocks): %v", pkFunding+101, time.Since(started).Round(100*time.Millisecond))

	var results []pkResult
	for _, phase := range []string{"pay", "confirm"} {
		var seen []string // every NAME:N a broken run of this phase passed
		killedAt := map[string]bool{}
		for k := 1; k <= 60; k++ {
			r := rig.scenario(t, pkScenario{name: fmt.Sprintf("%s-kill-%d", phase, k), phase: phase, kill: k, what: "payout"})
			for _, at := range r.passed {
				if !slices.Contains(seen, at) {
					seen = append(seen, at)
				}
			}
			if !r.killed {
				r.step = fmt.Sprintf("none (K=%d: the run ended first)", k)
				r.what = "nothing"
				results = append(results, r)
				break
			}
			if n, _, _ := strings.Cut(r.step, " "); n != strconv.Itoa(k) {
				t.Errorf("%s: killed at step %q, want step %d", phase, r.step, k)
			}
			if len(r.passed) > 0 {
				killedAt[r.passed[len(r.passed)-1]] = true
			}
			results = append(results, r)
		}
		// Where a step falls in the count can vary from run to run (a
		// payment btcwallet does not know yet skips "payment-done"), so
		// K = 1, 2, ... may miss a boundary some run passed: kill there by
		// name, holding the run at the step and killing it from here.
		for _, at := range seen {
			if killedAt[at] {
				continue
			}
			r := rig.scenario(t, pkScenario{name: phase + "-held-" + strings.ReplaceAll(at, ":", "-"), phase: phase, pause: at,
				onPause: func(h held) time.Time {
					killed := time.Now()
					h.kill()
					return killed
				},
				what: "payout (held at the step, SIGKILLed by the test)"})
			if r.step == "" {
				r.step = at + ": not reached in this run"
			}
			results = append(results, r)
		}
	}

	// btcwallet killed, and started again on its data directory.
	w := rig.wallet
	const restartedBefore = "payout, then btcwallet (restarted before the rerun)"
	const restartedWaiting = "btcwallet while payout waits (restarted, then payout goes on)"
	killBoth := func(h held) time.Time {
		h.kill()
		at := time.Now()
		w.Kill()
		w.Restart()
		return at
	}
	killWallet := func(h held) time.Time {
		w.Kill()
		at := time.Now()
		w.Restart()
		h.resume()
		return at
	}
	for _, sc := range []pkScenario{
		{name: "wallet-at-built-1", phase: "pay", pause: "built:1", onPause: killBoth, what: restartedBefore},
		{name: "wallet-at-signed-stored-1", phase: "pay", pause: "signed-stored:1", onPause: killBoth, what: restartedBefore},
		{name: "wallet-after-broadcast-1", phase: "pay", pause: "broadcast-marked:1",
			onPause: func(h held) time.Time {
				w.Kill()
				at := time.Now()
				h.resume() // payout goes on while btcwallet is down
				w.Restart()
				return at
			},
			what: "btcwallet while payout runs (restarted during the run)"},
		{name: "wallet-at-built-2", phase: "pay", pause: "built:2", onPause: killWallet, what: restartedWaiting},
		{name: "wallet-at-sent-2", phase: "pay", pause: "sent-not-marked:2", onPause: killWallet, what: restartedWaiting},
		{name: "wallet-at-confirmed-1", phase: "confirm", pause: "confirmed:1", onPause: killWallet, what: restartedWaiting},
	} {
		results = append(results, rig.scenario(t, sc))
	}
	t.Logf("payout kill matrix: %d scenarios in %v", len(results), time.Since(started).Round(time.Second))
	t.Log("\n" + pkTable(results))
}

// stepLine matches the lines of PAYOUT_TEST_STEP_LOG and
// PAYOUT_TEST_PAUSE_STEP: "payout: test step K NAME", "payout: test pause
// at step K NAME".
var stepLine = regexp.MustCompile(`^payout: test (step|pause at step) (\d+) (\S+)$`)

// stepLabel is "K name" with, for a payment's step, the payment: read from
// the ledger while the run is stopped at the step (each step follows a
// committed state change). The ledger only names the row here; it proves
// nothing.
func stepLabel(ctx context.Context, conn *pgx.Conn, phase, step string) (string, error) {
	_, name, _ := strings.Cut(step, " ")
	var q string
	switch {
	case phase == "pay" && (name == "inputs-recorded" || name == "built" || name == "signed-not-stored"):
		q = `SELECT min(id) FROM payments WHERE state = 'planned'`
	case phase == "pay" && (name == "signed-stored" || name == "sent-not-marked"):
		q = `SELECT min(id) FROM payments WHERE state = 'signed'`
	case phase == "pay" && (name == "broadcast-marked" || name == "payment-done"):
		q = `SELECT max(id) FROM payments WHERE state = 'broadcast'`
	case phase == "confirm" && (name == "confirmed" || name == "unlocked" || name == "payment-done"):
		q = `SELECT max(id) FROM payments WHERE state = 'confirmed'`
	default:
		return step, nil
	}
	var id *int64
	if err := conn.QueryRow(ctx, q).Scan(&id); err != nil {
		return "", err
	}
	if id == nil {
		return step + " (payment ?)", nil
	}
	return fmt.Sprintf("%s (payment %d)", step, *id), nil
}

func pkTable(rs []pkResult) string {
	var b strings.Builder
	b.WriteString("| phase | step (K) | killed | paid once | locked outputs after | time to recover | reruns | seen on the way |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rs {
		rec := "—"
		if r.recover > 0 {
			rec = fmt.Sprintf("%.2f s", r.recover.Seconds())
		}
		paid := "no"
		if r.paidOnce {
			paid = "yes"
		}
		notes := strings.Join(r.notes, "; ")
		if notes == "" {
			notes = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d (%d unspent) | %s | %d | %s |\n", r.phase, r.step, r.what, paid, r.locked, r.unspent, rec, r.reruns,
			strings.ReplaceAll(notes, "|", `\|`))
	}
	return b.String()
}

// startPayoutRig builds payout, starts btcd and btcwallet and funds the
// wallet with matured coinbases.
func startPayoutRig(t *testing.T) *payoutRig {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := daemontest.BuildCommand(ctx, t.TempDir(), "payout")
	if err != nil {
		t.Fatal(err)
	}
	node := btcdtest.Start(t, btcdtest.Options{Network: "simnet"})
	wallet := btcdtest.StartWallet(t, node)
	rig := &payoutRig{bin: bin, node: node, wallet: wallet, params: node.Params}
	poolAddr := wallet.NewAddress()
	node.Generate(1) // leave genesis, so that getblocktemplate's chain is current
	blocks := node.GenerateTo(poolAddr, pkFunding)
	rig.found = blocks[:2]
	for _, b := range rig.found {
		h := b.BlockHash()
		v, err := node.Client().GetBlockVerbose(&h)
		if err != nil {
			t.Fatal(err)
		}
		rig.foundAt = append(rig.foundAt, int32(v.Height))
	}
	node.Generate(100) // every funding coinbase matures
	rig.sync(ctx, t)
	bal, err := wallet.Client().GetBalance("default")
	if err != nil || int64(bal) != pkFunding*blocks[0].Transactions[0].TxOut[0].Value {
		t.Fatalf("wallet balance %v (%v), want %d coinbases", bal, err, pkFunding)
	}
	return rig
}

// sync waits until btcwallet has caught up with btcd's tip.
func (rig *payoutRig) sync(ctx context.Context, t testing.TB) {
	t.Helper()
	best, err := rig.node.Client().GetBlockCount()
	if err != nil {
		t.Fatal(err)
	}
	if err := rig.wallet.WaitSynced(ctx, best); err != nil {
		t.Fatal(err)
	}
}

// mine mines one block with btcd's miner (it takes the mempool's
// transactions) and waits for the wallet.
func (rig *payoutRig) mine(ctx context.Context, t testing.TB) {
	t.Helper()
	rig.node.Generate(1)
	rig.sync(ctx, t)
}

// pkUsers are a scenario's three recipients, P2PKH, P2WPKH and P2TR
// addresses of keys nobody holds, new in every scenario.
func pkUsers(name string, params *chaincfg.Params) ([]string, error) {
	seed := sha256.Sum256([]byte("payout kill " + name))
	a1, err := btcutil.NewAddressPubKeyHash(seed[:20], params)
	if err != nil {
		return nil, err
	}
	a2, err := btcutil.NewAddressWitnessPubKeyHash(seed[6:26], params)
	if err != nil {
		return nil, err
	}
	a3, err := btcutil.NewAddressTaproot(seed[:], params)
	if err != nil {
		return nil, err
	}
	return []string{a1.EncodeAddress(), a2.EncodeAddress(), a3.EncodeAddress()}, nil
}

// record stores the found blocks' rounds as stratumd's drainer stores them
// (store.StoreShares, the block row with its share): in each round user i
// submits i+1 shares of difficulty 1, and the last share is the block's.
// Network difficulty 3 makes the PPLNS window (factor 2) one round.
func (rig *payoutRig) record(ctx context.Context, st *store.Store, users []string) error {
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var shares []store.StoredShare
	var seq uint64
	for b, blk := range rig.found {
		round := base.Add(time.Duration(b) * 10 * time.Minute)
		k := 0
		for i, u := range users {
			for range i + 1 {
				seq++
				shares = append(shares, store.StoredShare{Seq: seq, Share: store.Share{
					Time: round.Add(time.Duration(k) * time.Second), Username: u, Worker: "rig", JobID: strconv.Itoa(b),
					Height: rig.foundAt[b], Difficulty: 1, ShareDifficulty: 1.5, RemoteAddr: "127.0.0.1"}})
				k++
			}
		}
		last := &shares[len(shares)-1].Share
		last.Block = &store.BlockFound{Hash: blk.BlockHash(), PrevHash: blk.Header.PrevBlock,
			Reward: blk.Transactions[0].TxOut[0].Value, NetworkDifficulty: 3, Status: store.BlockSubmitted}
	}
	spool := sha256.Sum256([]byte("payout kill spool"))
	return st.StoreShares(ctx, [16]byte(spool[:16]), 0, shares)
}

// pkRun is one payout process.
type pkRun struct {
	steps  []string // "K name" of every boundary passed (PAYOUT_TEST_STEP_LOG)
	killed bool
	exit   int
	step   string // "K name": where it was killed, or else paused
	report *payout.Report
	stderr string
	ended  time.Time
	// faultAt is when onPause said the fault began.
	faultAt time.Time
}

func (r pkRun) ok() bool { return !r.killed && r.exit == 0 }

// errText is what went wrong in a run, short.
func (r pkRun) errText() string {
	if r.killed {
		return "killed"
	}
	if r.report != nil && len(r.report.Errors) > 0 {
		return strings.Join(r.report.Errors, "; ")
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	return fmt.Sprintf("exit %d: %s", r.exit, lines[len(lines)-1])
}

// payout runs `payout run --json` on db with the extra environment (and
// PAYOUT_TEST_STEP_LOG=1). At a pause it calls onPause, which resumes or
// kills the run.
func (rig *payoutRig) payout(ctx context.Context, t testing.TB, db string, env []string, onPause func(held) time.Time) pkRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rig.bin, "run", "--json", "--db", db, "--network", "simnet",
		"--wallet-url", "http://"+rig.wallet.RPCAddr(), "--wallet-user", btcdtest.WalletUser, "--wallet-pass", btcdtest.WalletPass,
		"--wallet-passphrase", btcdtest.WalletPassphrase,
		"--node-url", "http://"+rig.node.RPCAddr(), "--node-user", btcdtest.RPCUser, "--node-pass", btcdtest.RPCPass,
		"--maturity-margin", "0", "--max-outputs", "1", "--min-payout", "100000", "--fee-rate", "2", "--fee-bps", "100")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PAYOUT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "PAYOUT_TEST_STEP_LOG=1"), env...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	var steps []string // "K name" of every boundary passed; read after readDone
	pauses := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderrPipe)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			stderr.Write(sc.Bytes())
			stderr.WriteByte('\n')
			m := stepLine.FindStringSubmatch(sc.Text())
			switch {
			case m == nil:
			case m[1] == "step":
				steps = append(steps, m[2]+" "+m[3])
			default:
				pauses <- m[2] + " " + m[3]
			}
		}
	}()
	var r pkRun
	select {
	case step := <-pauses:
		r.step = step
		if onPause == nil {
			cmd.Process.Kill()
			t.Fatalf("payout paused at %s and nothing resumes it", step)
		}
		r.faultAt = onPause(held{
			step:   step,
			resume: func() { stdin.Write([]byte("\n")) },
			kill: func() {
				cmd.Process.Kill()
				<-readDone // its stderr ends with it
			},
		})
	case <-readDone:
	}
	<-readDone
	err = cmd.Wait()
	r.ended = time.Now()
	stdin.Close()
	if ctx.Err() != nil {
		t.Fatalf("payout did not finish: %v\n%s", ctx.Err(), stderr.String())
	}
	r.stderr = stderr.String()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		r.killed = ws.Signaled() && ws.Signal() == syscall.SIGKILL
		r.exit = ws.ExitStatus()
	default:
		t.Fatalf("payout: %v", err)
	}
	r.steps = steps
	if r.killed && len(steps) > 0 {
		r.step = steps[len(steps)-1] // the boundary it died at
	}
	if !r.killed && stdout.Len() > 0 {
		r.report = &payout.Report{}
		if err := json.Unmarshal(stdout.Bytes(), r.report); err != nil {
			t.Fatalf("payout report %q: %v", stdout.String(), err)
		}
	}
	return r
}

// openPayments counts the ledger's open payments by state (broadcast
// counts the abandoning ones too: both wait for a block). It only steers
// the reruns and checks that nothing is left open; it proves no payment.
func openPayments(ctx context.Context, conn *pgx.Conn) (planned, signed, broadcast int, err error) {
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'planned'), count(*) FILTER (WHERE state = 'signed'),
		count(*) FILTER (WHERE state IN ('broadcast', 'abandoning')) FROM payments`).Scan(&planned, &signed, &broadcast)
	return
}

// waitLockFree waits until no session holds an advisory lock in conn's
// database (each scenario has its own, and only payout locks in it).
func waitLockFree(ctx context.Context, conn *pgx.Conn) error {
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil {
			return fmt.Errorf("advisory locks: %w", err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("payout's advisory lock still held: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// scenario runs one cell of the matrix in a subtest and returns its row.
func (rig *payoutRig) scenario(t *testing.T, sc pkScenario) pkResult {
	res := pkResult{name: sc.name, phase: sc.phase, what: sc.what}
	t.Run(sc.name, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		st, db := pgtest.NewStore(t)
		users, err := pkUsers(sc.name, rig.params)
		if err != nil {
			t.Fatal(err)
		}
		if err := rig.record(ctx, st, users); err != nil {
			t.Fatalf("record found blocks: %v", err)
		}
		conn, err := pgx.Connect(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		from, err := rig.node.Client().GetBlockCount()
		if err != nil {
			t.Fatal(err)
		}
		var logs []string // every run's stderr, shown when the scenario fails
		defer func() {
			if t.Failed() {
				t.Logf("payout runs of %s:\n%s", sc.name, strings.Join(logs, "\n----\n"))
			}
		}()
		note := func(s string) {
			if len(s) > 160 {
				s = s[:160] + "…"
			}
			if !slices.Contains(res.notes, s) {
				res.notes = append(res.notes, s)
			}
		}

		if sc.phase == "confirm" {
			r := rig.payout(ctx, t, db, nil, nil)
			logs = append(logs, r.stderr)
			if !r.ok() {
				t.Fatalf("first run: %s", r.errText())
			}
			rig.mine(ctx, t)
		}
		var env []string
		if sc.kill > 0 {
			env = append(env, fmt.Sprintf("PAYOUT_TEST_KILL_STEP=%d", sc.kill))
		}
		if sc.pause != "" {
			env = append(env, "PAYOUT_TEST_PAUSE_STEP="+sc.pause)
		}
		// The ledger names the payment while the run is held or dead.
		label := func(step string) string {
			l, err := stepLabel(ctx, conn, sc.phase, step)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		onPause := sc.onPause
		if onPause != nil {
			onPause = func(h held) time.Time {
				res.step = label(h.step)
				return sc.onPause(h)
			}
		}
		r := rig.payout(ctx, t, db, env, onPause)
		if r.killed {
			res.step = label(r.step)
		}
		count := map[string]int{}
		for _, st := range r.steps {
			_, name, _ := strings.Cut(st, " ")
			count[name]++
			res.passed = append(res.passed, fmt.Sprintf("%s:%d", name, count[name]))
		}
		logs = append(logs, r.stderr)
		res.killed = r.killed
		faultAt := r.faultAt
		if r.killed && faultAt.IsZero() {
			faultAt = r.ended
		}
		if !r.killed && !r.ok() {
			note("broken run: " + r.errText())
		}
		lastOK := r.ok()
		var recovered time.Time
		settled := func() {
			if !recovered.IsZero() || faultAt.IsZero() {
				return
			}
			planned, signed, _, err := openPayments(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			if planned+signed == 0 {
				recovered = time.Now()
			}
		}
		if lastOK {
			settled()
		}
		for {
			planned, signed, broadcast, err := openPayments(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			if lastOK && planned+signed+broadcast == 0 {
				break
			}
			if res.reruns == pkMaxReruns {
				t.Errorf("still %d planned, %d signed, %d broadcast payments after %d reruns", planned, signed, broadcast, res.reruns)
				break
			}
			if lastOK && broadcast > 0 {
				rig.mine(ctx, t) // the payments wait for a confirmation
			}
			r := rig.payout(ctx, t, db, nil, nil)
			logs = append(logs, r.stderr)
			res.reruns++
			lastOK = r.ok()
			if lastOK {
				settled()
			} else {
				note(fmt.Sprintf("rerun %d: %s", res.reruns, r.errText()))
			}
			if r.exit == 75 {
				// The advisory lock of the killed run's session lasts
				// until PostgreSQL has seen its connection close; cron
				// would try again later, the test when it is gone.
				if err := waitLockFree(ctx, conn); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !recovered.IsZero() {
			res.recover = recovered.Sub(faultAt)
		}
		// One more block and one more run: nothing new is paid.
		rig.mine(ctx, t)
		last := rig.payout(ctx, t, db, nil, nil)
		logs = append(logs, last.stderr)
		if !last.ok() || last.report == nil || len(last.report.Payments) != 0 || len(last.report.Credited) != 0 {
			t.Errorf("final run: %s; report %+v", last.errText(), last.report)
		}

		// On chain: every recipient's outputs in the blocks mined since the
		// scenario began.
		credited := map[string]int64{}
		rows, err := conn.Query(ctx, `SELECT username, sum(amount)::bigint FROM credits GROUP BY username`)
		if err != nil {
			t.Fatal(err)
		}
		var user string
		var amt int64
		if _, err := pgx.ForEachRow(rows, []any{&user, &amt}, func() error { credited[user] = amt; return nil }); err != nil {
			t.Fatal(err)
		}
		if len(credited) != len(users) {
			t.Errorf("credited %v, want the %d users %v", credited, len(users), users)
		}
		paid, outputs, err := rig.paidOnChain(from, users)
		if err != nil {
			t.Fatal(err)
		}
		res.paidOnce = len(credited) == len(users)
		for _, u := range users {
			if outputs[u] != 1 || paid[u] != credited[u] || credited[u] <= 0 {
				res.paidOnce = false
				t.Errorf("%s: credited %d, on chain %d sat in %d outputs", u, credited[u], paid[u], outputs[u])
			}
		}
		mempool, err := rig.node.Client().GetRawMempool()
		if err != nil {
			t.Fatal(err)
		}
		if len(mempool) != 0 {
			t.Errorf("%d transactions stuck in the mempool: %v", len(mempool), mempool)
		}
		planned, signed, broadcast, err := openPayments(ctx, conn)
		if err != nil || planned+signed+broadcast != 0 {
			t.Errorf("ledger: %d planned, %d signed, %d broadcast payments left (%v)", planned, signed, broadcast, err)
		}
		locked, err := rig.wallet.Client().ListLockUnspent()
		if err != nil {
			t.Fatal(err)
		}
		res.locked = len(locked)
		for _, op := range locked {
			out, err := rig.node.Client().GetTxOut(&op.Hash, op.Index, true)
			if err != nil {
				t.Fatal(err)
			}
			if out != nil {
				res.unspent++
			}
		}
		if len(locked) != 0 {
			t.Errorf("btcwallet still locks %d outputs (%d of them unspent): %v", len(locked), res.unspent, locked)
			// Start the next scenario from an unlocked wallet, so that each
			// row shows what its own scenario left.
			if err := rig.wallet.Client().LockUnspent(true, nil); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: step %q killed=%v paid once=%v locked=%d (%d unspent) recover=%v reruns=%d %v", sc.name, res.step, res.killed,
			res.paidOnce, res.locked, res.unspent, res.recover.Round(time.Millisecond), res.reruns, res.notes)
	})
	return res
}

// paidOnChain reads every block above height from btcd and sums, per
// recipient, the outputs paying it and their number.
func (rig *payoutRig) paidOnChain(from int64, users []string) (map[string]int64, map[string]int, error) {
	c := rig.node.Client()
	best, err := c.GetBlockCount()
	if err != nil {
		return nil, nil, err
	}
	paid, outputs := map[string]int64{}, map[string]int{}
	for h := from + 1; h <= best; h++ {
		hash, err := c.GetBlockHash(h)
		if err != nil {
			return nil, nil, fmt.Errorf("block hash %d: %w", h, err)
		}
		blk, err := c.GetBlock(hash)
		if err != nil {
			return nil, nil, fmt.Errorf("block %d: %w", h, err)
		}
		for _, tx := range blk.Transactions {
			for _, o := range tx.TxOut {
				_, addrs, _, err := txscript.ExtractPkScriptAddrs(o.PkScript, rig.params)
				if err != nil || len(addrs) != 1 {
					continue
				}
				if a := addrs[0].EncodeAddress(); slices.Contains(users, a) {
					paid[a] += o.Value
					outputs[a]++
				}
			}
		}
	}
	return paid, outputs, nil
}
