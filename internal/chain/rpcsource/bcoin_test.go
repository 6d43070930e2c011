package rpcsource

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/bcointest"
	"github.com/stratumd/stratumd/internal/chain"
)

// startBcoin starts a real bcoin (regtest, in memory) and a Source on it
// that learns new tips from getblocktemplate long polling alone: the slow
// poll is an hour away and bcoin has no ZMQ.
func startBcoin(t *testing.T) (*bcointest.Node, *Source) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real bcoin")
	}
	n := bcointest.Start(t)
	s := startSource(t, Config{
		Nodes:          []NodeConfig{{URL: "http://" + n.RPCAddr(), User: bcointest.RPCUser, Pass: bcointest.APIKey}},
		Network:        &chaincfg.RegressionNetParams,
		PollInterval:   time.Hour,
		BackoffMin:     50 * time.Millisecond,
		BackoffMax:     500 * time.Millisecond,
		RequestTimeout: 10 * time.Second,
	})
	waitUpdate(t, s, "first tip", tipIs(*chaincfg.RegressionNetParams.GenesisHash))
	// bcoin answers getnetworkinfo like Core: it is driven as a Core node
	// (template long polling for tips).
	if st := s.Stats(); st.Nodes[0].Kind != KindCore || !st.Nodes[0].Healthy {
		t.Fatalf("stats %+v", st)
	}
	return n, s
}

// bcoinBest is bcoin's best block hash.
func bcoinBest(t *testing.T, n *bcointest.Node) chainhash.Hash {
	t.Helper()
	h, err := n.BestBlockHash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestBcoinMining mines through jobs built from this source's templates on
// a real regtest bcoin: accepted (bcoin's tip moves, NewTip arrives through
// the long poll), duplicate on resubmission ("rejected: duplicate"),
// rejected with bcoin's reason for a bad merkle root, inconclusive for a
// block whose parent bcoin lacks ("rejected: bad-prevblk", kept as an
// orphan); and blocks from bcoin's own miner reach Updates through the
// long poll.
func TestBcoinMining(t *testing.T) {
	n, s := startBcoin(t)
	ctx := testCtx(t)

	job, block := mineJob(t, ctx, s, "1")
	if job.Template.Height != 1 || job.Template.PrevHash != *chaincfg.RegressionNetParams.GenesisHash {
		t.Fatalf("template %d on %s", job.Template.Height, job.Template.PrevHash)
	}
	res, err := s.SubmitBlock(ctx, block)
	if err != nil || res.Status != chain.Accepted {
		t.Fatalf("submit: %+v %v\n%s", res, err, n.Log())
	}
	if u := waitUpdate(t, s, "tip of our block", tipIs(block.BlockHash())); u.Height != 1 {
		t.Fatalf("update %+v", u)
	}
	if best := bcoinBest(t, n); best != block.BlockHash() {
		t.Fatalf("bcoin's tip %s, our block %s", best, block.BlockHash())
	}

	res, err = s.SubmitBlock(ctx, block)
	if err != nil || res.Status != chain.Duplicate || res.Reason != "duplicate" {
		t.Fatalf("resubmit: %+v %v", res, err)
	}

	job2, bad := mineJob(t, ctx, s, "2")
	bad.Header.MerkleRoot[0] ^= 1
	regrind(t, bad, job2.Target)
	res, err = s.SubmitBlock(ctx, bad)
	if err != nil || res.Status != chain.Rejected || res.Reason != "bad-txnmrklroot" {
		t.Fatalf("bad merkle root: %+v %v", res, err)
	}

	orphan := *block
	orphan.Header.PrevBlock = hashOf(7)
	regrind(t, &orphan, job2.Target)
	res, err = s.SubmitBlock(ctx, &orphan)
	if err != nil || res.Status != chain.Inconclusive || res.Reason != "bad-prevblk" {
		t.Fatalf("orphan: %+v %v", res, err)
	}
	if best := bcoinBest(t, n); best != block.BlockHash() {
		t.Fatalf("bcoin's tip moved to %s", best)
	}

	for i := range 3 {
		start := time.Now()
		hashes := n.Generate(1)
		u := waitUpdate(t, s, "tip of generated block", tipIs(hashes[0]))
		if u.Height != int32(2+i) {
			t.Fatalf("update %+v", u)
		}
		t.Logf("bcoin generate -> NewTip (long poll) %v", time.Since(start))
	}
	if st := s.Stats(); st.Outages != 0 || st.TemplateErrors != 0 || st.InvalidReplies != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestBcoinSegwitSpend: a block mined through a job pays key 1's P2WPKH;
// bcoin's miner takes the chain to segwit activation (BIP 9 on bcoin's
// regtest: active from block 432); a P2WPKH spend of that coinbase goes to
// bcoin's mempool. bcoin caches its template and rebuilds it on a new tip
// (or on a transaction more than 10 s after the last rebuild), so a block
// found on the old template comes first; the template after it carries
// the spend with its witness and fee and a default_witness_commitment
// that our own commitment matches, and the block mined from it is
// accepted with the witness intact.
func TestBcoinSegwitSpend(t *testing.T) {
	n, s := startBcoin(t)
	ctx := testCtx(t)

	_, first := mineJob(t, ctx, s, "first")
	if res, err := s.SubmitBlock(ctx, first); err != nil || res.Status != chain.Accepted {
		t.Fatalf("submit: %+v %v", res, err)
	}
	hashes := n.Generate(431)
	waitUpdate(t, s, "tip at 432", tipIs(hashes[len(hashes)-1]))

	if cb := first.Transactions[0]; !bytes.Equal(cb.TxOut[0].PkScript, payoutScript(t)) {
		t.Fatalf("coinbase output 0 pays %x", cb.TxOut[0].PkScript)
	}
	const fee = 10000
	tx := spendKeyOne(t, first.Transactions[0], fee)
	var raw bytes.Buffer
	if err := tx.Serialize(&raw); err != nil {
		t.Fatal(err)
	}
	var txid string
	if err := n.Call("sendrawtransaction", []any{hex.EncodeToString(raw.Bytes())}, &txid); err != nil {
		t.Fatalf("sendrawtransaction: %v", err)
	}
	if txid != tx.TxHash().String() {
		t.Fatalf("bcoin's txid %s, ours %s", txid, tx.TxHash())
	}

	// The cached template predates the spend: mine it first.
	_, stale := mineJob(t, ctx, s, "before")
	if res, err := s.SubmitBlock(ctx, stale); err != nil || res.Status != chain.Accepted {
		t.Fatalf("submit: %+v %v", res, err)
	}
	waitUpdate(t, s, "tip of the block before the spend", tipIs(stale.BlockHash()))

	job, block := mineJob(t, ctx, s, "segwit")
	tmpl := job.Template
	i := slices.IndexFunc(tmpl.Transactions, func(x *btcutil.Tx) bool { return *x.Hash() == tx.TxHash() })
	if i < 0 || !tmpl.HasWitness() || tmpl.Fees == nil || tmpl.Fees[i] != fee || job.WitnessCommitment == nil {
		t.Fatalf("template at %d of %d transactions, spend at %d, fees %v, commitment %x",
			tmpl.Height, len(tmpl.Transactions), i, tmpl.Fees, job.WitnessCommitment)
	}
	res, err := s.SubmitBlock(ctx, block)
	if err != nil || res.Status != chain.Accepted {
		t.Fatalf("submit segwit block: %+v %v\n%s", res, err, n.Log())
	}
	waitUpdate(t, s, "tip of the segwit block", tipIs(block.BlockHash()))
	var stored string
	if err := n.Call("getblock", []any{block.BlockHash().String(), 0}, &stored); err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(stored)
	if err != nil {
		t.Fatal(err)
	}
	var got wire.MsgBlock
	if err := got.Deserialize(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	w := got.Transactions[0].TxIn[0].Witness
	if len(got.Transactions) != 2 || got.Transactions[1].TxHash() != tx.TxHash() ||
		!got.Transactions[1].HasWitness() || len(w) != 1 || len(w[0]) != 32 || !strings.EqualFold(stored, hexBlock(t, block)) {
		t.Fatalf("bcoin stored %d transactions, coinbase witness %x", len(got.Transactions), w)
	}
}

// hexBlock is b's serialization (with witnesses) in hex.
func hexBlock(t *testing.T, b *wire.MsgBlock) string {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(buf.Bytes())
}
