package rpcsource

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/chain"
)

// tipBound is the generous bound on new tip -> Updates asserted against a
// real btcd (the measured latency is logged; it is a few milliseconds).
const tipBound = 2 * time.Second

// startBtcd starts a real btcd (network "regtest" or "simnet") and a Source
// on it.
func startBtcd(t *testing.T, network string) (*btcdtest.Node, *Source) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real btcd")
	}
	n := btcdtest.Start(t, btcdtest.Options{Network: network})
	s := startSource(t, Config{
		Nodes:          []NodeConfig{{URL: "http://" + n.RPCAddr(), User: btcdtest.RPCUser, Pass: btcdtest.RPCPass}},
		Network:        n.Params,
		BackoffMin:     50 * time.Millisecond,
		BackoffMax:     500 * time.Millisecond,
		RequestTimeout: 10 * time.Second,
	})
	waitUpdate(t, s, "first tip", func(u chain.Update) bool { return u.Kind == chain.NewTip })
	if st := s.Stats(); st.Nodes[0].Kind != KindBtcd || !st.Nodes[0].Healthy {
		t.Fatalf("stats %+v", st)
	}
	return n, s
}

// mineJob fetches a template, builds a job paying key 1 and solves it.
func mineJob(t *testing.T, ctx context.Context, s *Source, id string) (*chain.Job, *wire.MsgBlock) {
	t.Helper()
	tmpl, err := s.Template(ctx)
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	job, err := chain.NewJob(id, tmpl, coinbaseConfig(t))
	if err != nil {
		t.Fatalf("job: %v", err)
	}
	return job, solve(t, job)
}

// bestHash is btcd's best block hash.
func bestHash(t *testing.T, n *btcdtest.Node) chainhash.Hash {
	t.Helper()
	h, err := n.Client().GetBestBlockHash()
	if err != nil {
		t.Fatal(err)
	}
	return *h
}

// TestBtcdMining mines through jobs built from this source's templates on
// a real regtest btcd: accepted (btcd's tip moves, NewTip arrives),
// duplicate on resubmission, rejected with btcd's reason for a bad merkle
// root; and a block from btcd's generate reaches Updates quickly.
func TestBtcdMining(t *testing.T) {
	n, s := startBtcd(t, "regtest")
	ctx := testCtx(t)

	job, block := mineJob(t, ctx, s, "1")
	if job.Template.Height != 1 || job.Template.PrevHash != *n.Params.GenesisHash {
		t.Fatalf("template %d on %s", job.Template.Height, job.Template.PrevHash)
	}
	res, err := s.SubmitBlock(ctx, block)
	if err != nil || res.Status != chain.Accepted {
		t.Fatalf("submit: %+v %v", res, err)
	}
	if u := waitUpdate(t, s, "tip of our block", tipIs(block.BlockHash())); u.Height != 1 {
		t.Fatalf("update %+v", u)
	}
	if best := bestHash(t, n); best != block.BlockHash() {
		t.Fatalf("btcd's tip %s, our block %s", best, block.BlockHash())
	}

	res, err = s.SubmitBlock(ctx, block)
	if err != nil || res.Status != chain.Duplicate {
		t.Fatalf("resubmit: %+v %v", res, err)
	}

	job2, bad := mineJob(t, ctx, s, "2")
	bad.Header.MerkleRoot[0] ^= 1
	regrind(t, bad, job2.Target)
	res, err = s.SubmitBlock(ctx, bad)
	if err != nil || res.Status != chain.Rejected || !strings.Contains(res.Reason, "merkle root") {
		t.Fatalf("bad merkle root: %+v %v", res, err)
	}
	if best := bestHash(t, n); best != block.BlockHash() {
		t.Fatalf("btcd's tip moved to %s", best)
	}

	for i := range 5 {
		start := time.Now()
		hashes := n.Generate(1)
		u := waitUpdate(t, s, "tip of generated block", tipIs(*hashes[0]))
		d := time.Since(start)
		if u.Height != int32(2+i) {
			t.Fatalf("update %+v", u)
		}
		if d > tipBound {
			t.Fatalf("generate -> NewTip took %v", d)
		}
		t.Logf("generate -> NewTip %v", d)
	}
	if st := s.Stats(); st.Outages != 0 || st.TemplateErrors != 0 || st.InvalidReplies != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestBtcdSegwitSpend mines regtest to segwit activation (431 blocks: the
// BIP 9 deployment is active for block 432), then sends btcd a P2WPKH spend
// of a matured coinbase (signed with key 1): MempoolChanged arrives, the next template carries
// the transaction with its witness and fee, and the block mined through a
// job (whose coinbase carries the witness commitment and, from
// chain.Job.Block, the witness reserved value btcd's submitblock does not
// add) is accepted.
func TestBtcdSegwitSpend(t *testing.T) {
	n, s := startBtcd(t, "regtest")
	ctx := testCtx(t)
	const tipHeight = 431
	hashes := n.Generate(tipHeight)
	waitUpdate(t, s, "tip before activation", tipIs(*hashes[tipHeight-1]))

	blk1, err := n.Client().GetBlock(hashes[0])
	if err != nil {
		t.Fatal(err)
	}
	const fee = 10000
	tx := spendKeyOne(t, blk1.Transactions[0], fee)
	txid, err := n.Client().SendRawTransaction(tx, false)
	if err != nil {
		t.Fatalf("sendrawtransaction: %v", err)
	}
	waitUpdate(t, s, "mempool change", func(u chain.Update) bool {
		return u.Kind == chain.MempoolChanged && u.Tip == *hashes[tipHeight-1] && u.Height == tipHeight
	})

	job, block := mineJob(t, ctx, s, "segwit")
	tmpl := job.Template
	i := slices.IndexFunc(tmpl.Transactions, func(x *btcutil.Tx) bool { return *x.Hash() == *txid })
	if i < 0 || !tmpl.HasWitness() || tmpl.Fees == nil || tmpl.Fees[i] != fee {
		t.Fatalf("template of %d transactions, spend at %d, fees %v", len(tmpl.Transactions), i, tmpl.Fees)
	}
	if job.WitnessCommitment == nil {
		t.Fatal("job without witness commitment")
	}
	res, err := s.SubmitBlock(ctx, block)
	if err != nil || res.Status != chain.Accepted {
		t.Fatalf("submit: %+v %v", res, err)
	}
	waitUpdate(t, s, "tip of the segwit block", tipIs(block.BlockHash()))
	stored, err := n.Client().GetBlock(ptr(block.BlockHash()))
	if err != nil {
		t.Fatal(err)
	}
	w := stored.Transactions[0].TxIn[0].Witness
	if len(stored.Transactions) != 2 || stored.Transactions[1].TxHash() != *txid ||
		len(w) != 1 || len(w[0]) != 32 || !stored.Transactions[1].HasWitness() {
		t.Fatalf("btcd stored %d transactions, coinbase witness %x", len(stored.Transactions), w)
	}
}

func ptr[T any](v T) *T { return &v }

// spendKeyOne returns a transaction spending output 0 of prevTx, a P2WPKH
// of key 1 (payoutScript), back to the same script less fee, signed with
// key 1 (a witness spend).
func spendKeyOne(t *testing.T, prevTx *wire.MsgTx, fee int64) *wire.MsgTx {
	t.Helper()
	prev := prevTx.TxOut[0]
	var secret [32]byte
	secret[31] = 1
	key, _ := btcec.PrivKeyFromBytes(secret[:])
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(ptr(prevTx.TxHash()), 0), nil, nil))
	tx.AddTxOut(wire.NewTxOut(prev.Value-fee, payoutScript(t)))
	fetcher := txscript.NewCannedPrevOutputFetcher(prev.PkScript, prev.Value)
	wit, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), 0, prev.Value,
		prev.PkScript, txscript.SigHashAll, key, true)
	if err != nil {
		t.Fatal(err)
	}
	tx.TxIn[0].Witness = wit
	return tx
}

// TestBtcdBestChains asks a real btcd which blocks are in its best chain:
// a block submitted through the source is at its height, a competing block
// at the same height is not, heights above the tip are absent; a second
// configured node that is down has Err while the first still answers.
func TestBtcdBestChains(t *testing.T) {
	n, s := startBtcd(t, "regtest")
	ctx := testCtx(t)
	n.Generate(2)
	_, block := mineJob(t, ctx, s, "1")
	side := wire.NewMsgBlock(&block.Header)
	for _, tx := range block.Transactions {
		side.AddTransaction(tx.Copy())
	}
	side.Transactions[0].TxIn[0].SignatureScript = append(side.Transactions[0].TxIn[0].SignatureScript, 0x51)
	side.Header.MerkleRoot = blockchain.CalcMerkleRoot([]*btcutil.Tx{btcutil.NewTx(side.Transactions[0])}, false)
	regrind(t, side, chain.NewTarget(blockchain.CompactToBig(side.Header.Bits)))
	if res, err := s.SubmitBlock(ctx, block); err != nil || res.Status != chain.Accepted {
		t.Fatalf("submit: %+v %v", res, err)
	}
	// btcd answers null for a side-chain block too (Core: "inconclusive").
	if res, err := s.SubmitBlock(ctx, side); err != nil || res.Status != chain.Accepted {
		t.Fatalf("submit the competing block: %+v %v", res, err)
	}
	ncs := s.BestChains(ctx, []int32{3, 1, 4})
	if len(ncs) != 1 || ncs[0].Err != nil || ncs[0].Height != 3 || len(ncs[0].Hashes) != 2 {
		t.Fatalf("best chains %+v", ncs)
	}
	nc := ncs[0]
	if !nc.Has(block.BlockHash(), 3) || nc.Has(side.BlockHash(), 3) {
		t.Fatalf("height 3: %v; ours %v, competing %v", nc.Hashes[3], block.BlockHash(), side.BlockHash())
	}
	h1, err := n.Client().GetBlockHash(1)
	if err != nil || !nc.Has(*h1, 1) {
		t.Fatalf("height 1: %v, btcd %v (%v)", nc.Hashes[1], h1, err)
	}
	if nc.Node != "http://"+n.RPCAddr() {
		t.Errorf("node name %q", nc.Node)
	}

	// Two nodes, the second down: it fails, the first answers.
	two, err := New(Config{Network: n.Params, RequestTimeout: 5 * time.Second, Nodes: []NodeConfig{
		{URL: "http://" + n.RPCAddr(), User: btcdtest.RPCUser, Pass: btcdtest.RPCPass},
		{URL: fmt.Sprintf("http://127.0.0.1:%d", btcdtest.FreePort(t)), User: "u", Pass: "p"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ncs = two.BestChains(ctx, []int32{3})
	if len(ncs) != 2 || !ncs[0].Has(block.BlockHash(), 3) || ncs[1].Err == nil || ncs[1].Has(block.BlockHash(), 3) {
		t.Fatalf("two nodes: %+v", ncs)
	}
	answers, err := two.SubmitBlockEach(ctx, block)
	if err != nil || len(answers) != 2 || answers[0].Err != nil || answers[0].Result.Status != chain.Duplicate || answers[1].Err == nil {
		t.Fatalf("submit to each: %+v %v", answers, err)
	}
}

// TestBtcdKillRestart kills btcd (simnet: the chain persists) while
// Template and SubmitBlock run in a loop, then restarts it: the source
// survives, counts the outage, reconnects by itself, mines again, and
// NewTip arrives from the new connection.
func TestBtcdKillRestart(t *testing.T) {
	n, s := startBtcd(t, "simnet")
	ctx := testCtx(t)

	type report struct {
		status chain.SubmitStatus
		err    error
	}
	reports := make(chan report, 100000)
	loopCtx, stopLoop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		pace := time.NewTicker(10 * time.Millisecond) // paces retries during the outage
		defer pace.Stop()
		for id := 0; loopCtx.Err() == nil; id++ {
			r := report{}
			tmpl, err := s.Template(loopCtx)
			if err == nil {
				job, jerr := chain.NewJob("k", tmpl, coinbaseConfig(t))
				if jerr != nil {
					t.Errorf("job: %v", jerr)
					return
				}
				var res chain.SubmitResult
				res, err = s.SubmitBlock(loopCtx, solve(t, job))
				r.status = res.Status
			}
			r.err = err
			reports <- r
			if err != nil {
				select {
				case <-pace.C:
				case <-loopCtx.Done():
				}
			}
		}
	})
	defer func() { stopLoop(); wg.Wait() }()
	wait := func(what string, ok func(report) bool) {
		t.Helper()
		for {
			select {
			case r := <-reports:
				if ok(r) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %s (stats %+v)", what, s.Stats())
			}
		}
	}
	accepted := func(r report) bool { return r.err == nil && r.status == chain.Accepted }
	for range 3 {
		wait("accepted block", accepted)
	}

	killed := time.Now()
	n.Kill()
	wait("failure while btcd is down", func(r report) bool { return r.err != nil })
	n.Restart()
	wait("accepted block after restart", accepted)
	t.Logf("killed -> mining again in %v", time.Since(killed))
	stopLoop()
	wg.Wait()

	st := s.Stats()
	if st.Outages < 1 || st.Reconnects < 1 || !st.Nodes[0].Healthy || st.TemplateErrors < 1 {
		t.Fatalf("stats %+v", st)
	}
	hashes := n.Generate(1)
	waitUpdate(t, s, "tip after restart", tipIs(*hashes[0]))
}

// TestTipLatency measures, over latencyBlocks blocks of btcd's generate,
// new tip -> Updates signal readable in RPC mode (websocket notification),
// and update -> template (getblocktemplate over HTTP). The reference is
// the generate call: its start (the span then includes btcd building and
// mining the block) and its return (btcd replies once the block is
// connected; the notification travels on the websocket at the same time
// and is usually readable already). Run with -v for the numbers.
func TestTipLatency(t *testing.T) {
	const latencyBlocks = 50
	n, s := startBtcd(t, "regtest")
	ctx := testCtx(t)

	var fromCall, fromReturn, toTemplate []time.Duration
	for i := range latencyBlocks {
		start := time.Now()
		hashes := n.Generate(1)
		returned := time.Now()
		u := waitUpdate(t, s, "generated tip", tipIs(*hashes[0]))
		got := time.Now()
		tmpl, err := s.Template(ctx)
		if err != nil || tmpl.PrevHash != *hashes[0] {
			t.Fatalf("block %d: template %v, %v", i+1, tmpl, err)
		}
		built := time.Now()
		if u.Height != int32(i+1) {
			t.Fatalf("update %+v", u)
		}
		if got.Sub(returned) > tipBound {
			t.Fatalf("block %d: update %v after generate returned", i+1, got.Sub(returned))
		}
		fromCall = append(fromCall, got.Sub(start))
		fromReturn = append(fromReturn, got.Sub(returned))
		toTemplate = append(toTemplate, built.Sub(got))
	}
	t.Logf("over %d blocks: generate call -> update %s; generate return -> update %s; update -> template %s",
		latencyBlocks, summarize(fromCall), summarize(fromReturn), summarize(toTemplate))
}

// summarize returns the median, 90th percentile and maximum of ds.
func summarize(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return "p50 " + s[len(s)/2].String() + " p90 " + s[len(s)*9/10].String() + " max " + s[len(s)-1].String()
}
