package btcdtest

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestNodeGeneratesAndRestarts(t *testing.T) {
	n := Start(t, Options{Network: "simnet"})
	hashes := n.Generate(5)
	if len(hashes) != 5 {
		t.Fatalf("generated %d", len(hashes))
	}
	n.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitHeight(ctx, 5); err != nil {
		t.Fatal(err)
	}
	best, err := n.Client().GetBestBlockHash()
	if err != nil || *best != *hashes[4] {
		t.Fatalf("after restart best %v, want %v (%v)", best, hashes[4], err)
	}
}

func TestMiningAddress(t *testing.T) {
	n := Start(t, Options{})
	if a := MiningAddress(n.Params); a != "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080" {
		t.Fatalf("regtest mining address %s", a)
	}
	h := n.Generate(1)
	blk, err := n.Client().GetBlockVerbose(h[0])
	if err != nil || blk.Height != 1 || !strings.Contains(n.Log(), "regtest") {
		t.Fatalf("block %+v, %v", blk, err)
	}
}
