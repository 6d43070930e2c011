//go:build chaos

package hostile

import (
	"os"
	"strconv"
	"testing"

	"github.com/stratumd/stratumd/internal/pwworker"
)

// envAttackerNice, when set to a nice value (e.g. 19), lowers the CPU
// priority of this test process — the attackers — once stratumd and the
// honest miners' process have started at the normal priority: a separate
// measurement of what the attackers' own CPU on the shared two cores costs
// the honest miners, as if the attack came from machines of its own.
const envAttackerNice = "STRATUMD_HOSTILE_ATTACKER_NICE"

// attackerNice applies envAttackerNice to every thread of the process (new
// threads inherit it from the thread that creates them). It reports the
// value applied, or 0 when the variable is unset.
func attackerNice(t *testing.T) int {
	t.Helper()
	v := os.Getenv(envAttackerNice)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 19 {
		t.Fatalf("%s=%q: want 1..19", envAttackerNice, v)
	}
	if err := pwworker.Renice(n); err != nil {
		t.Fatalf("renice the attackers: %v", err)
	}
	return n
}
