//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/e2e/daemontest"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
)

// TestFoundBlockNodeDown: stratumd in RPC mode, btcd (simnet) stopped
// before the find. The miner gets true for its block; the block is stored
// with its share (blocks.raw) and handed over again with backoff; when
// btcd returns the block lands on btcd's best chain (asked of btcd, not of
// our tables) and its row goes from submitted to confirmed.
func TestFoundBlockNodeDown(t *testing.T) { foundBlockNodeDown(t, false) }

// TestFoundBlockNodeDownKillRestart: the same, with stratumd SIGKILLed
// right after the miner's true and restarted while btcd is still down: the
// block comes back from the spool and the table and lands when btcd does.
func TestFoundBlockNodeDownKillRestart(t *testing.T) { foundBlockNodeDown(t, true) }

func foundBlockNodeDown(t *testing.T, kill bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	btcd := btcdtest.Start(t, btcdtest.Options{Network: "simnet"})
	tipHash := btcd.Generate(1)[0]
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	addr := daemontest.FreeAddr(t)
	payout := btcdtest.MiningAddress(btcd.Params)
	p := daemontest.Start(t, stratumdBin, daemontest.Options{Args: rpcArgs(btcd, db, addr, dir, payout)})
	m, err := miner.Dial(ctx, addr, miner.Options{User: payout, Workers: []string{"rig"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.WaitEvent(ctx, func(e miner.Event) bool { return e.Job != nil && e.Job.PrevHash == *tipHash }); err != nil {
		t.Fatalf("no job on btcd's tip: %v", err)
	}

	btcd.Stop()
	if _, err := p.WaitLog(ctx, nodeDown); err != nil {
		t.Fatalf("stratumd did not notice btcd stopped: %v", err)
	}
	var sh miner.Share
	for !sh.MeetsNetwork { // shares that are not blocks are not submitted
		if sh, err = m.FindShare(ctx); err != nil {
			t.Fatal(err)
		}
	}
	res, err := m.Submit(ctx, sh)
	if err != nil || !res.Accepted {
		t.Fatalf("block share: accepted %v, error %v, %v", res.Accepted, res.Error, err)
	}
	hash := sh.Hash.String()
	foundAt := time.Now()
	if _, err := p.WaitLog(ctx, func(l daemontest.Line) bool {
		return strings.HasPrefix(l.Msg(), "stratum: BLOCK FOUND BUT NOT HANDED OVER") && l.Str("hash") == hash
	}); err != nil {
		t.Fatalf("the failed handover is not logged: %v", err)
	}
	if kill {
		p.Kill()
		killedAt := time.Now()
		p.Restart()
		t.Logf("stratumd SIGKILLed %v after the miner's true, restarted in %v with btcd still down (spool replayed at restart: %v)",
			killedAt.Sub(foundAt).Round(time.Millisecond), time.Since(killedAt).Round(time.Millisecond),
			p.Count(msgIs("replaying spool")) > 0)
	}

	// Stored with its bytes, still submitted, handed over again and again.
	row := waitBlockRow(ctx, t, db, hash, func(r foundRow) bool { return r.rawLen > 0 })
	if row.status != "submitted" || row.height != 2 {
		t.Fatalf("row while btcd is down: %+v", row)
	}
	if _, err := p.WaitLog(ctx, func(l daemontest.Line) bool {
		return l.Msg() == "stratum: found block resubmitted; not handed over" && l.Str("hash") == hash && l.Str("attempt") == "2"
	}); err != nil {
		t.Fatalf("no second failed resubmission: %v", err)
	}

	btcd.Restart() // simnet: btcd keeps its chain
	upAt := time.Now()
	if err := waitBtcdHas(ctx, btcd, 2, hash); err != nil {
		t.Fatalf("the block never reached btcd's best chain: %v", err)
	}
	landed := time.Since(upAt)
	row = waitBlockRow(ctx, t, db, hash, func(r foundRow) bool { return r.status == "confirmed" })
	confirmed := time.Since(upAt)
	if row.attempts < 3 || !row.onChain || !strings.HasPrefix(row.lastResult, "accepted") {
		t.Errorf("confirmed row: %+v", row)
	}
	if best, err := btcd.Client().GetBestBlockHash(); err != nil || best.String() != hash {
		t.Errorf("btcd's tip %v (%v), want the pool's block", best, err)
	}
	dumps, _ := filepath.Glob(filepath.Join(dir, "shares", "*.json"))
	if want := filepath.Join(dir, "shares", fmt.Sprintf("2-%s.json", hash)); len(dumps) != 1 || dumps[0] != want {
		t.Errorf("share dumps %v, want %s", dumps, want)
	}
	t.Logf("block %s found %v before btcd came back; on btcd's best chain %v after btcd's restart, row confirmed after %v; %d resubmissions (last: %s)",
		hash, upAt.Sub(foundAt).Round(time.Millisecond), landed.Round(time.Millisecond), confirmed.Round(time.Millisecond),
		row.attempts, row.lastResult)
	if err := p.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// foundRow is a blocks row and its resubmission columns.
type foundRow struct {
	height     int32
	status     string
	rawLen     int
	attempts   int
	lastResult string
	onChain    bool
}

// waitBlockRow polls the row of hash until ok holds.
func waitBlockRow(ctx context.Context, t *testing.T, db, hash string, ok func(foundRow) bool) foundRow {
	t.Helper()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var r foundRow
	for {
		err := conn.QueryRow(ctx, `SELECT height, status, COALESCE(octet_length(raw), 0), submit_attempts,
			last_submit_result, on_chain_at IS NOT NULL FROM blocks WHERE hash = $1`, hash).
			Scan(&r.height, &r.status, &r.rawLen, &r.attempts, &r.lastResult, &r.onChain)
		if err == nil && ok(r) {
			return r
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("block %s: row %+v (%v): %v", hash, r, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitBtcdHas waits until btcd's best chain has hash at height.
func waitBtcdHas(ctx context.Context, n *btcdtest.Node, height int64, hash string) error {
	for {
		if c := n.Client(); c != nil {
			if h, err := c.GetBlockHash(height); err == nil && h.String() == hash {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
