package p2p

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain/p2p/bip152"
)

// coreSendCmpct returns the payloads of the two sendcmpct messages a
// mainnet Bitcoin Core node sent after verack (version 2, then 1), from
// the capture bip152/testdata/core-sendcmpct.hex (its README names the
// source).
func coreSendCmpct(t *testing.T) (v2, v1 []byte) {
	t.Helper()
	f, err := os.Open("bip152/testdata/core-sendcmpct.hex")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var msgs [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil || len(b) != msgHeaderSize+9 {
			t.Fatalf("bad capture line %q", line)
		}
		msgs = append(msgs, b[msgHeaderSize:])
	}
	if len(msgs) != 2 {
		t.Fatalf("%d captured messages", len(msgs))
	}
	return msgs[0], msgs[1]
}

// describe names the messages a peer sees about blocks and BIP 152, in
// order; the rest (pings, getblocks, addr, tx invs) is left out.
func describe(msgs []wire.Message) []string {
	var out []string
	for _, m := range msgs {
		switch m := m.(type) {
		case *wire.MsgSendHeaders:
			out = append(out, "sendheaders")
		case *bip152.MsgSendCmpct:
			out = append(out, fmt.Sprintf("sendcmpct %v %d", m.HighBandwidth, m.Version))
		case *wire.MsgHeaders:
			s := "headers"
			for _, h := range m.Headers {
				s += " " + h.BlockHash().String()
			}
			out = append(out, s)
		case *wire.MsgInv:
			for _, iv := range m.InvList {
				if iv.Type == wire.InvTypeBlock || iv.Type == wire.InvTypeWitnessBlock {
					out = append(out, "inv block "+iv.Hash.String())
				}
			}
		case *wire.MsgBlock:
			out = append(out, "block "+m.BlockHash().String())
		case *bip152.MsgCmpctBlock:
			out = append(out, "cmpctblock "+m.Header.BlockHash().String())
		case *bip152.MsgBlockTxn:
			out = append(out, "blocktxn "+m.BlockHash.String())
		}
	}
	return out
}

// only returns the single message of type T in msgs, failing otherwise.
func only[T wire.Message](t *testing.T, msgs []wire.Message) T {
	t.Helper()
	var found []T
	for _, m := range msgs {
		if v, ok := m.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d messages of the type wanted in %v", len(found), describe(msgs))
	}
	return found[0]
}

func isCmpct(m wire.Message) bool { _, ok := m.(*bip152.MsgCmpctBlock); return ok }

func cmpctGetData(hash *chainhash.Hash) *wire.MsgGetData {
	gd := wire.NewMsgGetData()
	_ = gd.AddInvVect(wire.NewInvVect(bip152.InvTypeCmpctBlock, hash))
	return gd
}

// TestCoreCompactBlocks plays Bitcoin Core's side of BIP 152 against the
// node, message by message as Core's net_processing.cpp sends them (the
// sendcmpct bytes are a capture of a real Core node), and asserts the
// exact block announcements Core would see:
//
//   - after verack the node sends sendheaders and sendcmpct(0, 2), the
//     bytes Core itself sends;
//   - a found block goes to a low-bandwidth peer that sent sendheaders as
//     one headers message; Core asks for it with getdata MSG_CMPCT_BLOCK
//     and gets a version 2 cmpctblock (coinbase prefilled, wtxid short
//     IDs), then the transaction it lacks with getblocktxn/blocktxn;
//   - once Core chose us as high-bandwidth peer (sendcmpct(1, 2)), the
//     next found block is pushed as a cmpctblock and nothing else, while a
//     peer that did not ask gets headers;
//   - old blocks are served whole, and an out-of-bounds getblocktxn index
//     bans the peer, as Core does.
func TestCoreCompactBlocks(t *testing.T) {
	n := startNode(t, Config{Listen: []string{"127.0.0.1:0"}})
	_, script := keyOne()
	// Segwit must be active for a block to be pushed as a compact block
	// (Core's NewPoWValidBlock); on btcd's regtest that is height 432.
	hashes, err := n.Generate(testCtx(t), segwitHeight, script)
	if err != nil {
		t.Fatal(err)
	}
	first, err := n.Chain().BlockByHash(&hashes[0])
	if err != nil {
		t.Fatal(err)
	}
	tx := spendKeyOne(t, first.MsgBlock().Transactions[0])
	txid, wtxid := tx.TxHash(), tx.WitnessHash()
	listen := n.ListenAddrs()[0].String()

	core := dialRawVersion(t, listen, wire.ProtocolVersion)
	core.handshake(segwitHeight, "/Satoshi:27.0.0/", true)
	other := dialRawVersion(t, listen, wire.ProtocolVersion)
	other.handshake(segwitHeight, "/Satoshi:27.0.0/", true)
	waitFor(t, n, "two peers", func() bool { return n.Stats().Inbound == 2 })

	v2, v1 := coreSendCmpct(t)
	after := core.barrier()
	if got, want := describe(after), []string{"sendheaders", "sendcmpct false 2"}; !slices.Equal(got, want) {
		t.Fatalf("after verack the node sent %v, want %v", got, want)
	}
	var ours bytes.Buffer
	if err := only[*bip152.MsgSendCmpct](t, after).BtcEncode(&ours, 0, 0); err != nil ||
		!bytes.Equal(ours.Bytes(), v2) {
		t.Fatalf("our sendcmpct %x, Core's %x", ours.Bytes(), v2)
	}

	// Core's own messages after verack, sendcmpct as captured; the other
	// peer only asks for headers.
	core.send(wire.NewMsgSendHeaders())
	core.sendRaw(bip152.CmdSendCmpct, v2)
	core.sendRaw(bip152.CmdSendCmpct, v1)
	// A high-bandwidth request for version 1 is ignored, as Core ignores
	// every version but 2: block 1 must still go as headers.
	core.send(&bip152.MsgSendCmpct{HighBandwidth: true, Version: 1})
	core.send(wire.NewMsgFeeFilter(1000))
	core.send(tx)
	other.send(wire.NewMsgSendHeaders())
	waitFor(t, n, "transaction in the mempool", func() bool { return n.Mempool().HaveTransaction(&txid) })
	core.barrier()
	other.barrier()

	// Block 1: headers, then the compact block on request.
	_, blk1 := findBlock(t, n, script)
	if len(blk1.Transactions) != 2 {
		t.Fatalf("block of %d transactions, want the coinbase and ours", len(blk1.Transactions))
	}
	h1 := blk1.BlockHash()
	if got, want := describe(core.barrier()), []string{"headers " + h1.String()}; !slices.Equal(got, want) {
		t.Fatalf("low-bandwidth Core peer saw %v, want %v", got, want)
	}
	core.send(cmpctGetData(&h1))
	cb := only[*bip152.MsgCmpctBlock](t, core.barrier())
	if cb.Header != blk1.Header || len(cb.Prefilled) != 1 || cb.Prefilled[0].Index != 0 ||
		cb.Prefilled[0].Tx.TxHash() != blk1.Transactions[0].TxHash() || !cb.Prefilled[0].Tx.HasWitness() {
		t.Fatalf("cmpctblock %+v: want the header and the coinbase (with witness) prefilled", cb)
	}
	k := bip152.NewKey(&cb.Header, cb.Nonce)
	if len(cb.ShortIDs) != 1 || cb.ShortIDs[0] != k.ShortID(&wtxid) || cb.ShortIDs[0] == k.ShortID(&txid) {
		t.Fatalf("short IDs %v: want the wtxid's", cb.ShortIDs)
	}
	// Core's mempool has the transaction: the block is whole.
	p, err := bip152.Reconstruct(cb, []*wire.MsgTx{tx})
	if err != nil || len(p.Missing) != 0 {
		t.Fatalf("rebuild with the transaction: missing %v, %v", p.Missing, err)
	}
	// A Core without it asks for index 1.
	p, err = bip152.Reconstruct(cb, nil)
	if err != nil || !slices.Equal(p.Missing, []uint16{1}) {
		t.Fatalf("rebuild without the transaction: missing %v, %v", p.Missing, err)
	}
	core.send(&bip152.MsgGetBlockTxn{BlockHash: h1, Indexes: p.Missing})
	bt := only[*bip152.MsgBlockTxn](t, core.barrier())
	full, err := p.Fill(bt)
	if err != nil || full.BlockHash() != h1 || full.Transactions[1].WitnessHash() != wtxid {
		t.Fatalf("filled block %v: %v", full.BlockHash(), err)
	}
	if got := describe(other.barrier()); !slices.Equal(got, []string{"headers " + h1.String()}) {
		t.Fatalf("other peer saw %v", got)
	}

	// Core's BlockChecked chose us as a high-bandwidth peer.
	core.send(&bip152.MsgSendCmpct{HighBandwidth: true, Version: bip152.Version})
	core.barrier()

	// Block 2: pushed as a cmpctblock to Core, headers to the other peer.
	tmpl2, blk2 := findBlock(t, n, script)
	h2 := blk2.BlockHash()
	// The compact block is built off SubmitBlock's goroutine: wait for it,
	// then check nothing else about the block follows.
	seen := append(core.until(isCmpct), core.barrier()...)
	if got, want := describe(seen), []string{"cmpctblock " + h2.String()}; !slices.Equal(got, want) {
		t.Fatalf("high-bandwidth Core peer saw %v, want %v", got, want)
	}
	cb2 := only[*bip152.MsgCmpctBlock](t, seen)
	if p, err := bip152.Reconstruct(cb2, nil); err != nil || len(p.Missing) != 0 {
		t.Fatalf("pushed compact block of an empty block: %v %v", p, err)
	}
	if got := describe(other.barrier()); !slices.Equal(got, []string{"headers " + h2.String()}) {
		t.Fatalf("other peer saw %v", got)
	}
	if st := n.Stats(); st.LastAnnounced != h2 || st.LastAnnounceLatency <= 0 {
		t.Fatalf("announce stats %+v", st)
	}
	// Asked for again, it is the same compact block (one nonce per block).
	core.send(cmpctGetData(&h2))
	if again := only[*bip152.MsgCmpctBlock](t, core.barrier()); again.Nonce != cb2.Nonce {
		t.Fatalf("nonce %d, then %d", cb2.Nonce, again.Nonce)
	}

	// A second found block at the same height is not pushed before
	// validation (Core's m_highest_fast_announce): headers.
	sib := solveTemplate(t, tmpl2, script, "/sibling/")
	if _, err := n.SubmitBlock(testCtx(t), sib); err != nil {
		t.Fatal(err)
	}
	if got, want := describe(core.barrier()), []string{"headers " + sib.BlockHash().String()}; !slices.Equal(got, want) {
		t.Fatalf("sibling of a pushed block: Core peer saw %v, want %v", got, want)
	}
	other.barrier()

	// Deep blocks are served whole: MSG_CMPCT_BLOCK past
	// MAX_CMPCTBLOCK_DEPTH, getblocktxn past MAX_BLOCKTXN_DEPTH.
	core.send(cmpctGetData(&hashes[0]))
	if got := describe(core.barrier()); !slices.Equal(got, []string{"block " + hashes[0].String()}) {
		t.Fatalf("deep MSG_CMPCT_BLOCK answered with %v", got)
	}
	core.send(&bip152.MsgGetBlockTxn{BlockHash: hashes[1], Indexes: []uint16{0}})
	if got := describe(core.barrier()); !slices.Equal(got, []string{"block " + hashes[1].String()}) {
		t.Fatalf("deep getblocktxn answered with %v", got)
	}

	// An index past the block: Core's Misbehaving, a ban here.
	core.send(&bip152.MsgGetBlockTxn{BlockHash: h2, Indexes: []uint16{1}})
	core.waitClosed()
	waitFor(t, n, "ban", func() bool { return n.Stats().Banned == 1 })
}

// TestNoCompactPushBeforeSegwit: before segwit activates a found block is
// not pushed as a compact block even to a high-bandwidth peer (Core's
// NewPoWValidBlock), and is announced with headers; the peer can still
// ask for the compact block.
func TestNoCompactPushBeforeSegwit(t *testing.T) {
	n := startNode(t, Config{Listen: []string{"127.0.0.1:0"}})
	core := dialRawVersion(t, n.ListenAddrs()[0].String(), wire.ProtocolVersion)
	core.handshake(0, "/Satoshi:27.0.0/", true)
	core.send(wire.NewMsgSendHeaders())
	core.send(&bip152.MsgSendCmpct{HighBandwidth: true, Version: bip152.Version})
	core.barrier()
	// No wait for netsync to have handled the new peer: found blocks are
	// processed on netsync's goroutine (server.processBlock), so the
	// chain's notification cannot race with netsync's sync peer state.

	_, script := keyOne()
	_, blk := findBlock(t, n, script)
	h := blk.BlockHash()
	if got, want := describe(core.barrier()), []string{"headers " + h.String()}; !slices.Equal(got, want) {
		t.Fatalf("Core peer saw %v, want %v", got, want)
	}
	core.send(cmpctGetData(&h))
	if cb := only[*bip152.MsgCmpctBlock](t, core.barrier()); cb.Header.BlockHash() != h {
		t.Fatal("compact block of another block")
	}
}
