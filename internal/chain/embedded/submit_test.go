package embedded

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/mempool"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/testutil"
)

// copyBlock returns a deep copy of b.
func copyBlock(t *testing.T, b *wire.MsgBlock) *wire.MsgBlock {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	var c wire.MsgBlock
	if err := c.Deserialize(&buf); err != nil {
		t.Fatal(err)
	}
	return &c
}

// regrind sets b's nonce so that its header meets target again (or, with
// miss, so that it does not).
func regrind(b *wire.MsgBlock, target chain.Target, miss bool) {
	for nonce := uint32(0); ; nonce++ {
		b.Header.Nonce = nonce
		h := b.Header.BlockHash()
		if target.Meets(&h) != miss {
			return
		}
	}
}

// TestSubmitOutcomes covers every SubmitBlock status and the relay hook.
func TestSubmitOutcomes(t *testing.T) {
	cfg := testConfig(t)
	logs := &testutil.SyncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	type hookCall struct {
		hash, tip chainhash.Hash
	}
	var (
		hookMu sync.Mutex
		calls  []hookCall
		node   *Node
	)
	cfg.BeforeValidate = func(b *btcutil.Block) {
		hookMu.Lock()
		defer hookMu.Unlock()
		calls = append(calls, hookCall{*b.Hash(), node.BestHash()})
	}
	n := startNode(t, cfg)
	node = n
	ctx := testCtx(t)
	mustGenerate(t, n, 5, payoutScript(t, "outcomes"))
	hookMu.Lock()
	if len(calls) != 5 {
		t.Errorf("hook called %d times for 5 generated blocks", len(calls))
	}
	calls = nil
	hookMu.Unlock()

	tmpl, err := n.Template(ctx)
	if err != nil {
		t.Fatal(err)
	}
	parent := n.BestHash()
	valid := solveTemplate(t, tmpl, payoutScript(t, "a"))
	target := chain.NewTarget(tmpl.Target())

	// A bad merkle root, with valid proof of work.
	bad := copyBlock(t, valid)
	bad.Header.MerkleRoot[0] ^= 1
	regrind(bad, target, false)
	res := submit(t, n, bad, chain.Rejected)
	if !strings.HasPrefix(res.Reason, "bad-txnmrklroot: ") {
		t.Errorf("bad merkle root reason %q", res.Reason)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), bad.BlockHash().String()) {
		t.Errorf("rejection not logged at error level with the block hash:\n%s", logs.String())
	}

	// Not enough proof of work.
	weak := copyBlock(t, valid)
	regrind(weak, target, true)
	if res := submit(t, n, weak, chain.Rejected); !strings.HasPrefix(res.Reason, "high-hash: ") {
		t.Errorf("high hash reason %q", res.Reason)
	}
	if n.BestHash() != parent {
		t.Fatal("a rejected block moved the tip")
	}

	submit(t, n, valid, chain.Accepted)
	if res := submit(t, n, valid, chain.Duplicate); res.Reason != ReasonDuplicate {
		t.Errorf("duplicate reason %q", res.Reason)
	}

	// Same parent, other coinbase: a side chain.
	side := solveTemplate(t, tmpl, payoutScript(t, "b"))
	if res := submit(t, n, side, chain.Inconclusive); res.Reason != ReasonSideChain {
		t.Errorf("side chain reason %q", res.Reason)
	}
	if res := submit(t, n, side, chain.Duplicate); res.Reason != ReasonDuplicateNotBest {
		t.Errorf("duplicate side block reason %q", res.Reason)
	}

	// Unknown parent: an orphan.
	orphanTmpl := *tmpl
	orphanTmpl.PrevHash = chainhash.DoubleHashH([]byte("no such block"))
	orphan := solveTemplate(t, &orphanTmpl, payoutScript(t, "c"))
	if res := submit(t, n, orphan, chain.Inconclusive); res.Reason != ReasonOrphan {
		t.Errorf("orphan reason %q", res.Reason)
	}
	if n.BestHash() != valid.BlockHash() {
		t.Fatal("tip is not the accepted block")
	}

	// The hook saw every block, before validation.
	hookMu.Lock()
	defer hookMu.Unlock()
	want := []hookCall{
		{bad.BlockHash(), parent},
		{weak.BlockHash(), parent},
		{valid.BlockHash(), parent},
		{valid.BlockHash(), valid.BlockHash()},
		{side.BlockHash(), valid.BlockHash()},
		{side.BlockHash(), valid.BlockHash()},
		{orphan.BlockHash(), valid.BlockHash()},
	}
	if len(calls) != len(want) {
		t.Fatalf("hook called %d times, want %d", len(calls), len(want))
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("hook call %d: block %s with tip %s, want %s with tip %s",
				i, calls[i].hash, calls[i].tip, want[i].hash, want[i].tip)
		}
	}
}

func TestSubmitMalformed(t *testing.T) {
	n := startNode(t, testConfig(t))
	ctx := testCtx(t)
	for name, b := range map[string]*wire.MsgBlock{
		"nil block":  nil,
		"nil tx":     {Transactions: []*wire.MsgTx{nil}},
		"nil input":  {Transactions: []*wire.MsgTx{{TxIn: []*wire.TxIn{nil}}}},
		"nil output": {Transactions: []*wire.MsgTx{{TxOut: []*wire.TxOut{nil}}}},
	} {
		if _, err := n.SubmitBlock(ctx, b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	if err := n.SubmitTx(ctx, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("nil tx: %v", err)
	}
	// A block without transactions is a rule violation, not a crash.
	res, err := n.SubmitBlock(ctx, &wire.MsgBlock{Header: wire.BlockHeader{Bits: 0x207fffff}})
	if err != nil || res.Status != chain.Rejected {
		t.Errorf("empty block: %v %v", res, err)
	}
}

func TestSubmitTxRejected(t *testing.T) {
	n := startNode(t, testConfig(t))
	ctx := testCtx(t)
	mustGenerate(t, n, 1, payoutScript(t, "txrej"))

	// Spends an output that does not exist; orphans are not accepted.
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{1}, 0), nil, nil))
	tx.AddTxOut(wire.NewTxOut(1000, payoutScript(t, "dest")))
	err := n.SubmitTx(ctx, tx)
	var rerr mempool.RuleError
	if !errors.Is(err, ErrTxRejected) || !errors.As(err, &rerr) {
		t.Fatalf("SubmitTx: %v, want ErrTxRejected wrapping a mempool.RuleError", err)
	}

	// Spends the immature coinbase of block 1.
	b, err := n.Chain().BlockByHeight(1)
	if err != nil {
		t.Fatal(err)
	}
	tx2 := wire.NewMsgTx(2)
	tx2.AddTxIn(wire.NewTxIn(wire.NewOutPoint(b.Transactions()[0].Hash(), 0), nil, nil))
	tx2.AddTxOut(wire.NewTxOut(1000, payoutScript(t, "dest")))
	if err := n.SubmitTx(ctx, tx2); !errors.Is(err, ErrTxRejected) {
		t.Fatalf("immature spend: %v", err)
	}
	if n.Mempool().Count() != 0 {
		t.Fatal("mempool not empty")
	}
}
