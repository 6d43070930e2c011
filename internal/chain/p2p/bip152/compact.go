package bip152

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/aead/siphash"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// shortIDMask keeps the low 48 bits of a SipHash.
const shortIDMask = 1<<48 - 1

// ErrIncomplete is returned by Fill when transactions are still missing.
var ErrIncomplete = errors.New("bip152: compact block incomplete")

// Key is the SipHash-2-4 key of a compact block's short IDs: the first 16
// bytes of SHA-256(header || nonce as 8 little-endian bytes), that is
// Core's shorttxidk0 and shorttxidk1 in little-endian order.
type Key [16]byte

// NewKey derives the short ID key for header and nonce.
func NewKey(header *wire.BlockHeader, nonce uint64) Key {
	var buf bytes.Buffer
	buf.Grow(wire.MaxBlockHeaderPayload + 8)
	_ = header.Serialize(&buf) // a bytes.Buffer does not fail
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], nonce)
	buf.Write(n[:])
	sum := sha256.Sum256(buf.Bytes())
	var k Key
	copy(k[:], sum[:16])
	return k
}

// ShortID is the short ID of the transaction with witness hash wtxid
// under k: SipHash-2-4 of the 32 hash bytes, low 48 bits.
func (k *Key) ShortID(wtxid *chainhash.Hash) uint64 {
	return siphash.Sum64(wtxid[:], (*[16]byte)(k)) & shortIDMask
}

// NewCmpctBlock builds the version 2 compact block of b with nonce the
// way Core's CBlockHeaderAndShortTxIDs does: the coinbase prefilled at
// index 0, a short ID of the wtxid of every other transaction.
func NewCmpctBlock(b *wire.MsgBlock, nonce uint64) (*MsgCmpctBlock, error) {
	if len(b.Transactions) == 0 {
		return nil, errors.New("bip152: block without transactions")
	}
	if len(b.Transactions) > MaxTxCount {
		return nil, fmt.Errorf("bip152: block of %d transactions", len(b.Transactions))
	}
	wtxids := make([]chainhash.Hash, len(b.Transactions)-1)
	for i, tx := range b.Transactions[1:] {
		wtxids[i] = tx.WitnessHash()
	}
	return build(&b.Header, nonce, b.Transactions[0], wtxids), nil
}

// build makes a compact block from a header, the coinbase and the wtxids
// of the other transactions.
func build(header *wire.BlockHeader, nonce uint64, coinbase *wire.MsgTx, wtxids []chainhash.Hash) *MsgCmpctBlock {
	k := NewKey(header, nonce)
	m := &MsgCmpctBlock{
		Header:    *header,
		Nonce:     nonce,
		ShortIDs:  make([]uint64, len(wtxids)),
		Prefilled: []PrefilledTx{{Index: 0, Tx: coinbase}},
	}
	for i := range wtxids {
		m.ShortIDs[i] = k.ShortID(&wtxids[i])
	}
	return m
}

// Partial is a block being rebuilt from a compact block (Core's
// PartiallyDownloadedBlock). Txs holds the transactions found, nil where
// one is missing; Missing lists those indexes, increasing, ready for a
// getblocktxn.
type Partial struct {
	Header  wire.BlockHeader
	Txs     []*wire.MsgTx
	Missing []uint16
}

// Reconstruct places m's prefilled transactions and matches pool's
// transactions against m's short IDs by wtxid. Like Core it refuses a
// compact block that addresses no transaction, a prefilled index past the
// block, and a block whose own short IDs collide; a short ID matched by two
// pool transactions is left missing.
func Reconstruct(m *MsgCmpctBlock, pool []*wire.MsgTx) (*Partial, error) {
	count := m.TxCount()
	if count == 0 {
		return nil, malformed("cmpctblock with no transactions")
	}
	if count > MaxTxCount {
		return nil, malformed("cmpctblock of %d transactions", count)
	}
	p := &Partial{Header: m.Header, Txs: make([]*wire.MsgTx, count)}
	prefilled := make([]bool, count)
	for i, pt := range m.Prefilled {
		if int(pt.Index) >= count || pt.Tx == nil || prefilled[pt.Index] {
			return nil, malformed("prefilled transaction %d at index %d of %d", i, pt.Index, count)
		}
		p.Txs[pt.Index] = pt.Tx
		prefilled[pt.Index] = true
	}
	// slot[shortID] = block index of the transaction it stands for.
	slot := make(map[uint64]int, len(m.ShortIDs))
	pos := 0
	for _, id := range m.ShortIDs {
		for prefilled[pos] {
			pos++
		}
		if _, dup := slot[id]; dup {
			return nil, malformed("short ID collision in cmpctblock")
		}
		slot[id] = pos
		pos++
	}
	k := NewKey(&m.Header, m.Nonce)
	seen := make(map[int]bool, len(m.ShortIDs))
	for _, tx := range pool {
		wtxid := tx.WitnessHash()
		i, ok := slot[k.ShortID(&wtxid)]
		if !ok {
			continue
		}
		if seen[i] {
			p.Txs[i] = nil // two pool transactions claim it: ask for it
			continue
		}
		seen[i] = true
		p.Txs[i] = tx
	}
	for i, tx := range p.Txs {
		if tx == nil {
			p.Missing = append(p.Missing, uint16(i))
		}
	}
	return p, nil
}

// Fill completes p with the transactions of a blocktxn answering p's
// Missing, and returns the block. The caller checks the merkle root (Core:
// a mismatch means a short ID collision, and the block is fetched whole).
func (p *Partial) Fill(bt *MsgBlockTxn) (*wire.MsgBlock, error) {
	if len(bt.Txs) != len(p.Missing) {
		return nil, fmt.Errorf("%w: %d transactions for %d missing", ErrIncomplete, len(bt.Txs), len(p.Missing))
	}
	for i, idx := range p.Missing {
		p.Txs[idx] = bt.Txs[i]
	}
	p.Missing = nil
	return p.Block()
}

// Block returns the block once no transaction is missing.
func (p *Partial) Block() (*wire.MsgBlock, error) {
	if len(p.Missing) > 0 {
		return nil, fmt.Errorf("%w: %d missing", ErrIncomplete, len(p.Missing))
	}
	return &wire.MsgBlock{Header: p.Header, Transactions: p.Txs}, nil
}
