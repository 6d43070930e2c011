package embedded

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
)

// FuzzSubmitBlock feeds decoded blocks to a regtest node's SubmitBlock:
// whatever a block holds, the node classifies it, never errs and never
// panics. Regtest's trivial target lets random headers pass the proof of
// work check about half the time, so validation runs deep.
func FuzzSubmitBlock(f *testing.F) {
	cfg := testConfig(f)
	cfg.Logger = nil
	n, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(runNode(f, n))
	ctx := testCtx(f)
	mustGenerate(f, n, 3, payoutScript(f, "fuzz"))

	tmpl, err := n.Template(ctx)
	if err != nil {
		f.Fatal(err)
	}
	valid := solveTemplate(f, tmpl, payoutScript(f, "fuzz seed"))
	var buf bytes.Buffer
	if err := valid.Serialize(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	bad := bytes.Clone(buf.Bytes())
	bad[40] ^= 0xff // merkle root
	f.Add(bad)

	f.Fuzz(func(t *testing.T, raw []byte) {
		var b wire.MsgBlock
		if err := b.Deserialize(bytes.NewReader(raw)); err != nil {
			return
		}
		res, err := n.SubmitBlock(ctx, &b)
		if err != nil {
			t.Fatalf("SubmitBlock: %v", err)
		}
		switch res.Status {
		case chain.Accepted:
			if n.BestHash() != b.BlockHash() {
				t.Fatalf("accepted block %s is not the tip %s", b.BlockHash(), n.BestHash())
			}
		case chain.Rejected, chain.Duplicate, chain.Inconclusive:
			if res.Reason == "" {
				t.Fatalf("%v without a reason", res.Status)
			}
		default:
			t.Fatalf("status %v", res.Status)
		}
	})
}
