package chain

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// p2wpkh is a payout script used by the tests.
var p2wpkh = append([]byte{0x00, 0x14}, bytes.Repeat([]byte{0xab}, 20)...)

func smallTemplate(height int32, txs ...*btcutil.Tx) *Template {
	return &Template{
		Height:        height,
		PrevHash:      chainhash.Hash{1, 2, 3},
		Version:       0x20000000,
		Bits:          0x207fffff,
		MinTime:       time.Unix(1_700_000_000, 0),
		CurTime:       time.Unix(1_700_000_100, 0),
		CoinbaseValue: 312_500_000 + 12_345,
		Transactions:  txs,
	}
}

func testConfig() CoinbaseConfig {
	return CoinbaseConfig{PayoutScript: p2wpkh, Tag: "/stratumd/", Extranonce1Size: 4, Extranonce2Size: 8}
}

// assembledCoinbase returns the coinbase of j for the given extranonces.
func assembledCoinbase(t *testing.T, j *Job, en1, en2 []byte) *wire.MsgTx {
	t.Helper()
	b, err := j.Block(en1, en2, 1_700_000_100, 7, 0x20000000)
	if err != nil {
		t.Fatal(err)
	}
	return b.Transactions[0]
}

// scriptPushes parses a scriptSig into its pushed data; every opcode must be
// a push.
func scriptPushes(t *testing.T, script []byte) [][]byte {
	t.Helper()
	var out [][]byte
	tok := txscript.MakeScriptTokenizer(0, script)
	for tok.Next() {
		op := tok.Opcode()
		switch {
		case op == txscript.OP_0:
			out = append(out, nil)
		case op >= txscript.OP_1 && op <= txscript.OP_16:
			out = append(out, []byte{op - txscript.OP_1 + 1})
		case op <= txscript.OP_PUSHDATA4:
			out = append(out, tok.Data())
		default:
			t.Fatalf("non-push opcode %x in %x", op, script)
		}
	}
	if err := tok.Err(); err != nil {
		t.Fatalf("parse %x: %v", script, err)
	}
	return out
}

func TestCoinbaseBIP34Height(t *testing.T) {
	// Minimal CScriptNum pushes, as Bitcoin Core's CScript() << height.
	tests := []struct {
		height int32
		want   string
	}{
		{1, "51"}, {2, "52"}, {3, "53"}, {4, "54"}, {5, "55"}, {6, "56"}, {7, "57"}, {8, "58"},
		{9, "59"}, {10, "5a"}, {11, "5b"}, {12, "5c"}, {13, "5d"}, {14, "5e"}, {15, "5f"},
		{16, "60"}, {17, "0111"}, {127, "017f"}, {128, "028000"}, {255, "02ff00"},
		{256, "020001"}, {65535, "03ffff00"}, {65536, "03000001"}, {500000, "0320a107"},
		{840000, "0340d10c"},
	}
	for _, tc := range tests {
		job, err := NewJob("j", smallTemplate(tc.height), testConfig())
		if err != nil {
			t.Fatalf("height %d: %v", tc.height, err)
		}
		want, _ := hex.DecodeString(tc.want)
		// txscript's minimal encoding agrees with the table.
		if s, _ := txscript.NewScriptBuilder().AddInt64(int64(tc.height)).Script(); !bytes.Equal(s, want) {
			t.Fatalf("height %d: txscript %x, table %x", tc.height, s, want)
		}
		cb := assembledCoinbase(t, job, make([]byte, 4), make([]byte, 8))
		script := cb.TxIn[0].SignatureScript
		if !bytes.HasPrefix(script, want) {
			t.Fatalf("height %d: scriptSig %x does not start with %x", tc.height, script, want)
		}
		got, err := blockchain.ExtractCoinbaseHeight(btcutil.NewTx(cb))
		if err != nil || got != tc.height {
			t.Fatalf("height %d: btcd extracts %d, %v", tc.height, got, err)
		}
		if err := blockchain.CheckTransactionSanity(btcutil.NewTx(cb)); err != nil {
			t.Fatalf("height %d: %v", tc.height, err)
		}
	}
}

func TestCoinbaseLayout(t *testing.T) {
	tmpl := smallTemplate(840000)
	job, err := NewJob("j", tmpl, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	en1 := []byte{0xe1, 0xe2, 0xe3, 0xe4}
	en2 := []byte{0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8}
	cb := assembledCoinbase(t, job, en1, en2)

	// The assembled bytes are exactly the non-witness serialization.
	var ser bytes.Buffer
	if err := cb.SerializeNoWitness(&ser); err != nil {
		t.Fatal(err)
	}
	joined := bytes.Join([][]byte{job.Coinb1, en1, en2, job.Coinb2}, nil)
	if !bytes.Equal(ser.Bytes(), joined) {
		t.Fatalf("serialization %x\nwant coinb1||en||coinb2 %x", ser.Bytes(), joined)
	}
	// Coinb1 ends with the extranonce push opcode, right after the height.
	if got := job.Coinb1[len(job.Coinb1)-1]; got != 12 {
		t.Fatalf("push opcode before the slot %x, want 0c", got)
	}
	pushes := scriptPushes(t, cb.TxIn[0].SignatureScript)
	if len(pushes) != 3 {
		t.Fatalf("want height, extranonce, tag pushes; got %x", pushes)
	}
	if want := append(append([]byte{}, en1...), en2...); !bytes.Equal(pushes[1], want) {
		t.Fatalf("extranonce push %x, want %x", pushes[1], want)
	}
	if string(pushes[2]) != "/stratumd/" {
		t.Fatalf("tag push %q", pushes[2])
	}

	in := cb.TxIn[0]
	if cb.Version != CoinbaseVersion || cb.LockTime != 0 || len(cb.TxIn) != 1 ||
		in.Sequence != wire.MaxTxInSequenceNum || in.PreviousOutPoint.Index != wire.MaxPrevOutIndex ||
		in.PreviousOutPoint.Hash != (chainhash.Hash{}) {
		t.Fatalf("coinbase shape: version %d locktime %d input %+v", cb.Version, cb.LockTime, in)
	}
	if len(cb.TxOut) != 1 || cb.TxOut[0].Value != tmpl.CoinbaseValue || !bytes.Equal(cb.TxOut[0].PkScript, p2wpkh) {
		t.Fatalf("outputs %+v, want one paying %d to %x", cb.TxOut, tmpl.CoinbaseValue, p2wpkh)
	}
	if job.WitnessCommitment != nil || len(in.Witness) != 0 {
		t.Fatalf("no witness txs, yet commitment %x / witness %x", job.WitnessCommitment, in.Witness)
	}

	// Stratum fields.
	if job.VersionHex != "20000000" || job.BitsHex != "207fffff" || job.NTimeHex != "6553f164" {
		t.Fatalf("version %s bits %s ntime %s", job.VersionHex, job.BitsHex, job.NTimeHex)
	}
	if job.Extranonce1Size != 4 || job.Extranonce2Size != 8 || job.ID != "j" || job.Template != tmpl {
		t.Fatalf("job fields %+v", job)
	}
	if job.Target.Big().Cmp(tmpl.Target()) != 0 {
		t.Fatalf("job target %x, want %x", job.Target.Big(), tmpl.Target())
	}
}

func TestCoinbaseWitnessOutputs(t *testing.T) {
	tmpl := smallTemplate(200, fakeTx(1, false), fakeTx(2, true), fakeTx(3, false))
	if !tmpl.HasWitness() {
		t.Fatal("template should have witness")
	}
	job, err := NewJob("w", tmpl, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	cb := assembledCoinbase(t, job, make([]byte, 4), make([]byte, 8))
	if len(cb.TxOut) != 2 {
		t.Fatalf("want payout and commitment outputs, got %d", len(cb.TxOut))
	}
	if cb.TxOut[0].Value != tmpl.CoinbaseValue || cb.TxOut[1].Value != 0 {
		t.Fatalf("values %d, %d", cb.TxOut[0].Value, cb.TxOut[1].Value)
	}
	c := cb.TxOut[1].PkScript
	if len(c) != 38 || !bytes.HasPrefix(c, []byte{0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed}) || !bytes.Equal(c, job.WitnessCommitment) {
		t.Fatalf("commitment output %x (job %x)", c, job.WitnessCommitment)
	}
	// Independently: sha256d(witness root over {0, wtxids...} || 0^32).
	blk := btcutil.NewBlock(&wire.MsgBlock{Transactions: []*wire.MsgTx{cb,
		tmpl.Transactions[0].MsgTx(), tmpl.Transactions[1].MsgTx(), tmpl.Transactions[2].MsgTx()}})
	blk.Transactions()[0].MsgTx().TxIn[0].Witness = wire.TxWitness{make([]byte, 32)}
	if err := blockchain.ValidateWitnessCommitment(blk); err != nil {
		t.Fatal(err)
	}
}

func TestCoinbaseTag(t *testing.T) {
	long := strings.Repeat("x", 200)
	euro := strings.Repeat("€", 60) // 3 bytes each
	tests := []struct {
		name    string
		height  int32
		tag     string
		en1     int
		en2     int
		wantTag string // "" means: a truncated prefix, checked below
	}{
		{"short", 840000, "/stratumd/", 4, 8, "/stratumd/"},
		{"empty", 840000, "", 4, 8, ""},
		{"truncated", 840000, long, 4, 8, strings.Repeat("x", 100-4-1-12-2)},
		// A small height leaves room for a PUSHDATA1 tag (over 75 bytes).
		{"pushdata1", 1, long, 1, 1, strings.Repeat("x", 100-1-1-2-2)},
		{"utf8", 840000, euro, 16, 16, strings.Repeat("€", (100-4-1-32-1)/3)},
		{"largest slot", 840000, "ab", 16, 16, "ab"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := CoinbaseConfig{PayoutScript: p2wpkh, Tag: tc.tag, Extranonce1Size: tc.en1, Extranonce2Size: tc.en2}
			job, err := NewJob("t", smallTemplate(tc.height), cfg)
			if err != nil {
				t.Fatal(err)
			}
			cb := assembledCoinbase(t, job, make([]byte, tc.en1), make([]byte, tc.en2))
			script := cb.TxIn[0].SignatureScript
			if len(script) > 100 {
				t.Fatalf("scriptSig of %d bytes", len(script))
			}
			pushes := scriptPushes(t, script)
			var tag string
			if len(pushes) == 3 {
				tag = string(pushes[2])
			} else if len(pushes) != 2 {
				t.Fatalf("pushes %x", pushes)
			}
			if tag != tc.wantTag {
				t.Fatalf("tag %q (%d bytes), want %q (%d)", tag, len(tag), tc.wantTag, len(tc.wantTag))
			}
			if !strings.HasPrefix(tc.tag, tag) || !utf8.ValidString(tag) {
				t.Fatalf("tag %q is not a whole-character prefix of %q", tag, tc.tag)
			}
		})
	}
}

func TestNewJobErrors(t *testing.T) {
	good := testConfig()
	coinbaseTx := wire.NewMsgTx(1)
	coinbaseTx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex}, SignatureScript: []byte{1, 2}})
	coinbaseTx.AddTxOut(wire.NewTxOut(1, []byte{0x51}))

	cfgTests := []struct {
		name string
		mod  func(*CoinbaseConfig)
	}{
		{"empty payout", func(c *CoinbaseConfig) { c.PayoutScript = nil }},
		{"huge payout", func(c *CoinbaseConfig) { c.PayoutScript = make([]byte, MaxPayoutScriptSize+1) }},
		{"en1 zero", func(c *CoinbaseConfig) { c.Extranonce1Size = 0 }},
		{"en1 17", func(c *CoinbaseConfig) { c.Extranonce1Size = 17 }},
		{"en2 zero", func(c *CoinbaseConfig) { c.Extranonce2Size = 0 }},
		{"en2 negative", func(c *CoinbaseConfig) { c.Extranonce2Size = -1 }},
	}
	for _, tc := range cfgTests {
		cfg := good
		tc.mod(&cfg)
		if _, err := NewJob("e", smallTemplate(10), cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err %v, want ErrInvalidConfig", tc.name, err)
		}
	}

	tmplTests := []struct {
		name string
		mod  func(*Template)
	}{
		{"height 0", func(t *Template) { t.Height = 0 }},
		{"negative height", func(t *Template) { t.Height = -5 }},
		{"negative value", func(t *Template) { t.CoinbaseValue = -1 }},
		{"value over max", func(t *Template) { t.CoinbaseValue = btcutil.MaxSatoshi + 1 }},
		{"zero bits", func(t *Template) { t.Bits = 0 }},
		{"negative bits", func(t *Template) { t.Bits = 0x04923456 }},
		{"time before 1970", func(t *Template) { t.CurTime = time.Unix(-1, 0) }},
		{"time after 2106", func(t *Template) { t.CurTime = time.Unix(1<<32, 0) }},
		{"nil tx", func(t *Template) { t.Transactions = []*btcutil.Tx{nil} }},
		{"coinbase tx", func(t *Template) { t.Transactions = []*btcutil.Tx{btcutil.NewTx(coinbaseTx)} }},
		{"fees length", func(t *Template) { t.Fees = []int64{1} }},
		{"sigops length", func(t *Template) { t.SigOpCosts = []int64{1, 2} }},
	}
	for _, tc := range tmplTests {
		tmpl := smallTemplate(10)
		tc.mod(tmpl)
		if _, err := NewJob("e", tmpl, good); !errors.Is(err, ErrInvalidTemplate) {
			t.Errorf("%s: err %v, want ErrInvalidTemplate", tc.name, err)
		}
	}
	if _, err := NewJob("e", nil, good); !errors.Is(err, ErrInvalidTemplate) {
		t.Errorf("nil template: err %v", err)
	}
}

func TestPrevHashStratum(t *testing.T) {
	// From the public stratum documentation's mining.notify example: the
	// block 00000000440b921e... is sent as 4d16b6f8...00000000.
	h, err := chainhash.NewHashFromStr("00000000440b921e1b77c6c0487ae5616de67f788f44ae2a5af6e2194d16b6f8")
	if err != nil {
		t.Fatal(err)
	}
	const want = "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000"
	if got := stratumPrevHash(h); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	tmpl := smallTemplate(5)
	tmpl.PrevHash = *h
	job, err := NewJob("p", tmpl, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if job.PrevHashStratum != want {
		t.Fatalf("job prevhash %s", job.PrevHashStratum)
	}
}

func TestMerkleBranchHex(t *testing.T) {
	tmpl := smallTemplate(10, fakeTx(1, false), fakeTx(2, false))
	job, err := NewJob("m", tmpl, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	got := job.MerkleBranchHex()
	// Level 0: the first txid, bytes in internal order (the reverse of its
	// display string).
	txid := tmpl.Transactions[0].Hash()
	display, _ := hex.DecodeString(txid.String())
	if len(got) != 2 || got[0] != hex.EncodeToString(reverse(display)) {
		t.Fatalf("branch hex %v, txid %v", got, txid)
	}
}

func TestMerkleBranchMatchesBtcd(t *testing.T) {
	cb := wire.NewMsgTx(1)
	cb.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex}, SignatureScript: []byte{1, 2, 3}})
	cb.AddTxOut(wire.NewTxOut(50, []byte{0x51}))
	for n := 0; n <= 33; n++ {
		txs := []*btcutil.Tx{btcutil.NewTx(cb)}
		txids := make([]chainhash.Hash, 0, n)
		for i := range n {
			tx := fakeTx(uint32(i), i%3 == 0)
			txs = append(txs, tx)
			txids = append(txids, *tx.Hash())
		}
		branch := merkleBranch(txids)
		got := foldBranch(cb.TxHash(), branch)
		if want := blockchain.CalcMerkleRoot(txs, false); got != want {
			t.Fatalf("%d txs: root %v, btcd %v", n, got, want)
		}
		all := make([]chainhash.Hash, 0, n+1)
		all = append(all, cb.TxHash())
		all = append(all, txids...)
		if got := merkleRoot(all); got != blockchain.CalcMerkleRoot(txs, false) {
			t.Fatalf("%d txs: merkleRoot %v", n, got)
		}
		// The branch has one entry per tree level above the leaves.
		wantLen := 0
		for m := n + 1; m > 1; m = (m + 1) / 2 {
			wantLen++
		}
		if len(branch) != wantLen {
			t.Fatalf("%d txs: branch of %d, want %d", n, len(branch), wantLen)
		}
	}
}

func TestSplitsRune(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want bool
	}{
		{"a€b", 1, false}, {"a€b", 2, true}, {"a€b", 3, true}, {"a€b", 4, false},
		{"\uFFFDx", 1, true}, {"\uFFFDx", 3, false},
		{"\xff\xff\xff", 1, false},     // not UTF-8: any cut
		{"a\xe2\x82", 2, false},        // truncated character in the input
		{"😀", 3, true}, {"😀", 1, true}, // 4-byte character
		{"ab", 0, false}, {"ab", 2, false},
	}
	for _, tc := range tests {
		if got := splitsRune(tc.s, tc.n); got != tc.want {
			t.Errorf("splitsRune(%q, %d) = %v, want %v", tc.s, tc.n, got, tc.want)
		}
	}
}

// TestCoinbaseRequiredWitnessCommitment: a template without witness data
// gets no commitment unless it requires one (signet, BIP 325); then the
// coinbase commits to the empty witness root, the value Core's
// getblocktemplate gives as default_witness_commitment for a coinbase-only
// block, and carries the witness reserved value.
func TestCoinbaseRequiredWitnessCommitment(t *testing.T) {
	tmpl := smallTemplate(200, fakeTx(1, false))
	job, err := NewJob("n", tmpl, testConfig())
	if err != nil || job.WitnessCommitment != nil {
		t.Fatalf("no-witness template: commitment %x, %v", job.WitnessCommitment, err)
	}
	if cb := assembledCoinbase(t, job, make([]byte, 4), make([]byte, 8)); len(cb.TxOut) != 1 || cb.HasWitness() {
		t.Fatalf("no-witness coinbase: %d outputs, witness %v", len(cb.TxOut), cb.HasWitness())
	}

	empty := smallTemplate(200)
	empty.RequireWitnessCommitment = true
	job, err = NewJob("s", empty, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	const coinbaseOnly = "6a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9"
	if got := hex.EncodeToString(job.WitnessCommitment); got != coinbaseOnly {
		t.Fatalf("commitment %s, want %s", got, coinbaseOnly)
	}
	b, err := job.Block(make([]byte, 4), make([]byte, 8), 1_700_000_100, 7, 0x20000000)
	if err != nil {
		t.Fatal(err)
	}
	cb := b.Transactions[0]
	if len(cb.TxOut) != 2 || !bytes.Equal(cb.TxOut[1].PkScript, job.WitnessCommitment) ||
		len(cb.TxIn[0].Witness) != 1 || !bytes.Equal(cb.TxIn[0].Witness[0], make([]byte, 32)) {
		t.Fatalf("coinbase outputs %d, witness %x", len(cb.TxOut), cb.TxIn[0].Witness)
	}
	if err := blockchain.ValidateWitnessCommitment(btcutil.NewBlock(b)); err != nil {
		t.Fatal(err)
	}
}
