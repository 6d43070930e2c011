package embedded

import (
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
)

// headerFirstNode is a running regtest node with header-first on, a few
// blocks mined and a full template built on its tip (HeaderFirst needs
// one), with no update pending.
func headerFirstNode(t *testing.T, timeout time.Duration) (*Node, *chain.Template, []byte) {
	t.Helper()
	cfg := testConfig(t)
	cfg.HeaderFirst = true
	cfg.HeaderFirstTimeout = timeout
	n := startNode(t, cfg)
	script := payoutScript(t, "header-first")
	mustGenerate(t, n, 12, script)
	tmpl, err := n.Template(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	drainUpdates(n)
	return n, tmpl, script
}

// wantUpdate checks that the next update is kind on tip.
func wantUpdate(t *testing.T, n *Node, kind chain.UpdateKind, tip chainhash.Hash) {
	t.Helper()
	if u := nextUpdate(t, n); u.Kind != kind || u.Tip != tip {
		t.Fatalf("update %v on %s, want %v on %s", u.Kind, u.Tip, kind, tip)
	}
}

// regrindFor sets b's nonce again after its header changed, so that its
// proof of work is valid (pow) or too weak (!pow).
func regrindFor(b *wire.MsgBlock, pow bool) {
	regrind(b, chain.NewTarget(blockchain.CompactToBig(b.Header.Bits)), !pow)
}

func TestHeaderFirstSwitchesThenConnects(t *testing.T) {
	n, tmpl, script := headerFirstNode(t, time.Minute)
	block := solveTemplate(t, tmpl, script)
	hash := block.BlockHash()

	done := n.HeaderFirst(btcutil.NewBlock(block))
	wantUpdate(t, n, chain.NewTip, hash)
	empty, err := n.Template(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if empty.PrevHash != hash || empty.Height != tmpl.Height+1 || len(empty.Transactions) != 0 ||
		empty.CoinbaseValue != blockchain.CalcBlockSubsidy(empty.Height, n.params) ||
		empty.Bits != tmpl.Bits || empty.Version != tmpl.Version {
		t.Fatalf("empty template %+v on a block at height %d", empty, tmpl.Height)
	}
	if !empty.MinTime.After(block.Header.Timestamp.Add(-time.Hour)) || empty.CurTime.Before(empty.MinTime) {
		t.Fatalf("empty template times min %v cur %v", empty.MinTime, empty.CurTime)
	}

	// The chain connects the block; a block mined on the empty template
	// is then valid (height, bits, time and value were right).
	submit(t, n, block, chain.Accepted)
	done()
	full, err := n.Template(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if full.PrevHash != hash || full.Height != empty.Height {
		t.Fatalf("full template on %s height %d, want %s %d", full.PrevHash, full.Height, hash, empty.Height)
	}
	submit(t, n, solveTemplate(t, empty, script), chain.Accepted)
	if s := n.HeaderFirstStats(); s.Switched != 1 || s.Connected != 1 || s.Reverted+s.TimedOut+s.Skipped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestHeaderFirstInvalidBlockGoesBack(t *testing.T) {
	n, tmpl, script := headerFirstNode(t, time.Minute)
	block := solveTemplate(t, tmpl, script)
	block.Header.MerkleRoot[0] ^= 1 // a valid header, an invalid block
	regrindFor(block, true)

	done := n.HeaderFirst(btcutil.NewBlock(block))
	wantUpdate(t, n, chain.NewTip, block.BlockHash())
	res, err := n.SubmitBlock(testCtx(t), block)
	if err != nil || res.Status != chain.Rejected {
		t.Fatalf("SubmitBlock = %+v, %v; want rejected", res, err)
	}
	done()
	wantUpdate(t, n, chain.NewTip, tmpl.PrevHash)
	back, err := n.Template(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if back.PrevHash != tmpl.PrevHash || back.Height != tmpl.Height {
		t.Fatalf("template on %s height %d after the revert, want the old tip %s", back.PrevHash, back.Height, tmpl.PrevHash)
	}
	if s := n.HeaderFirstStats(); s.Switched != 1 || s.Reverted != 1 || s.Connected != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestHeaderFirstTimeoutGoesBack(t *testing.T) {
	n, tmpl, script := headerFirstNode(t, 50*time.Millisecond)
	block := solveTemplate(t, tmpl, script)

	done := n.HeaderFirst(btcutil.NewBlock(block))
	wantUpdate(t, n, chain.NewTip, block.BlockHash())
	// Never processed: the timeout sends miners back to the last full
	// template on the old tip.
	wantUpdate(t, n, chain.NewTip, tmpl.PrevHash)
	back, err := n.Template(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if back.PrevHash != tmpl.PrevHash || back.Height != tmpl.Height || back.CoinbaseValue != tmpl.CoinbaseValue {
		t.Fatalf("template after the timeout %+v, want the last full one %+v", back, tmpl)
	}
	if s := n.HeaderFirstStats(); s.TimedOut != 1 {
		t.Fatalf("stats %+v", s)
	}
	// Processed after all: a fresh template is owed.
	submit(t, n, block, chain.Accepted)
	done()
	if u := nextUpdate(t, n); u.Tip != block.BlockHash() {
		t.Fatalf("update %+v after the block connected", u)
	}
	if s := n.HeaderFirstStats(); s.Connected != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestHeaderFirstSkips(t *testing.T) {
	n, tmpl, script := headerFirstNode(t, time.Minute)
	good := solveTemplate(t, tmpl, script)
	variant := func(change func(b *wire.MsgBlock), pow bool) *wire.MsgBlock {
		b := good.Copy()
		change(b)
		regrindFor(b, pow)
		return b
	}
	cases := []struct {
		name    string
		block   *wire.MsgBlock
		skipped uint64 // counted in Stats.Skipped
	}{
		{"not on the tip", variant(func(b *wire.MsgBlock) { b.Header.PrevBlock[0] ^= 1 }, true), 0},
		{"wrong bits", variant(func(b *wire.MsgBlock) { b.Header.Bits = 0x207ffff0 }, true), 1},
		{"proof of work too weak", variant(func(*wire.MsgBlock) {}, false), 1},
		{"time not past the median", variant(func(b *wire.MsgBlock) { b.Header.Timestamp = time.Unix(1296688602, 0) }, true), 1},
		{"time too far ahead", variant(func(b *wire.MsgBlock) { b.Header.Timestamp = time.Now().Add(3 * time.Hour).Truncate(time.Second) }, true), 1},
	}
	var skipped uint64
	for _, c := range cases {
		done := n.HeaderFirst(btcutil.NewBlock(c.block))
		done()
		skipped += c.skipped
		select {
		case u := <-n.Updates():
			t.Fatalf("%s: update %+v", c.name, u)
		default:
		}
		if s := n.HeaderFirstStats(); s.Switched != 0 || s.Skipped != skipped {
			t.Fatalf("%s: stats %+v, want %d skipped", c.name, s, skipped)
		}
	}

	// One block deep at most: a second block while one is pending is not
	// used.
	done := n.HeaderFirst(btcutil.NewBlock(good))
	wantUpdate(t, n, chain.NewTip, good.BlockHash())
	other := variant(func(b *wire.MsgBlock) { b.Header.Timestamp = b.Header.Timestamp.Add(time.Second) }, true)
	n.HeaderFirst(btcutil.NewBlock(other))()
	if s := n.HeaderFirstStats(); s.Switched != 1 || s.Skipped != skipped+1 {
		t.Fatalf("second pending block: stats %+v", s)
	}
	done()

	// Off: nothing happens.
	cfg := testConfig(t)
	off := startNode(t, cfg)
	mustGenerate(t, off, 1, script)
	offTmpl, err := off.Template(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	drainUpdates(off)
	off.HeaderFirst(btcutil.NewBlock(solveTemplate(t, offTmpl, script)))()
	select {
	case u := <-off.Updates():
		t.Fatalf("header-first off: update %+v", u)
	default:
	}
}
