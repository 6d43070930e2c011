//go:build chaos

package hostile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratumd/stratumd/internal/e2e/daemontest"
)

// stratumdBin is the binary built once by TestMain.
var stratumdBin string

func TestMain(m *testing.M) {
	if os.Getenv(envHonestAddr) != "" { // the honest-miner helper process
		os.Exit(m.Run())
	}
	os.Exit(daemontest.Main(m, "hostile", &stratumdBin))
}

// devAddress is stratumd's regtest development address (key 1).
const devAddress = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"

// shareDiff is 4e-10, just under regtest's network difficulty (4.66e-10,
// about two hashes per block): 58 % of all hashes are shares and 86 % of
// shares are blocks, which every miner here withholds, so the tip stays put
// while latency is measured. Regtest has no difficulty at which a random
// hash fails more often: a forged or replayed share is judged by whether it
// meets the target for the session it is sent on (validFor), not by chance.
const shareDiff = "4e-10"

func baseArgs(dir, db, addr string) []string {
	return []string{"--db", db, "--listen", addr, "--network", "regtest", "--node", "embedded",
		"--datadir", filepath.Join(dir, "node"), "--share-dir", filepath.Join(dir, "shares"),
		"--min-diff", shareDiff, "--max-diff", shareDiff, "--job-interval", "30s"}
}

// addUser creates a password user with `stratumd adduser`.
func addUser(t *testing.T, db, name, password string) {
	t.Helper()
	cmd := exec.Command(stratumdBin, "--db", db, "adduser", name)
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("adduser %s: %v\n%s", name, err, out)
	}
}
