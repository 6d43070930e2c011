package p2p

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/embedded"
	"github.com/stratumd/stratumd/internal/chain/p2p/bip152"
)

// btcdArgs make btcd relay transactions quickly (its default trickle is
// 10 s; Bitcoin Core's tx relay delay is a few seconds); block
// announcements to us are immediate headers because we send sendheaders.
var btcdArgs = []string{"--trickleinterval=50ms"}

// segwitHeight is where btcd's regtest has segwit active (BIP9 windows of
// 144 blocks: locked in at 288, active at 432).
const segwitHeight = 432

// bestHash returns btcd's best block hash.
func bestHash(t testing.TB, b *btcdtest.Node) string {
	t.Helper()
	h, err := b.Client().GetBestBlockHash()
	if err != nil {
		t.Fatalf("btcd getbestblockhash: %v", err)
	}
	return h.String()
}

// solve builds a block on the node's template paying to script.
func solve(t testing.TB, n *Node, script []byte) (*chain.Template, *wire.MsgBlock) {
	t.Helper()
	tmpl, err := n.Template(testCtx(t))
	if err != nil {
		t.Fatalf("Template: %v", err)
	}
	return tmpl, solveTemplate(t, tmpl, script, "/p2p-test/")
}

// solveTemplate builds a block on tmpl paying to script, with tag in its
// coinbase.
func solveTemplate(t testing.TB, tmpl *chain.Template, script []byte, tag string) *wire.MsgBlock {
	t.Helper()
	job, err := chain.NewJob("t", tmpl, chain.CoinbaseConfig{
		PayoutScript: script, Tag: tag, Extranonce1Size: 4, Extranonce2Size: 4,
	})
	if err != nil {
		t.Fatalf("NewJob: %v", err)
	}
	b, err := embedded.Solve(testCtx(t), job)
	if err != nil {
		t.Fatalf("Solve: %v", err)
	}
	return b
}

// findBlock solves a block on the node's template and submits it; the
// node must accept it.
func findBlock(t testing.TB, n *Node, script []byte) (*chain.Template, *wire.MsgBlock) {
	t.Helper()
	tmpl, b := solve(t, n, script)
	if res, err := n.SubmitBlock(testCtx(t), b); err != nil || res.Status != chain.Accepted {
		t.Fatalf("SubmitBlock = %+v, %v", res, err)
	}
	return tmpl, b
}

// keyOne is the key whose secret is 1: btcdtest's generate pays to it.
func keyOne() (*btcec.PrivateKey, []byte) {
	var secret [32]byte
	secret[31] = 1
	priv, pub := btcec.PrivKeyFromBytes(secret[:])
	script, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).
		AddData(btcutil.Hash160(pub.SerializeCompressed())).Script()
	return priv, script
}

// spendCoinbase spends the coinbase of btcd's block at height to a fresh
// P2WPKH output of key one, with a 10,000 satoshi fee.
func spendCoinbase(t testing.TB, b *btcdtest.Node, height int64) *wire.MsgTx {
	t.Helper()
	c := b.Client()
	hash, err := c.GetBlockHash(height)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := c.GetBlock(hash)
	if err != nil {
		t.Fatal(err)
	}
	return spendKeyOne(t, blk.Transactions[0])
}

// spendKeyOne spends output 0 of cb, which pays to key one's P2WPKH, back
// to it with a 10,000 satoshi fee: a segwit transaction (its wtxid is not
// its txid).
func spendKeyOne(t testing.TB, cb *wire.MsgTx) *wire.MsgTx {
	t.Helper()
	priv, script := keyOne()
	if !bytes.Equal(cb.TxOut[0].PkScript, script) {
		t.Fatal("coinbase does not pay to key one")
	}
	value := cb.TxOut[0].Value
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(ptr(cb.TxHash()), 0), nil, nil))
	tx.AddTxOut(wire.NewTxOut(value-10000, script))
	fetcher := txscript.NewCannedPrevOutputFetcher(script, value)
	wit, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), 0, value, script,
		txscript.SigHashAll, priv, true)
	if err != nil {
		t.Fatal(err)
	}
	tx.TxIn[0].Witness = wit
	return tx
}

// onlyPeer returns the node's one connected peer.
func onlyPeer(t testing.TB, n *Node) *serverPeer {
	t.Helper()
	var peers []*serverPeer
	n.p2p.forEachPeer(func(sp *serverPeer) { peers = append(peers, sp) })
	if len(peers) != 1 {
		t.Fatalf("%d peers, want 1", len(peers))
	}
	return peers[0]
}

func ptr[T any](v T) *T { return &v }

// TestWithBtcd runs against one real btcd: initial sync, a btcd block
// reaching us, our found block reaching btcd, a transaction from btcd
// mined through our template.
func TestWithBtcd(t *testing.T) {
	b := btcdtest.Start(t, btcdtest.Options{Args: btcdArgs})
	const initial = segwitHeight + 8
	start := time.Now()
	b.Generate(initial)
	t.Logf("btcd generated %d blocks in %s", initial, time.Since(start))
	target := bestHash(t, b)

	n := startNode(t, Config{Connect: []string{b.P2PAddr()}})

	// Initial sync.
	start = time.Now()
	waitTip(t, n, target)
	t.Logf("synced %d blocks from btcd in %s", initial, time.Since(start))
	if n.BestHeight() != initial {
		t.Fatalf("height %d after sync, want %d", n.BestHeight(), initial)
	}
	waitFor(t, n, "synced stats", func() bool {
		st := n.Stats()
		return st.Synced && st.Outbound == 1 && st.BestPeerHeight == initial
	})
	st := n.Stats()
	if st.Progress != 1 || st.Height != initial || st.Inbound != 0 {
		t.Fatalf("stats after sync: %+v", st)
	}
	// btcd speaks protocol 70016, so it got our sendcmpct(0, 2) after
	// verack; it does not speak BIP 152 and must keep the connection.
	btcdPeer := onlyPeer(t, n)
	if v := btcdPeer.ProtocolVersion(); v < bip152.ProtocolVersion {
		t.Fatalf("btcd negotiated protocol %d, below BIP 152's %d", v, bip152.ProtocolVersion)
	}

	// A block mined by btcd reaches us as a NewTip.
	drainUpdates(n)
	before := time.Now()
	hashes := b.Generate(1)
	after := time.Now()
	u := waitTip(t, n, hashes[0].String())
	got := time.Now()
	t.Logf("btcd block -> our NewTip: %s after the generate RPC returned (%s including btcd mining it)",
		got.Sub(after), got.Sub(before))
	if u.Kind != chain.NewTip || u.Height != initial+1 {
		t.Fatalf("update %+v", u)
	}
	if d := got.Sub(after); d > 2*time.Second {
		t.Fatalf("btcd block took %s to reach us", d)
	}

	// Our found block reaches btcd, which accepts it.
	_, script := keyOne()
	tmpl, blk := findBlock(t, n, script)
	if err := b.WaitHeight(testCtx(t), int64(tmpl.Height)); err != nil {
		t.Fatal(err)
	}
	if got := bestHash(t, b); got != blk.BlockHash().String() {
		t.Fatalf("btcd best %s, want our block %s", got, blk.BlockHash())
	}
	if onlyPeer(t, n) != btcdPeer {
		t.Fatal("the btcd connection was replaced")
	}
	st = n.Stats()
	if st.BlocksAnnounced != 1 || st.LastAnnounced != blk.BlockHash() || st.LastAnnounceLatency <= 0 {
		t.Fatalf("announce stats %+v", st)
	}
	t.Logf("found block: relay hook -> first peer write %s", st.LastAnnounceLatency)

	// A transaction sent to btcd reaches our mempool and is mined through
	// our template; btcd accepts the block.
	tx := spendCoinbase(t, b, 1)
	if _, err := b.Client().SendRawTransaction(tx, true); err != nil {
		t.Fatalf("sendrawtransaction: %v", err)
	}
	txid := tx.TxHash()
	waitFor(t, n, "transaction in our mempool", func() bool { return n.Mempool().HaveTransaction(&txid) })
	tmpl, blk = solve(t, n, script)
	found := false
	for _, tt := range tmpl.Transactions {
		found = found || *tt.Hash() == txid
	}
	if !found {
		t.Fatalf("template of %d transactions lacks %s", len(tmpl.Transactions), txid)
	}
	if res, err := n.SubmitBlock(testCtx(t), blk); err != nil || res.Status != chain.Accepted {
		t.Fatalf("SubmitBlock with tx = %+v, %v", res, err)
	}
	if err := b.WaitHeight(testCtx(t), int64(tmpl.Height)); err != nil {
		t.Fatal(err)
	}
	if got := bestHash(t, b); got != blk.BlockHash().String() {
		t.Fatalf("btcd best %s, want our block %s", got, blk.BlockHash())
	}
	if n.Mempool().HaveTransaction(&txid) {
		t.Fatal("mined transaction still in our mempool")
	}
}

// TestReorgFromBtcd: our node mines a block btcd never sees, btcd mines a
// longer chain; once connected, our node switches to it and our block is
// no longer in the main chain.
func TestReorgFromBtcd(t *testing.T) {
	b := btcdtest.Start(t, btcdtest.Options{Args: btcdArgs})
	n := startNode(t, Config{})
	if !n.Synced() {
		t.Fatal("a regtest node without peers is not synced")
	}
	_, script := keyOne()
	ours, err := n.Generate(testCtx(t), 1, script)
	if err != nil {
		t.Fatal(err)
	}
	theirs := b.Generate(2)
	if err := n.Connect(b.P2PAddr()); err != nil {
		t.Fatal(err)
	}
	u := waitTip(t, n, theirs[1].String())
	if u.Kind != chain.NewTip || n.BestHeight() != 2 {
		t.Fatalf("after reorg: update %+v, height %d", u, n.BestHeight())
	}
	if n.MainChainHas(&ours[0]) {
		t.Fatal("our orphaned block is still in the main chain")
	}
	if !n.MainChainHas(theirs[0]) {
		t.Fatal("btcd's block is not in the main chain")
	}
}

// TestMisbehavingPeers: a peer sending a malformed message and a peer
// sending an invalid block are dropped and their address banned; the btcd
// peer stays and keeps syncing.
func TestMisbehavingPeers(t *testing.T) {
	b := btcdtest.Start(t, btcdtest.Options{Args: btcdArgs})
	b.Generate(5)
	n := startNode(t, Config{Connect: []string{b.P2PAddr()}, Listen: []string{"127.0.0.1:0"}})
	listen := n.ListenAddrs()[0].String()
	waitTip(t, n, bestHash(t, b))

	// A block with a bad merkle root (valid proof of work) on our tip.
	_, script := keyOne()
	tmpl, blk := solve(t, n, script)
	blk.Header.MerkleRoot[0] ^= 1
	target := chain.NewTarget(tmpl.Target())
	for nonce := uint32(0); ; nonce++ {
		blk.Header.Nonce = nonce
		h := blk.Header.BlockHash()
		if target.Meets(&h) {
			break
		}
	}
	p := dialRaw(t, listen)
	p.handshake(0, "/raw:0.1/", true)
	waitFor(t, n, "raw peer registered", func() bool { return n.Stats().Inbound == 1 })
	p.send(blk)
	p.waitClosed()
	waitFor(t, n, "ban", func() bool { st := n.Stats(); return st.Banned == 1 && st.Inbound == 0 })

	// The banned address cannot come back.
	again := dialRaw(t, listen)
	again.waitClosed()
	if st := n.Stats(); st.Outbound != 1 || st.Inbound != 0 {
		t.Fatalf("peers after ban: %+v", st)
	}

	// The btcd peer is unaffected.
	h := b.Generate(1)
	waitTip(t, n, h[0].String())
}

// TestGarbageBanned: a malformed message (bad checksum) bans the sender.
func TestGarbageBanned(t *testing.T) {
	n := startNode(t, Config{Listen: []string{"127.0.0.1:0"}})
	listen := n.ListenAddrs()[0].String()
	p := dialRaw(t, listen)
	p.handshake(0, "/raw:0.1/", true)
	waitFor(t, n, "raw peer registered", func() bool { return n.Stats().Inbound == 1 })
	var buf bytes.Buffer
	if _, err := wire.WriteMessageN(&buf, wire.NewMsgPing(7), p.pver, wire.TestNet); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	raw[20] ^= 0xff // checksum
	if _, err := p.conn.Write(raw); err != nil {
		t.Fatal(err)
	}
	p.waitClosed()
	waitFor(t, n, "ban", func() bool { return n.Stats().Banned == 1 })
}

// TestAnnounceBeforeValidation: a found block is announced to a peer (an
// inv to a peer that did not send sendheaders, headers to one that did)
// and the announced block is served on getdata even when our own
// validation rejects it.
func TestAnnounceBeforeValidation(t *testing.T) {
	n := startNode(t, Config{Listen: []string{"127.0.0.1:0"}})
	listen := n.ListenAddrs()[0].String()
	other := dialRaw(t, listen)
	other.handshake(0, "/btcwire:0.5.0/btcd:0.24.2/", true)
	core := dialRaw(t, listen)
	core.handshake(0, "/Satoshi:27.0.0/", true)
	core.send(wire.NewMsgSendHeaders())
	core.barrier()
	waitFor(t, n, "two peers", func() bool { return n.Stats().Inbound == 2 })

	// An invalid block: the coinbase pays one satoshi too much.
	_, script := keyOne()
	tmpl, err := n.Template(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.CoinbaseValue++
	blk := solveTemplate(t, tmpl, script, "/p2p-test/")
	hash := blk.BlockHash()
	res, err := n.SubmitBlock(testCtx(t), blk)
	if err != nil || res.Status != chain.Rejected {
		t.Fatalf("SubmitBlock = %+v, %v; want rejected", res, err)
	}

	inv := other.next(func(m wire.Message) bool { _, ok := m.(*wire.MsgInv); return ok }).(*wire.MsgInv)
	if len(inv.InvList) != 1 || inv.InvList[0].Hash != hash {
		t.Fatalf("inv %+v, want %s", inv.InvList, hash)
	}
	gd := wire.NewMsgGetData()
	_ = gd.AddInvVect(wire.NewInvVect(wire.InvTypeWitnessBlock, &hash))
	other.send(gd)
	got := other.next(func(m wire.Message) bool { _, ok := m.(*wire.MsgBlock); return ok })
	if got == nil || got.(*wire.MsgBlock).BlockHash() != hash {
		t.Fatal("announced block not served on getdata")
	}

	hdrs := core.next(func(m wire.Message) bool { _, ok := m.(*wire.MsgHeaders); return ok })
	if hdrs == nil || len(hdrs.(*wire.MsgHeaders).Headers) != 1 || hdrs.(*wire.MsgHeaders).Headers[0].BlockHash() != hash {
		t.Fatal("peer that sent sendheaders did not get the block's header")
	}
	st := n.Stats()
	if st.LastAnnounced != hash || st.LastAnnounceLatency <= 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("relay hook -> first peer write: %s", st.LastAnnounceLatency)

	// Unknown blocks get notfound.
	gd = wire.NewMsgGetData()
	_ = gd.AddInvVect(wire.NewInvVect(wire.InvTypeBlock, &chainhash.Hash{1}))
	other.send(gd)
	if other.next(func(m wire.Message) bool { _, ok := m.(*wire.MsgNotFound); return ok }) == nil {
		t.Fatal("no notfound")
	}
}

// TestNotSyncedWhilePeerAhead: an outbound peer claiming a higher chain
// keeps the node from serving templates (chain.ErrNotSynced).
func TestNotSyncedWhilePeerAhead(t *testing.T) {
	l, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n := startNode(t, Config{Connect: []string{l.Addr().String()}})
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p := newRawPeer(t, conn)
	p.handshake(1000, "/raw:0.1/", false)
	waitFor(t, n, "outbound peer", func() bool { return n.Stats().Outbound == 1 })
	st := n.Stats()
	if st.Synced || st.BestPeerHeight != 1000 || st.Progress != 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := n.Template(testCtx(t)); !errors.Is(err, chain.ErrNotSynced) {
		t.Fatalf("Template = %v, want ErrNotSynced", err)
	}
}
