package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/stratumd/stratumd/internal/chain"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-n", "300"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		addr, ok := strings.CutPrefix(l, "solo:")
		if _, err := chain.PayoutAddress(addr, &chaincfg.RegressionNetParams); !ok || err != nil || seen[l] {
			t.Fatalf("line %q: %v (repeated: %v)", l, err, seen[l])
		}
		seen[l] = true
	}
	if len(seen) != 300 {
		t.Fatalf("%d distinct lines, want 300", len(seen))
	}
	if err := run([]string{"-n", "0"}, &out); err == nil {
		t.Fatal("-n 0 accepted")
	}
}
