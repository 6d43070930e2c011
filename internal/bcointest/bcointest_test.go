package bcointest

import (
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
)

// TestStartGenerate starts the pinned bcoin, checks that it is bcoin on
// regtest, and mines two blocks with its own miner.
func TestStartGenerate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real bcoin")
	}
	n := Start(t)
	var info struct {
		Subversion string `json:"subversion"`
	}
	if err := n.Call("getnetworkinfo", nil, &info); err != nil {
		t.Fatal(err)
	}
	if info.Subversion != "/bcoin:v1.0.2/" {
		t.Fatalf("subversion %q", info.Subversion)
	}
	best, err := n.BestBlockHash()
	if err != nil || best != *chaincfg.RegressionNetParams.GenesisHash {
		t.Fatalf("best %s %v", best, err)
	}
	hashes := n.Generate(2)
	if best, err = n.BestBlockHash(); err != nil || len(hashes) != 2 || best != hashes[1] {
		t.Fatalf("best %s after generating %v (%v)", best, hashes, err)
	}
	if h, err := n.Height(); err != nil || h != 2 {
		t.Fatalf("height %d %v", h, err)
	}
}
