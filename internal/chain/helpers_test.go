package chain

import (
	"bytes"
	"compress/bzip2"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// realBlockFiles are real mainnet blocks copied from btcd v0.24.2 and
// btcutil v1.1.6 into testdata, with their hashes: blocks 100,000 and
// 277,647 (pre-segwit), 574,200 (3,315 transactions) and 540,107 (230).
var realBlockFiles = []struct {
	file   string
	hash   string
	segwit bool
}{
	{"block-100000.blk", "000000000003ba27aa200b1cecaad478d2b00432346c3f1f3986da1afd33e506", false},
	{"block-277647.dat.bz2", "0000000000000000054a714e580b16c583701712ab91060e92dbde6eb1e052a8", false},
	{"block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk",
		"0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2", true},
	{"block-00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab.blk",
		"00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab", true},
}

// loadBlock reads a real block from testdata. Files ending in .dat.bz2 are
// bzip2-compressed bitcoind block files (network magic, length, block).
func loadBlock(tb testing.TB, file string) *wire.MsgBlock {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		tb.Fatal(err)
	}
	if strings.HasSuffix(file, ".dat.bz2") {
		r := bzip2.NewReader(bytes.NewReader(raw))
		var frame [8]byte
		if _, err := io.ReadFull(r, frame[:]); err != nil {
			tb.Fatalf("%s: read frame: %v", file, err)
		}
		if magic := binary.LittleEndian.Uint32(frame[:4]); magic != uint32(wire.MainNet) {
			tb.Fatalf("%s: magic %08x", file, magic)
		}
		raw = make([]byte, binary.LittleEndian.Uint32(frame[4:]))
		if _, err := io.ReadFull(r, raw); err != nil {
			tb.Fatalf("%s: read block: %v", file, err)
		}
	}
	var b wire.MsgBlock
	if err := b.Deserialize(bytes.NewReader(raw)); err != nil {
		tb.Fatalf("%s: %v", file, err)
	}
	return &b
}

// templateFromBlock returns a template carrying a real block's
// transactions, on the block's parent, paying what its coinbase paid.
func templateFromBlock(b *wire.MsgBlock, height int32) *Template {
	var value int64
	for _, out := range b.Transactions[0].TxOut {
		value += out.Value
	}
	txs := make([]*btcutil.Tx, 0, len(b.Transactions)-1)
	for _, tx := range b.Transactions[1:] {
		txs = append(txs, btcutil.NewTx(tx))
	}
	return &Template{
		Height:        height,
		PrevHash:      b.Header.PrevBlock,
		Version:       b.Header.Version,
		Bits:          b.Header.Bits,
		MinTime:       b.Header.Timestamp.Add(-time.Hour),
		CurTime:       b.Header.Timestamp,
		CoinbaseValue: value,
		Transactions:  txs,
	}
}

// fakeTx returns a distinct non-coinbase transaction; with witness set, its
// input carries witness data.
func fakeTx(seed uint32, witness bool) *btcutil.Tx {
	tx := wire.NewMsgTx(2)
	var prev chainhash.Hash
	binary.LittleEndian.PutUint32(prev[:], seed+1)
	in := wire.NewTxIn(wire.NewOutPoint(&prev, seed), nil, nil)
	if witness {
		in.Witness = wire.TxWitness{bytes.Repeat([]byte{0x30}, 71), bytes.Repeat([]byte{0x02}, 33)}
	} else {
		in.SignatureScript = []byte{0x51}
	}
	tx.AddTxIn(in)
	tx.AddTxOut(wire.NewTxOut(int64(seed)+1000, []byte{0x00, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}))
	tx.LockTime = seed
	return btcutil.NewTx(tx)
}
