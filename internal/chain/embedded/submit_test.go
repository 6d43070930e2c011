package embedded

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
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

// TestRejectReasonBIP22 maps btcd's rule error codes to Core's BIP 22
// reasons and checks that chain.BIP22Result, the table the RPC node's
// answers go through, classifies each as the embedded node must report it.
func TestRejectReasonBIP22(t *testing.T) {
	cases := []struct {
		code   blockchain.ErrorCode
		reason string
		status chain.SubmitStatus
	}{
		{blockchain.ErrDuplicateBlock, "duplicate", chain.Duplicate},
		{blockchain.ErrPreviousBlockUnknown, "prev-blk-not-found", chain.Inconclusive},
		{blockchain.ErrPrevBlockNotBest, "inconclusive-not-best-prevblk", chain.Inconclusive},
		{blockchain.ErrHighHash, "high-hash", chain.Rejected},
		{blockchain.ErrBadMerkleRoot, "bad-txnmrklroot", chain.Rejected},
		{blockchain.ErrDifficultyTooLow, "bad-diffbits", chain.Rejected},
		{blockchain.ErrUnexpectedDifficulty, "bad-diffbits", chain.Rejected},
		{blockchain.ErrTimeTooOld, "time-too-old", chain.Rejected},
		{blockchain.ErrTimeTooNew, "time-too-new", chain.Rejected},
		{blockchain.ErrInvalidAncestorBlock, "bad-prevblk", chain.Rejected},
		{blockchain.ErrFirstTxNotCoinbase, "bad-cb-missing", chain.Rejected},
		{blockchain.ErrMultipleCoinbases, "bad-cb-multiple", chain.Rejected},
		{blockchain.ErrBadCoinbaseScriptLen, "bad-cb-length", chain.Rejected},
		{blockchain.ErrBadCoinbaseValue, "bad-cb-amount", chain.Rejected},
		{blockchain.ErrMissingCoinbaseHeight, "bad-cb-height", chain.Rejected},
		{blockchain.ErrBadCoinbaseHeight, "bad-cb-height", chain.Rejected},
		{blockchain.ErrWitnessCommitmentMismatch, "bad-witness-merkle-match", chain.Rejected},
		{blockchain.ErrInvalidWitnessCommitment, "bad-witness-nonce-size", chain.Rejected},
		{blockchain.ErrUnexpectedWitness, "unexpected-witness", chain.Rejected},
		{blockchain.ErrBlockTooBig, "bad-blk-length", chain.Rejected},
		{blockchain.ErrNoTransactions, "bad-blk-length", chain.Rejected},
		{blockchain.ErrBlockWeightTooHigh, "bad-blk-weight", chain.Rejected},
		{blockchain.ErrTooManySigOps, "bad-blk-sigops", chain.Rejected},
		{blockchain.ErrBlockVersionTooOld, "bad-version", chain.Rejected},
		{blockchain.ErrUnfinalizedTx, "bad-txns-nonfinal", chain.Rejected},
		{blockchain.ErrDuplicateTx, "bad-txns-duplicate", chain.Rejected},
		{blockchain.ErrOverwriteTx, "bad-txns-BIP30", chain.Rejected},
		{blockchain.ErrMissingTxOut, "bad-txns-inputs-missingorspent", chain.Rejected},
		{blockchain.ErrImmatureSpend, "bad-txns-premature-spend-of-coinbase", chain.Rejected},
		{blockchain.ErrSpendTooHigh, "bad-txns-in-belowout", chain.Rejected},
		{blockchain.ErrBadFees, "bad-txns-fee-outofrange", chain.Rejected},
		{blockchain.ErrNoTxInputs, "bad-txns-vin-empty", chain.Rejected},
		{blockchain.ErrNoTxOutputs, "bad-txns-vout-empty", chain.Rejected},
		{blockchain.ErrTxTooBig, "bad-txns-oversize", chain.Rejected},
		{blockchain.ErrBadTxOutValue, "bad-txns-vout-toolarge", chain.Rejected},
		{blockchain.ErrDuplicateTxInputs, "bad-txns-inputs-duplicate", chain.Rejected},
		{blockchain.ErrBadTxInput, "bad-txns-prevout-null", chain.Rejected},
		{blockchain.ErrScriptValidation, "mandatory-script-verify-flag-failed", chain.Rejected},
		{blockchain.ErrBadCheckpoint, "checkpoint mismatch", chain.Rejected},
		{blockchain.ErrForkTooOld, "bad-fork-prior-to-checkpoint", chain.Rejected},
		// btcd-only: a sub-second timestamp has no Core reason.
		{blockchain.ErrInvalidTime, "rejected", chain.Rejected},
	}
	for _, c := range cases {
		reason := RejectReason(c.code)
		if reason != c.reason {
			t.Errorf("%v: reason %q, want %q", c.code, reason, c.reason)
		}
		if st := chain.BIP22Result(reason).Status; st != c.status {
			t.Errorf("%v (%q): %v, want %v", c.code, reason, st, c.status)
		}
	}
}
