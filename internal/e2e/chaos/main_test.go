//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/e2e/daemontest"
)

// stratumdBin is the binary built once by TestMain.
var stratumdBin string

func TestMain(m *testing.M) {
	os.Exit(daemontest.Main(m, "chaos", &stratumdBin))
}

// devAddress is stratumd's regtest development address (key 1).
const devAddress = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"

// regtestUsers are two regtest addresses: open authorization takes them as
// user names.
func regtestUsers(t *testing.T) []string {
	h := chainhash.HashB([]byte("chaos test"))
	a, err := btcutil.NewAddressWitnessScriptHash(h, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return []string{devAddress, a.EncodeAddress()}
}

// shareDiff is the share difficulty of every test: below 2^-32 every hash
// is a share, and on regtest (network difficulty 4.66e-10, about two
// hashes per block) half of them are blocks.
const shareDiff = "1e-10"

// regtestArgs runs stratumd with its in-process node on regtest.
func regtestArgs(dir, db, addr string) []string {
	return []string{"--db", db, "--listen", addr, "--network", "regtest", "--node", "embedded",
		"--auth", "open", "--datadir", filepath.Join(dir, "node"), "--share-dir", filepath.Join(dir, "shares"),
		"--min-diff", shareDiff, "--max-diff", shareDiff, "--job-interval", "1s"}
}

// hold keeps a fault in place for d (the fault's duration is what is
// tested, not an event to wait for).
func hold(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func rate(n int, d time.Duration) string {
	return fmt.Sprintf("%d shares in %v (%.0f/s)", n, d.Round(100*time.Millisecond), float64(n)/d.Seconds())
}

// checkBlocks compares the blocks the miners saw accepted with the blocks
// table.
func checkBlocks(t *testing.T, db string, acks []ack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := blockRows(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	found, missing := 0, 0
	for _, a := range acks {
		if !a.block {
			continue
		}
		found++
		if _, ok := rows[a.hash]; !ok {
			missing++
			if missing <= 10 {
				t.Errorf("block %s (share acknowledged to miner %d at %s) has no row in blocks",
					a.hash, a.miner, a.after.Format(time.StampMicro))
			}
		}
	}
	t.Logf("blocks: %d acknowledged block shares, %d rows in blocks, %d missing", found, len(rows), missing)
}
