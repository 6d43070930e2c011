package stratumtest_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/stratum/stratumtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestPool mines against a Pool with the in-repo miner: accepted shares are
// recorded as the server accepted them, a block reaches the source and the
// block sink, and Stop sends client.reconnect.
func TestPool(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := stratumtest.Start(t, stratumtest.Config{Bits: 0x1d00ffff}) // shares are not blocks
	user := stratumtest.Address(1)
	m, err := miner.Dial(ctx, p.Addr, miner.Options{User: user, Workers: []string{"rig"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if d := m.Difficulty(); d != stratumtest.DefaultDifficulty {
		t.Fatalf("difficulty %v", d)
	}

	results, err := m.Mine(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	shares := p.Shares()
	if len(shares) != len(results) {
		t.Fatalf("%d shares recorded, %d mined", len(shares), len(results))
	}
	for i, r := range results {
		s := shares[i]
		if !r.Accepted || s.Username != user || s.Worker != "rig" || s.JobID != r.JobID ||
			s.Difficulty != stratumtest.DefaultDifficulty || s.ShareDifficulty != chain.HashDifficulty(r.Hash) || s.Block != nil {
			t.Fatalf("share %d: result %+v, recorded %+v", i, r, s)
		}
	}

	// A block: regtest's easiest bits on a new tip make every share one.
	p.Source.SetBits(chaintest.DefaultBits)
	tip := p.Source.Advance()
	if _, err := m.WaitEvent(ctx, func(e miner.Event) bool { return e.Job != nil && e.Job.PrevHash == tip }); err != nil {
		t.Fatal(err)
	}
	rs, err := m.Mine(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	block := rs[0]
	if !block.Accepted || !block.MeetsNetwork {
		t.Fatalf("block share %+v", block)
	}
	if sub := p.Source.Submitted(); len(sub) != 1 || sub[0].BlockHash() != block.Hash {
		t.Fatalf("source got %d blocks, want the share's %v", len(sub), block.Hash)
	}
	shares = p.Shares()
	if s := shares[len(shares)-1]; s.Block == nil || s.Block.Hash != block.Hash {
		t.Fatalf("block share recorded as %+v", s)
	}

	p.Stop() // waits for the block's row
	if b := p.Blocks(); len(b) != 1 || b[0].Hash != block.Hash.String() || b[0].Username != user ||
		b[0].Worker != "rig" || b[0].Status != store.BlockSubmitted || b[0].LastShare.Seq != uint64(len(shares)) {
		t.Fatalf("blocks %+v", b)
	}
	rc, err := m.WaitReconnect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != "" {
		t.Fatalf("shutdown reconnect %+v", rc)
	}
	<-m.Done()
}
