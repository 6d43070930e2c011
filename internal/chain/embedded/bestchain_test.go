package embedded

import (
	"errors"
	"testing"

	"github.com/stratumd/stratumd/internal/chain"
)

// TestBestChains: the node's best height and best-chain blocks; a
// side-chain block is not at its height; after Close the answer fails.
func TestBestChains(t *testing.T) {
	n := startNode(t, testConfig(t))
	ctx := testCtx(t)
	mustGenerate(t, n, 3, payoutScript(t, "best"))
	tmpl, err := n.Template(ctx)
	if err != nil {
		t.Fatal(err)
	}
	valid := solveTemplate(t, tmpl, payoutScript(t, "a"))
	side := solveTemplate(t, tmpl, payoutScript(t, "b"))
	submit(t, n, valid, chain.Accepted)
	submit(t, n, side, chain.Inconclusive)

	ncs := n.BestChains(ctx, []int32{4, 5, 2, 4})
	if len(ncs) != 1 || ncs[0].Err != nil || ncs[0].Node != NodeName || ncs[0].Height != 4 || len(ncs[0].Hashes) != 2 {
		t.Fatalf("best chains %+v", ncs)
	}
	nc := ncs[0]
	if !nc.Has(valid.BlockHash(), 4) || nc.Has(side.BlockHash(), 4) {
		t.Fatalf("height 4: %v", nc.Hashes[4])
	}
	h2, err := n.Chain().BlockHashByHeight(2)
	if err != nil || !nc.Has(*h2, 2) {
		t.Fatalf("height 2: %v (%v)", nc.Hashes[2], err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if nc := n.BestChains(ctx, []int32{1})[0]; !errors.Is(nc.Err, chain.ErrClosed) {
		t.Fatalf("after Close: %+v", nc)
	}
}
