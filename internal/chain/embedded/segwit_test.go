package embedded

import (
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
)

// segwitFee is the fee of the test's segwit spend, in satoshis.
const segwitFee = 10000

// TestSegwitSpend pre-mines regtest to segwit activation, spends a matured
// P2WPKH coinbase with a signed segwit transaction through the mempool into
// a block built with chain.NewJob (witness commitment), then reorganizes
// that block away and checks the transaction returns to the mempool and is
// mined again.
func TestSegwitSpend(t *testing.T) {
	n := startNode(t, testConfig(t))
	ctx := testCtx(t)
	params := n.Params()
	priv, pub := testKey("segwit owner")
	ownerScript := p2wpkh(t, pub)
	otherScript := payoutScript(t, "segwit miner")

	// Height 1 pays the key; 429 more reach height 430.
	mustGenerate(t, n, 1, ownerScript)
	mustGenerate(t, n, 429, otherScript)
	if state, err := n.Chain().ThresholdState(chaincfg.DeploymentSegwit); err != nil || state != blockchain.ThresholdLockedIn {
		t.Fatalf("segwit state for block 431: %v, %v; want locked in", state, err)
	}
	signal, err := n.Chain().BlockByHeight(200)
	if err != nil {
		t.Fatal(err)
	}
	if v := signal.MsgBlock().Header.Version; v&(1<<params.Deployments[chaincfg.DeploymentSegwit].BitNumber) == 0 {
		t.Errorf("block 200 version %08x does not signal segwit", v)
	}
	mustGenerate(t, n, 1, otherScript)
	if state, err := n.Chain().ThresholdState(chaincfg.DeploymentSegwit); err != nil || state != blockchain.ThresholdActive {
		t.Fatalf("segwit state for block 432: %v, %v; want active", state, err)
	}
	for _, h := range []int32{1, 2, 144, 288, 431} {
		checkCoinbase(t, n, h, map[bool][]byte{true: ownerScript, false: otherScript}[h == 1])
	}

	// Spend the height-1 coinbase (matured: 431 >= 1 + 100).
	cb, err := n.Chain().BlockByHeight(1)
	if err != nil {
		t.Fatal(err)
	}
	prevOut := cb.Transactions()[0].MsgTx().TxOut[0]
	_, destPub := testKey("segwit destination")
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(cb.Transactions()[0].Hash(), 0), nil, nil))
	tx.AddTxOut(wire.NewTxOut(prevOut.Value-segwitFee, p2wpkh(t, destPub)))
	fetcher := txscript.NewCannedPrevOutputFetcher(prevOut.PkScript, prevOut.Value)
	witness, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), 0,
		prevOut.Value, prevOut.PkScript, txscript.SigHashAll, priv, true)
	if err != nil {
		t.Fatal(err)
	}
	tx.TxIn[0].Witness = witness
	txid := tx.TxHash()

	drainUpdates(n)
	if err := n.SubmitTx(ctx, tx); err != nil {
		t.Fatalf("SubmitTx: %v", err)
	}
	if u := nextUpdate(t, n); u.Kind != chain.MempoolChanged || u.Height != 431 || u.Tip != n.BestHash() {
		t.Fatalf("update after SubmitTx: %+v", u)
	}
	if err := n.SubmitTx(ctx, tx); err == nil {
		t.Error("the same transaction was accepted twice")
	}

	tmpl, err := n.Template(ctx)
	if err != nil {
		t.Fatal(err)
	}
	subsidy := blockchain.CalcBlockSubsidy(432, params)
	if len(tmpl.Transactions) != 1 || *tmpl.Transactions[0].Hash() != txid || !tmpl.HasWitness() {
		t.Fatalf("template carries %d transactions (witness %v), want the segwit spend",
			len(tmpl.Transactions), tmpl.HasWitness())
	}
	if tmpl.Fees[0] != segwitFee || tmpl.CoinbaseValue != subsidy+segwitFee || tmpl.SigOpCosts[0] != 1 {
		t.Errorf("fee %d, coinbase value %d, sigop cost %d; want %d, %d, 1",
			tmpl.Fees[0], tmpl.CoinbaseValue, tmpl.SigOpCosts[0], segwitFee, subsidy+segwitFee)
	}
	minerScript := payoutScript(t, "pool")
	block := solveTemplate(t, tmpl, minerScript)
	if n := len(block.Transactions[0].TxOut); n != 2 {
		t.Fatalf("coinbase has %d outputs, want payout and witness commitment", n)
	}
	submit(t, n, block, chain.Accepted)
	mined, err := n.Chain().BlockByHeight(432)
	if err != nil {
		t.Fatal(err)
	}
	if *mined.Hash() != block.BlockHash() || len(mined.Transactions()) != 2 ||
		*mined.Transactions()[1].Hash() != txid || !mined.Transactions()[1].HasWitness() {
		t.Fatal("block 432 does not hold the segwit spend")
	}
	if err := n.SyncMempool(ctx); err != nil {
		t.Fatal(err)
	}
	if c := n.Mempool().Count(); c != 0 {
		t.Fatalf("mempool holds %d transactions after the block", c)
	}

	// A competing empty block at 432 and a child on it: the chain
	// reorganizes and the spend goes back to the mempool.
	empty := *tmpl
	empty.Transactions, empty.Fees, empty.SigOpCosts = nil, nil, nil
	empty.CoinbaseValue = subsidy
	fork := solveTemplate(t, &empty, otherScript)
	if res := submit(t, n, fork, chain.Inconclusive); res.Reason != ReasonSideChain {
		t.Fatalf("fork block reason %q", res.Reason)
	}
	child := solveTemplate(t, &chain.Template{
		Height:        433,
		PrevHash:      fork.BlockHash(),
		Version:       tmpl.Version,
		Bits:          tmpl.Bits,
		MinTime:       tmpl.MinTime,
		CurTime:       tmpl.CurTime.Add(time.Second),
		CoinbaseValue: blockchain.CalcBlockSubsidy(433, params),
	}, otherScript)
	drainUpdates(n)
	submit(t, n, child, chain.Accepted)
	if u := nextUpdate(t, n); u.Kind != chain.NewTip || u.Height != 433 || u.Tip != child.BlockHash() {
		t.Fatalf("update after reorg: %+v", u)
	}
	if n.Chain().MainChainHasBlock(mined.Hash()) {
		t.Fatal("the spend's block is still in the best chain")
	}
	if err := n.SyncMempool(ctx); err != nil {
		t.Fatal(err)
	}
	if !n.Mempool().IsTransactionInPool(&txid) {
		t.Fatal("the reorganized-away spend did not return to the mempool")
	}
	if res := submit(t, n, block, chain.Duplicate); res.Reason != ReasonDuplicateNotBest {
		t.Errorf("resubmitted side block reason %q", res.Reason)
	}

	tmpl2, err := n.Template(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl2.Height != 434 || len(tmpl2.Transactions) != 1 || *tmpl2.Transactions[0].Hash() != txid {
		t.Fatalf("template after reorg: height %d, %d transactions", tmpl2.Height, len(tmpl2.Transactions))
	}
	if tmpl2.Transactions[0] == tmpl.Transactions[0] {
		t.Error("templates share a *btcutil.Tx wrapper")
	}
	submit(t, n, solveTemplate(t, tmpl2, minerScript), chain.Accepted)
	if err := n.SyncMempool(ctx); err != nil {
		t.Fatal(err)
	}
	if c := n.Mempool().Count(); c != 0 {
		t.Fatalf("mempool holds %d transactions after mining the spend again", c)
	}
}
