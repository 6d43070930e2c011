package p2p

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/embedded"
	"github.com/stratumd/stratumd/internal/stratum"
	"github.com/stratumd/stratumd/internal/stratum/stratumtest"
)

// spender builds blocks full of signed P2WPKH spends, as a peer's block
// would be: the node's pre-mined coinbases pay its key.
type spender struct {
	key    *btcec.PrivateKey
	script []byte
	next   int32 // height of the next coinbase to spend
}

func newSpender(t testing.TB) *spender {
	t.Helper()
	seed := sha256.Sum256([]byte("stratumd p2p header-first test key"))
	key, pub := btcec.PrivKeyFromBytes(seed[:])
	script, err := txscript.NewScriptBuilder().AddOp(txscript.OP_0).
		AddData(btcutil.Hash160(pub.SerializeCompressed())).Script()
	if err != nil {
		t.Fatal(err)
	}
	return &spender{key: key, script: script, next: 1}
}

// premine mines count blocks paying the spender's key on n.
func (s *spender) premine(t testing.TB, n *Node, count int) {
	t.Helper()
	if _, err := n.Generate(testCtx(t), count, s.script); err != nil {
		t.Fatalf("Generate: %v", err)
	}
}

// sign spends prev (value, the spender's script) in tx's input i.
func (s *spender) sign(t testing.TB, tx *wire.MsgTx, i int, value int64) {
	t.Helper()
	fetcher := txscript.NewCannedPrevOutputFetcher(s.script, value)
	w, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), i, value, s.script,
		txscript.SigHashAll, s.key, true)
	if err != nil {
		t.Fatal(err)
	}
	tx.TxIn[i].Witness = w
}

// block builds a solved block on n's tip with a fan-out transaction
// spending the next mature coinbase into spends outputs and one signed
// transaction spending each: 1 + spends transactions besides the
// coinbase.
func (s *spender) block(t testing.TB, n *Node, spends int) *wire.MsgBlock {
	t.Helper()
	const fee = 1000
	hash, err := n.Chain().BlockHashByHeight(s.next)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := n.Chain().BlockByHash(hash)
	if err != nil {
		t.Fatal(err)
	}
	s.next++
	cbOut := cb.MsgBlock().Transactions[0].TxOut[0]
	fan := wire.NewMsgTx(2)
	fan.AddTxIn(wire.NewTxIn(wire.NewOutPoint(cb.Transactions()[0].Hash(), 0), nil, nil))
	each := (cbOut.Value - fee) / int64(spends)
	for range spends {
		fan.AddTxOut(wire.NewTxOut(each, s.script))
	}
	s.sign(t, fan, 0, cbOut.Value)
	fanHash := fan.TxHash()
	txs := []*btcutil.Tx{btcutil.NewTx(fan)}
	for i := range spends {
		tx := wire.NewMsgTx(2)
		tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&fanHash, uint32(i)), nil, nil))
		tx.AddTxOut(wire.NewTxOut(each-fee, s.script))
		s.sign(t, tx, 0, each)
		txs = append(txs, btcutil.NewTx(tx))
	}
	// The node's own template gives the header's fields (and is the full
	// template HeaderFirst needs); the block carries the spends instead.
	tmpl, err := n.Template(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.Transactions, tmpl.Fees, tmpl.SigOpCosts = txs, nil, nil
	tmpl.CoinbaseValue = blockchain.CalcBlockSubsidy(tmpl.Height, n.Params()) + fee*int64(spends+1)
	job, err := chain.NewJob("hf", tmpl, chain.CoinbaseConfig{PayoutScript: s.script, Tag: "/peer/",
		Extranonce1Size: 4, Extranonce2Size: 4})
	if err != nil {
		t.Fatal(err)
	}
	b, err := embedded.Solve(testCtx(t), job)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startHeaderFirstNode runs a regtest node with header-first on or off, a
// P2P listener, and a pre-mined chain, segwit active (height 432), whose
// coinbases the spender can spend.
func startHeaderFirstNode(t testing.TB, on bool, s *spender, blocks int) *Node {
	t.Helper()
	n := startNodeWith(t, Config{Listen: []string{"127.0.0.1:0"}}, func(c *embedded.Config) {
		c.HeaderFirst = on
		c.UtxoCacheMaxSizeMiB = 16
	})
	s.premine(t, n, 432+blocks)
	return n
}

func TestHeaderFirstFromPeer(t *testing.T) {
	s := newSpender(t)
	n := startHeaderFirstNode(t, true, s, 3)
	p := dialRaw(t, n.ListenAddrs()[0].String())
	p.handshake(0, "/Satoshi:27.0.0/", true)

	// A valid block with 20 spends: moved onto, then connected.
	good := s.block(t, n, 20)
	p.send(good)
	waitTip(t, n, good.BlockHash().String())
	waitFor(t, n, "header-first counted as connected", func() bool {
		st := n.HeaderFirstStats()
		return st.Switched == 1 && st.Connected == 1
	})

	// A block with valid proof of work and a bad merkle root: moved onto,
	// then back to the tip.
	bad := s.block(t, n, 20)
	bad.Header.MerkleRoot[0] ^= 1
	target := chain.NewTarget(blockchain.CompactToBig(bad.Header.Bits))
	for bad.Header.Nonce = 0; ; bad.Header.Nonce++ {
		h := bad.Header.BlockHash()
		if target.Meets(&h) {
			break
		}
	}
	drainUpdates(n)
	p.send(bad)
	waitFor(t, n, "header-first reverted", func() bool { return n.HeaderFirstStats().Reverted == 1 })
	if n.BestHash() != good.BlockHash() {
		t.Fatalf("tip %s after an invalid block, want %s", n.BestHash(), good.BlockHash())
	}
	tmpl, err := n.Template(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.PrevHash != good.BlockHash() {
		t.Fatalf("template on %s after the revert, want %s", tmpl.PrevHash, good.BlockHash())
	}
}

// notifyWatcher is a stratum client that timestamps the mining.notify
// lines it receives.
type notifyWatcher struct {
	lines chan notifyLine
}

type notifyLine struct {
	at       time.Time
	prevHash string
	branches int
	clean    bool
}

func watchNotifies(t testing.TB, addr string) *notifyWatcher {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	w := &notifyWatcher{lines: make(chan notifyLine, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewScanner(conn)
		for r.Scan() {
			at := time.Now()
			var m struct {
				Method string            `json:"method"`
				Params []json.RawMessage `json:"params"`
			}
			if json.Unmarshal(r.Bytes(), &m) != nil || m.Method != "mining.notify" || len(m.Params) < 9 {
				continue
			}
			var l notifyLine
			var branch []string
			if json.Unmarshal(m.Params[1], &l.prevHash) != nil || json.Unmarshal(m.Params[4], &branch) != nil ||
				json.Unmarshal(m.Params[8], &l.clean) != nil {
				continue
			}
			l.at, l.branches = at, len(branch)
			w.lines <- l
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	fmt.Fprintf(conn, `{"id":1,"method":"mining.subscribe","params":[]}`+"\n")
	fmt.Fprintf(conn, `{"id":2,"method":"mining.authorize","params":[%q,"x"]}`+"\n", stratumtest.Address(1))
	return w
}

// next returns the next notify.
func (w *notifyWatcher) next(t testing.TB) notifyLine {
	t.Helper()
	select {
	case l := <-w.lines:
		return l
	case <-time.After(waitTimeout):
		t.Fatal("no mining.notify")
		return notifyLine{}
	}
}

// BenchmarkHeaderFirst measures, with a stratum server on the node and
// one miner, the time from a peer's block message (2,000 or 4,000 signed
// P2WPKH spends, encoded beforehand) starting to be written to the node's
// socket to the miner's first clean
// mining.notify on it ("first-ms"), and to the first notify carrying the
// full template ("full-ms": the node's mempool holds one transaction, so
// the full template has a merkle branch and the header-first one has
// none), with header-first off and on. "decode-ms" is one wire decode of
// the block, which every first-ms includes. Run with -benchtime=Nx.
func BenchmarkHeaderFirst(b *testing.B) {
	for _, spends := range []int{2000, 4000} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("txs=%d/header-first=%v", spends, on), func(b *testing.B) {
				benchHeaderFirst(b, spends, on)
			})
		}
	}
}

func benchHeaderFirst(b *testing.B, spends int, on bool) {
	s := newSpender(b)
	n := startHeaderFirstNode(b, on, s, b.N+2)
	// One transaction in the mempool (spending another mature coinbase),
	// which every full template carries.
	mem := s.block(b, n, 1).Transactions[1]
	if err := n.SubmitTx(testCtx(b), mem); err != nil {
		b.Fatal(err)
	}
	pool := stratumtest.Start(b, stratumtest.Config{Configure: func(c *stratum.Config) { c.Source = n }})
	w := watchNotifies(b, pool.Addr)
	prev := w.next(b).prevHash
	p := dialRaw(b, n.ListenAddrs()[0].String())
	p.handshake(0, "/Satoshi:27.0.0/", true)

	var first, full, decode []float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		blk := s.block(b, n, spends)
		decode = append(decode, decodeMillis(b, blk))
		var msg bytes.Buffer // the block message, encoded before the clock starts
		if _, err := wire.WriteMessageWithEncodingN(&msg, blk, p.pver, wire.TestNet, wire.WitnessEncoding); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if _, err := p.conn.Write(msg.Bytes()); err != nil {
			b.Fatal(err)
		}
		var gotFirst bool
		for {
			l := w.next(b)
			if l.prevHash == prev {
				continue // a mempool job on the old tip
			}
			if !gotFirst {
				if !l.clean {
					b.Fatalf("first notify on the new block is not clean")
				}
				gotFirst = true
				first = append(first, float64(l.at.Sub(start).Microseconds())/1000)
			}
			if l.branches > 0 {
				full = append(full, float64(l.at.Sub(start).Microseconds())/1000)
				prev = l.prevHash
				break
			}
		}
		b.StopTimer()
		waitFor(b, n, "block connected", func() bool { return n.BestHash() == blk.BlockHash() })
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(median(first), "first-ms")
	b.ReportMetric(median(full), "full-ms")
	b.ReportMetric(median(decode), "decode-ms")
	b.ReportMetric(0, "ns/op")
}

// decodeMillis is the time one wire decode of blk takes, in
// milliseconds: part of every first-ms (the node reads the whole block
// message before it sees the header).
func decodeMillis(b *testing.B, blk *wire.MsgBlock) float64 {
	var buf bytes.Buffer
	if err := blk.Serialize(&buf); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var m wire.MsgBlock
	if err := m.Deserialize(&buf); err != nil {
		b.Fatal(err)
	}
	return float64(time.Since(start).Microseconds()) / 1000
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
