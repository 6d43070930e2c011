package bip152

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// BenchmarkBuild426884 measures what pushing a found block as a compact
// block adds before the first write: the key and 408 short IDs of mainnet
// block 426,884, and the encoding.
func BenchmarkBuild426884(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "bcoin-compact426884.bin"))
	if err != nil {
		b.Fatal(err)
	}
	var capture MsgCmpctBlock
	if err := capture.BtcDecode(bytes.NewReader(raw), 0, 0); err != nil {
		b.Fatal(err)
	}
	lines, err := os.ReadFile(filepath.Join("testdata", "block426884-wtxids.txt"))
	if err != nil {
		b.Fatal(err)
	}
	var wtxids []chainhash.Hash
	for _, line := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		h, err := hex.DecodeString(line)
		if err != nil {
			b.Fatal(err)
		}
		wtxids = append(wtxids, chainhash.Hash(h))
	}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		m := build(&capture.Header, capture.Nonce, capture.Prefilled[0].Tx, wtxids)
		buf.Reset()
		if err := m.BtcEncode(&buf, wire.ProtocolVersion, wire.WitnessEncoding); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewCmpctBlock574200 measures NewCmpctBlock on mainnet block
// 574,200 (segwit, 3,315 transactions, 1.2 MB) from a fresh block, whose
// wtxids are computed: the worst case of a found block pushed to
// high-bandwidth peers.
func BenchmarkNewCmpctBlock574200(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata",
		"block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk"))
	if err != nil {
		b.Fatal(err)
	}
	var blk wire.MsgBlock
	if err := blk.Deserialize(bytes.NewReader(raw)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewCmpctBlock(&blk, 1); err != nil {
			b.Fatal(err)
		}
	}
}
