package bip152

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// readHexLines returns the non-comment lines of a testdata hex file,
// decoded.
func readHexLines(t *testing.T, name string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encode(t *testing.T, m wire.Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := m.BtcEncode(&buf, wire.ProtocolVersion, wire.WitnessEncoding); err != nil {
		t.Fatalf("encode %s: %v", m.Command(), err)
	}
	return buf.Bytes()
}

func decodeCmpct(t *testing.T, raw []byte) *MsgCmpctBlock {
	t.Helper()
	var m MsgCmpctBlock
	if err := m.BtcDecode(bytes.NewReader(raw), wire.ProtocolVersion, wire.WitnessEncoding); err != nil {
		t.Fatalf("decode cmpctblock: %v", err)
	}
	return &m
}

func decodeBlock(t *testing.T, raw []byte) *wire.MsgBlock {
	t.Helper()
	var b wire.MsgBlock
	if err := b.Deserialize(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	return &b
}

// TestCaptureTestnet898352: the captured cmpctblock decodes, encodes back
// to the same bytes, is what NewCmpctBlock builds from the block with the
// captured nonce, and rebuilds the block from a pool.
func TestCaptureTestnet898352(t *testing.T) {
	raw := readFile(t, "bcoin-compact898352.bin")
	block := decodeBlock(t, readFile(t, "bcoin-block898352.bin"))
	m := decodeCmpct(t, raw)
	if got := encode(t, m); !bytes.Equal(got, raw) {
		t.Fatalf("re-encoded capture differs:\n got %x\nwant %x", got, raw)
	}
	if m.TxCount() != len(block.Transactions) || len(m.Prefilled) != 1 || m.Prefilled[0].Index != 0 {
		t.Fatalf("capture has %d short IDs, %d prefilled; block has %d transactions",
			len(m.ShortIDs), len(m.Prefilled), len(block.Transactions))
	}
	built, err := NewCmpctBlock(block, m.Nonce)
	if err != nil {
		t.Fatal(err)
	}
	if got := encode(t, built); !bytes.Equal(got, raw) {
		t.Fatalf("built compact block differs from capture:\n got %x\nwant %x", got, raw)
	}
	// bcoin's test pins the short ID of transaction 1 too.
	k := NewKey(&block.Header, m.Nonce)
	wtxid := block.Transactions[1].WitnessHash()
	if id := k.ShortID(&wtxid); id != 125673511480291 {
		t.Fatalf("short ID of tx 1 = %d, want 125673511480291", id)
	}

	p, err := Reconstruct(m, block.Transactions[1:])
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Block()
	if err != nil {
		t.Fatal(err)
	}
	if got.BlockHash() != block.BlockHash() || len(got.Transactions) != len(block.Transactions) {
		t.Fatal("rebuilt block differs")
	}
	for i, tx := range got.Transactions {
		if tx.TxHash() != block.Transactions[i].TxHash() {
			t.Fatalf("rebuilt tx %d differs", i)
		}
	}

	// Half the pool: the rest is missing, asked for, and filled in.
	half := (len(block.Transactions) + 1) / 2
	p, err = Reconstruct(m, block.Transactions[1:half])
	if err != nil {
		t.Fatal(err)
	}
	var want []uint16
	for i := half; i < len(block.Transactions); i++ {
		want = append(want, uint16(i))
	}
	if !slices.Equal(p.Missing, want) {
		t.Fatalf("missing %v, want %v", p.Missing, want)
	}
	req := &MsgGetBlockTxn{BlockHash: block.BlockHash(), Indexes: p.Missing}
	var req2 MsgGetBlockTxn
	if err := req2.BtcDecode(bytes.NewReader(encode(t, req)), 0, 0); err != nil || !slices.Equal(req2.Indexes, want) {
		t.Fatalf("getblocktxn round trip: %v %v", req2.Indexes, err)
	}
	resp := &MsgBlockTxn{BlockHash: req.BlockHash}
	for _, i := range req2.Indexes {
		resp.Txs = append(resp.Txs, block.Transactions[i])
	}
	var resp2 MsgBlockTxn
	if err := resp2.BtcDecode(bytes.NewReader(encode(t, resp)), 0, 0); err != nil {
		t.Fatal(err)
	}
	full, err := p.Fill(&resp2)
	if err != nil {
		t.Fatal(err)
	}
	if full.Header.MerkleRoot != calcMerkleRoot(full) {
		t.Fatal("filled block's merkle root does not match")
	}
}

// TestCaptureMainnet426884: the 2722-byte capture of a 409-transaction
// mainnet block round-trips, and its 408 short IDs are the ones our key
// and SipHash compute from the block's wtxids.
func TestCaptureMainnet426884(t *testing.T) {
	raw := readFile(t, "bcoin-compact426884.bin")
	m := decodeCmpct(t, raw)
	if got := encode(t, m); !bytes.Equal(got, raw) {
		t.Fatal("re-encoded capture differs")
	}
	lines := readFile(t, "block426884-wtxids.txt")
	var header wire.BlockHeader
	var wtxids []chainhash.Hash
	for _, line := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		if h, ok := strings.CutPrefix(line, "# header "); ok {
			b, err := hex.DecodeString(h)
			if err != nil {
				t.Fatal(err)
			}
			if err := header.Deserialize(bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil || len(b) != 32 {
			t.Fatalf("bad wtxid line %q", line)
		}
		wtxids = append(wtxids, chainhash.Hash(b))
	}
	if len(wtxids) != 408 || len(m.ShortIDs) != 408 {
		t.Fatalf("%d wtxids, %d short IDs", len(wtxids), len(m.ShortIDs))
	}
	built := build(&header, m.Nonce, m.Prefilled[0].Tx, wtxids)
	if got := encode(t, built); !bytes.Equal(got, raw) {
		t.Fatal("compact block built from the block's wtxids differs from the capture")
	}
}

// TestElementsSegwitVector: a version 2 compact block of a segwit block:
// the coinbase is prefilled with its witness and the short ID is of the
// wtxid (the txid's would differ).
func TestElementsSegwitVector(t *testing.T) {
	v := readHexLines(t, "rust-bitcoin-elements-v2.hex")
	block := decodeBlock(t, v[0])
	const nonce = 18053200567810711460
	m := decodeCmpct(t, v[1])
	if m.Nonce != nonce || !m.Prefilled[0].Tx.HasWitness() {
		t.Fatalf("nonce %d, coinbase witness %v", m.Nonce, m.Prefilled[0].Tx.HasWitness())
	}
	built, err := NewCmpctBlock(block, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if got := encode(t, built); !bytes.Equal(got, v[1]) {
		t.Fatalf("built compact block differs:\n got %x\nwant %x", got, v[1])
	}
	k := NewKey(&block.Header, nonce)
	txid := block.Transactions[1].TxHash()
	if k.ShortID(&txid) == m.ShortIDs[0] {
		t.Fatal("short ID matches the txid: not a version 2 compact block")
	}
}

// TestCoreSendCmpct: the sendcmpct messages Core sent, whole, are what we
// write, and decode to what they say.
func TestCoreSendCmpct(t *testing.T) {
	msgs := readHexLines(t, "core-sendcmpct.hex")
	for i, want := range []MsgSendCmpct{{HighBandwidth: false, Version: 2}, {HighBandwidth: false, Version: 1}} {
		var buf bytes.Buffer
		if _, err := wire.WriteMessageWithEncodingN(&buf, &want, wire.ProtocolVersion, wire.MainNet,
			wire.WitnessEncoding); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), msgs[i]) {
			t.Fatalf("sendcmpct %d:\n got %x\nwant %x", i, buf.Bytes(), msgs[i])
		}
		var got MsgSendCmpct
		if err := got.BtcDecode(bytes.NewReader(msgs[i][24:]), 0, 0); err != nil || got != want {
			t.Fatalf("decoded %+v %v, want %+v", got, err, want)
		}
	}
}

// TestGetBlockTxnDifferential: rust-bitcoin's differential index vectors
// (written from Core's DifferenceFormatter) both ways, and its overflow
// cases refused.
func TestGetBlockTxnDifferential(t *testing.T) {
	for _, c := range []struct {
		enc     []byte
		indexes []uint16
	}{
		{[]byte{4, 0, 5, 1, 10}, []uint16{0, 6, 8, 19}},
		{[]byte{1, 0}, []uint16{0}},
		{[]byte{5, 0, 0, 0, 0, 0}, []uint16{0, 1, 2, 3, 4}},
		{[]byte{3, 1, 1, 1}, []uint16{1, 3, 5}},
		{[]byte{3, 0, 0, 253, 0, 1}, []uint16{0, 1, 258}},
	} {
		raw := append(make([]byte, 32), c.enc...)
		var m MsgGetBlockTxn
		if err := m.BtcDecode(bytes.NewReader(raw), 0, 0); err != nil || !slices.Equal(m.Indexes, c.indexes) {
			t.Errorf("decode %x = %v, %v; want %v", c.enc, m.Indexes, err, c.indexes)
		}
		if got := encode(t, &MsgGetBlockTxn{Indexes: c.indexes}); !bytes.Equal(got, raw) {
			t.Errorf("encode %v = %x, want %x", c.indexes, got[32:], c.enc)
		}
	}
	for _, enc := range [][]byte{
		{2, 255, 254, 255, 255, 255, 255, 255, 255, 255, 0},
		{1, 255, 255, 255, 255, 255, 255, 255, 255, 255},
	} {
		var m MsgGetBlockTxn
		if err := m.BtcDecode(bytes.NewReader(append(make([]byte, 32), enc...)), 0, 0); !errors.Is(err, ErrMalformed) {
			t.Errorf("decode %x: err %v, want ErrMalformed", enc, err)
		}
	}
}

// TestMalformed breaks every field of every message.
func TestMalformed(t *testing.T) {
	cmpct := readFile(t, "bcoin-compact898352.bin")
	var hash [32]byte
	for name, c := range map[string]struct {
		msg wire.Message
		raw []byte
	}{
		"sendcmpct short":              {&MsgSendCmpct{}, []byte{0, 2, 0, 0, 0, 0, 0, 0}},
		"cmpctblock empty":             {&MsgCmpctBlock{}, nil},
		"cmpctblock header cut":        {&MsgCmpctBlock{}, cmpct[:79]},
		"cmpctblock nonce cut":         {&MsgCmpctBlock{}, cmpct[:85]},
		"cmpctblock no id count":       {&MsgCmpctBlock{}, cmpct[:88]},
		"cmpctblock ids past end":      {&MsgCmpctBlock{}, append(bytes.Clone(cmpct[:88]), 0xfd, 0xff, 0xff, 1, 2, 3)},
		"cmpctblock id cut":            {&MsgCmpctBlock{}, cmpct[:92]},
		"cmpctblock prefilled cut":     {&MsgCmpctBlock{}, cmpct[:len(cmpct)-1]},
		"cmpctblock trailing":          {&MsgCmpctBlock{}, append(bytes.Clone(cmpct), 0)},
		"cmpctblock non-canonical":     {&MsgCmpctBlock{}, append(bytes.Clone(cmpct[:88]), 0xfd, 0x01, 0x00)},
		"cmpctblock prefilled count":   {&MsgCmpctBlock{}, append(bytes.Clone(cmpct[:88]), 0, 0xfe, 0xff, 0xff, 0xff, 0x00)},
		"cmpctblock index overflow":    {&MsgCmpctBlock{}, append(bytes.Clone(cmpct[:88]), append([]byte{0, 1, 0xfe, 0, 0, 1, 0}, make([]byte, 10)...)...)},
		"getblocktxn hash cut":         {&MsgGetBlockTxn{}, hash[:31]},
		"getblocktxn count past end":   {&MsgGetBlockTxn{}, append(hash[:], 3, 0, 0)},
		"getblocktxn index overflow":   {&MsgGetBlockTxn{}, append(hash[:], 2, 0xfd, 0xff, 0xff, 0)},
		"getblocktxn trailing":         {&MsgGetBlockTxn{}, append(hash[:], 1, 0, 0)},
		"blocktxn hash cut":            {&MsgBlockTxn{}, hash[:1]},
		"blocktxn count past end":      {&MsgBlockTxn{}, append(hash[:], 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
		"blocktxn tx cut":              {&MsgBlockTxn{}, append(hash[:], append([]byte{1}, make([]byte, 10)...)...)},
		"blocktxn huge count":          {&MsgBlockTxn{}, append(hash[:], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
		"cmpctblock over max payload":  {&MsgCmpctBlock{}, make([]byte, MaxPayload+1)},
		"getblocktxn over max payload": {&MsgGetBlockTxn{}, make([]byte, MaxPayload+1)},
	} {
		err := c.msg.BtcDecode(bytes.NewReader(c.raw), wire.ProtocolVersion, wire.WitnessEncoding)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

// TestReconstructRefuses: what Core's PartiallyDownloadedBlock refuses, and
// a pool collision left missing.
func TestReconstructRefuses(t *testing.T) {
	block := decodeBlock(t, readFile(t, "bcoin-block898352.bin"))
	m, err := NewCmpctBlock(block, 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Reconstruct(&MsgCmpctBlock{}, nil); err == nil {
		t.Error("empty compact block rebuilt")
	}
	bad := *m
	bad.Prefilled = []PrefilledTx{{Index: uint16(m.TxCount()), Tx: block.Transactions[0]}}
	if _, err := Reconstruct(&bad, nil); err == nil {
		t.Error("prefilled index past the block accepted")
	}
	dup := *m
	dup.ShortIDs = append([]uint64{m.ShortIDs[0]}, m.ShortIDs[:len(m.ShortIDs)-1]...)
	if _, err := Reconstruct(&dup, nil); err == nil {
		t.Error("colliding short IDs accepted")
	}
	// The same transaction twice in the pool claims one slot twice.
	p, err := Reconstruct(m, []*wire.MsgTx{block.Transactions[1], block.Transactions[1]})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Missing) != len(block.Transactions)-1 || p.Missing[0] != 1 {
		t.Fatalf("missing %v", p.Missing)
	}
	if _, err := p.Fill(&MsgBlockTxn{}); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Fill with too few: %v", err)
	}
}

// calcMerkleRoot is the txid merkle root of b.
func calcMerkleRoot(b *wire.MsgBlock) chainhash.Hash {
	return blockchain.CalcMerkleRoot(btcutil.NewBlock(b).Transactions(), false)
}
