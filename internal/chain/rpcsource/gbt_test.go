package rpcsource

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
)

// realBlockFile is mainnet block 574,200 (see testdata/README.md).
const (
	realBlockFile   = "block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk"
	realBlockHeight = 574200
)

// loadRealBlock reads the real mainnet block.
func loadRealBlock(t testing.TB) *wire.MsgBlock {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", realBlockFile))
	if err != nil {
		t.Fatal(err)
	}
	var b wire.MsgBlock
	if err := b.Deserialize(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	return &b
}

// coinbaseHeight reads the BIP34 height push of a coinbase.
func coinbaseHeight(t testing.TB, cb *wire.MsgTx) int64 {
	t.Helper()
	sig := cb.TxIn[0].SignatureScript
	n := int(sig[0])
	if n < 1 || n > 4 || len(sig) < 1+n {
		t.Fatalf("coinbase height push %x", sig[:min(len(sig), 5)])
	}
	var h int64
	for i := n; i >= 1; i-- {
		h = h<<8 | int64(sig[i])
	}
	return h
}

// coinbaseCommitment returns the witness commitment output script of a
// coinbase (the last output with the magic prefix).
func coinbaseCommitment(t testing.TB, cb *wire.MsgTx) []byte {
	t.Helper()
	var script []byte
	for _, out := range cb.TxOut {
		if len(out.PkScript) >= 38 && bytes.HasPrefix(out.PkScript, blockchain.WitnessMagicBytes) {
			script = out.PkScript[:38]
		}
	}
	if script == nil {
		t.Fatal("block has no witness commitment")
	}
	return script
}

// coreReplyFromBlock turns a real block into a getblocktemplate reply in
// Bitcoin Core's format: the block's transactions (data, txid, hash,
// depends, fee, sigops, weight), its header fields, the coinbase's value
// and witness commitment. Core's fees come from the spent outputs, which a
// block alone does not have: the block's fee total (coinbase value less
// the subsidy) is spread over the transactions, the remainder on the first.
func coreReplyFromBlock(t testing.TB, b *wire.MsgBlock, height int64, params *chaincfg.Params) map[string]any {
	t.Helper()
	cb := b.Transactions[0]
	var value int64
	for _, out := range cb.TxOut {
		value += out.Value
	}
	txs := b.Transactions[1:]
	feeTotal := value - blockchain.CalcBlockSubsidy(int32(height), params)
	if feeTotal < 0 {
		t.Fatalf("coinbase pays %d, below the subsidy", value)
	}
	index := make(map[string]int, len(txs))
	list := make([]any, 0, len(txs))
	for i, msg := range txs {
		tx := btcutil.NewTx(msg)
		index[tx.Hash().String()] = i + 1
		var data bytes.Buffer
		if err := msg.Serialize(&data); err != nil {
			t.Fatal(err)
		}
		depends := []int{}
		for _, in := range msg.TxIn {
			if d, ok := index[in.PreviousOutPoint.Hash.String()]; ok && !containsInt(depends, d) {
				depends = append(depends, d)
			}
		}
		fee := feeTotal / int64(len(txs))
		if i == 0 {
			fee += feeTotal % int64(len(txs))
		}
		list = append(list, map[string]any{
			"data":    hex.EncodeToString(data.Bytes()),
			"txid":    tx.Hash().String(),
			"hash":    tx.WitnessHash().String(),
			"depends": depends,
			"fee":     fee,
			"sigops":  4 * blockchain.CountSigOps(tx),
			"weight":  blockchain.GetTransactionWeight(tx),
		})
	}
	h := b.Header
	return map[string]any{
		"capabilities":               []string{"proposal"},
		"version":                    uint32(h.Version),
		"rules":                      []string{"csv", "!segwit", "taproot"},
		"vbavailable":                map[string]any{},
		"vbrequired":                 0,
		"previousblockhash":          h.PrevBlock.String(),
		"transactions":               list,
		"coinbaseaux":                map[string]any{},
		"coinbasevalue":              value,
		"longpollid":                 h.PrevBlock.String() + "1234",
		"target":                     fmt.Sprintf("%064x", blockchain.CompactToBig(h.Bits)),
		"mintime":                    h.Timestamp.Unix() - 3600,
		"mutable":                    []string{"time", "transactions", "prevblock"},
		"noncerange":                 "00000000ffffffff",
		"sigoplimit":                 80000,
		"sizelimit":                  4000000,
		"weightlimit":                4000000,
		"curtime":                    h.Timestamp.Unix(),
		"bits":                       fmt.Sprintf("%08x", h.Bits),
		"height":                     height,
		"default_witness_commitment": hex.EncodeToString(coinbaseCommitment(t, cb)),
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// mustJSON marshals v.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTemplateFromRealBlock decodes a Core-format reply built from real
// block 574,200 and checks every field against the block, and that the job
// built from it commits to the same witness root the real miner did.
func TestTemplateFromRealBlock(t *testing.T) {
	b := loadRealBlock(t)
	cb := b.Transactions[0]
	if h := coinbaseHeight(t, cb); h != realBlockHeight {
		t.Fatalf("coinbase height %d", h)
	}
	if w := cb.TxIn[0].Witness; len(w) != 1 || !bytes.Equal(w[0], make([]byte, 32)) {
		t.Fatalf("real coinbase witness reserved value %x is not zero", w)
	}
	reply := coreReplyFromBlock(t, b, realBlockHeight, &chaincfg.MainNetParams)
	tmpl, lpid, err := templateFromGBT(mustJSON(t, reply), &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	if lpid != reply["longpollid"] {
		t.Errorf("longpollid %q", lpid)
	}
	h := b.Header
	if tmpl.Height != realBlockHeight || tmpl.PrevHash != h.PrevBlock || tmpl.Bits != h.Bits ||
		tmpl.Version != h.Version || !tmpl.CurTime.Equal(h.Timestamp) ||
		tmpl.MinTime.Unix() != h.Timestamp.Unix()-3600 || tmpl.CoinbaseValue != reply["coinbasevalue"] {
		t.Fatalf("template header fields %+v", tmpl)
	}
	if len(tmpl.Transactions) != len(b.Transactions)-1 || len(tmpl.Fees) != len(tmpl.Transactions) ||
		len(tmpl.SigOpCosts) != len(tmpl.Transactions) {
		t.Fatalf("%d transactions, %d fees, %d sigops", len(tmpl.Transactions), len(tmpl.Fees), len(tmpl.SigOpCosts))
	}
	for i, tx := range tmpl.Transactions {
		want := b.Transactions[i+1]
		if *tx.Hash() != want.TxHash() || *tx.WitnessHash() != want.WitnessHash() {
			t.Fatalf("transaction %d: %s, want %s", i, tx.Hash(), want.TxHash())
		}
	}
	if !tmpl.HasWitness() {
		t.Fatal("real segwit block decoded without witnesses")
	}
	job, err := chain.NewJob("1", tmpl, chain.CoinbaseConfig{PayoutScript: []byte{0x51}, Extranonce1Size: 4, Extranonce2Size: 4})
	if err != nil {
		t.Fatal(err)
	}
	if want := coinbaseCommitment(t, cb); !bytes.Equal(job.WitnessCommitment, want) {
		t.Fatalf("job commitment %x, the real block's %x", job.WitnessCommitment, want)
	}
}

// TestTemplateFromBtcdFormat decodes btcd's variant of the reply: bits not
// zero-padded, the default witness commitment as the bare 32 bytes.
func TestTemplateFromBtcdFormat(t *testing.T) {
	// Regtest block 1 template as btcd v0.24.2 formats it.
	reply := map[string]any{
		"bits": "207fffff", "curtime": 1718000000, "height": 1,
		"previousblockhash": chaincfg.RegressionNetParams.GenesisHash.String(),
		"sigoplimit":        80000, "sizelimit": 4000000, "weightlimit": 4000000,
		"transactions": []any{}, "version": 536870912, "coinbaseaux": map[string]any{"flags": "0b2f503253482f627463642f"},
		"coinbasevalue": 5000000000, "longpollid": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206-1718000000",
		"target":  "7fffff0000000000000000000000000000000000000000000000000000000000",
		"maxtime": 1718007200, "mintime": 1296688603, "mutable": []string{"time", "transactions/add", "prevblock", "coinbase/append"},
		"noncerange": "00000000ffffffff", "capabilities": []string{"proposal"},
		"default_witness_commitment": "e2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9",
	}
	tmpl, _, err := templateFromGBT(mustJSON(t, reply), &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.Height != 1 || tmpl.Bits != 0x207fffff || tmpl.PrevHash != *chaincfg.RegressionNetParams.GenesisHash ||
		len(tmpl.Fees) != 0 || len(tmpl.Transactions) != 0 {
		t.Fatalf("template %+v", tmpl)
	}
	reply["bits"] = "7fffff" // unpadded as btcd writes it; exponent 0 is a zero target
	if _, _, err := templateFromGBT(mustJSON(t, reply), &chaincfg.RegressionNetParams); !errors.Is(err, ErrBadReply) {
		t.Fatalf("zero target accepted: %v", err)
	}
}

// TestTemplateFromGBTRejects breaks every field of a reply made from the
// real block's first 40 transactions (with the witness commitment over
// those) and expects ErrBadReply each time.
func TestTemplateFromGBTRejects(t *testing.T) {
	b := loadRealBlock(t)
	b.Transactions = b.Transactions[:41]
	base := coreReplyFromBlock(t, b, realBlockHeight, &chaincfg.MainNetParams)
	delete(base, "default_witness_commitment")
	tmpl, _, err := templateFromGBT(mustJSON(t, base), &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	job, err := chain.NewJob("1", tmpl, chain.CoinbaseConfig{PayoutScript: []byte{0x51}, Extranonce1Size: 4, Extranonce2Size: 4})
	if err != nil || job.WitnessCommitment == nil {
		t.Fatalf("job %v, %v", job, err)
	}
	base["default_witness_commitment"] = hex.EncodeToString(job.WitnessCommitment)
	if _, _, err := templateFromGBT(mustJSON(t, base), &chaincfg.MainNetParams); err != nil {
		t.Fatalf("base reply: %v", err)
	}
	txs := base["transactions"].([]any)
	tx := func(i int) map[string]any { return maps.Clone(txs[i].(map[string]any)) }
	withTx := func(i int, k string, v any) []any {
		c := append([]any(nil), txs...)
		m := tx(i)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		c[i] = m
		return c
	}
	coinbaseHex := func() string {
		var buf bytes.Buffer
		b.Transactions[0].Serialize(&buf)
		return hex.EncodeToString(buf.Bytes())
	}()
	data0 := tx(0)["data"].(string)

	cases := []struct {
		name  string
		field string
		value any // nil deletes the field
	}{
		{"no version", "version", nil},
		{"no previousblockhash", "previousblockhash", nil},
		{"no transactions", "transactions", nil},
		{"no coinbasevalue", "coinbasevalue", nil},
		{"no mintime", "mintime", nil},
		{"no curtime", "curtime", nil},
		{"no bits", "bits", nil},
		{"no height", "height", nil},
		{"version zero", "version", 0},
		{"version too big", "version", int64(1) << 32},
		{"version string", "version", "536870912"},
		{"height zero", "height", 0},
		{"height too big", "height", int64(1) << 31},
		{"height fraction", "height", 1.5},
		{"prevhash short", "previousblockhash", strings.Repeat("ab", 31)},
		{"prevhash not hex", "previousblockhash", strings.Repeat("zz", 32)},
		{"bits not hex", "bits", "17zz1234"},
		{"bits too long", "bits", "1d00ffff0"},
		{"bits empty", "bits", ""},
		{"bits negative", "bits", "1d80ffff"},
		{"bits above pow limit", "bits", "2100ffff"},
		{"target mismatch", "target", strings.Repeat("0", 63) + "1"},
		{"target not hex", "target", "xyz"},
		{"mintime zero", "mintime", 0},
		{"curtime too big", "curtime", int64(1) << 32},
		{"coinbasevalue negative", "coinbasevalue", -1},
		{"coinbasevalue above supply", "coinbasevalue", int64(btcutil.MaxSatoshi) + 1},
		{"coinbasevalue above subsidy plus fees", "coinbasevalue", base["coinbasevalue"].(int64) + 1},
		{"commitment mismatch", "default_witness_commitment", "6a24aa21a9ed" + strings.Repeat("00", 32)},
		{"commitment bad length", "default_witness_commitment", "6a24aa21a9ed00"},
		{"commitment not hex", "default_witness_commitment", "6a24aa21a9edzz"},
		{"transactions not a list", "transactions", "none"},
		{"tx data not hex", "transactions", withTx(0, "data", "zz")},
		{"tx data odd length", "transactions", withTx(0, "data", data0[:len(data0)-1])},
		{"tx data truncated", "transactions", withTx(0, "data", data0[:len(data0)/2])},
		{"tx data trailing bytes", "transactions", withTx(0, "data", data0+"00")},
		{"tx is a coinbase", "transactions", withTx(0, "data", coinbaseHex)},
		{"tx txid mismatch", "transactions", withTx(0, "txid", tx(1)["txid"])},
		{"tx hash mismatch", "transactions", withTx(0, "hash", tx(1)["hash"])},
		{"tx depends forward", "transactions", withTx(3, "depends", []int{4})},
		{"tx depends zero", "transactions", withTx(3, "depends", []int{0})},
		{"tx weight mismatch", "transactions", withTx(0, "weight", 1)},
		{"tx fee negative", "transactions", withTx(0, "fee", -1)},
		{"tx sigops too many", "transactions", withTx(0, "sigops", 80001)},
		{"tx duplicate", "transactions", append(append([]any(nil), txs...), txs[5])},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := maps.Clone(base)
			if c.value == nil {
				delete(r, c.field)
			} else {
				r[c.field] = c.value
			}
			_, _, err := templateFromGBT(mustJSON(t, r), &chaincfg.MainNetParams)
			if !errors.Is(err, ErrBadReply) {
				t.Fatalf("got %v, want ErrBadReply", err)
			}
		})
	}
	for _, raw := range []string{``, `null`, `[]`, `"template"`, `{"version":`, `{}`} {
		if _, _, err := templateFromGBT([]byte(raw), &chaincfg.MainNetParams); !errors.Is(err, ErrBadReply) {
			t.Errorf("%q: got %v, want ErrBadReply", raw, err)
		}
	}
	// A fee-less reply (btcd can omit them) is fine, and then the
	// coinbase value is not checked against fees.
	r := maps.Clone(base)
	r["transactions"] = withTx(0, "fee", nil)
	tmpl, _, err = templateFromGBT(mustJSON(t, r), &chaincfg.MainNetParams)
	if err != nil || tmpl.Fees != nil || tmpl.SigOpCosts == nil {
		t.Fatalf("fee-less reply: fees %v, err %v", tmpl, err)
	}
}

// FuzzTemplateFromGBT feeds arbitrary replies to the decoder: it never
// panics, and whatever it accepts becomes a job.
func FuzzTemplateFromGBT(f *testing.F) {
	raw, err := os.ReadFile("testdata/core/getblocktemplate-regtest.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(`{"version":1,"previousblockhash":"0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",` +
		`"transactions":[{"data":"01000000010000000000000000000000000000000000000000000000000000000000000000010000000151ffffffff010000000000000000015100000000"}],` +
		`"coinbasevalue":1,"mintime":1,"curtime":2,"bits":"207fffff","height":1}`))
	f.Add([]byte(`{}`))
	cfg := chain.CoinbaseConfig{PayoutScript: []byte{0x51}, Extranonce1Size: 4, Extranonce2Size: 4}
	f.Fuzz(func(t *testing.T, data []byte) {
		tmpl, _, err := templateFromGBT(data, &chaincfg.RegressionNetParams)
		if err != nil {
			if !errors.Is(err, ErrBadReply) {
				t.Fatalf("error not wrapping ErrBadReply: %v", err)
			}
			return
		}
		if _, err := chain.NewJob("f", tmpl, cfg); err != nil {
			t.Fatalf("accepted template makes no job: %v", err)
		}
	})
}
