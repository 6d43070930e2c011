package bip152

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// Commands of the four BIP 152 messages.
const (
	CmdSendCmpct   = "sendcmpct"
	CmdCmpctBlock  = "cmpctblock"
	CmdGetBlockTxn = "getblocktxn"
	CmdBlockTxn    = "blocktxn"
)

// Protocol constants, named as in Bitcoin Core.
const (
	// Version is the compact block version this package builds
	// (CMPCTBLOCKS_VERSION: wtxid-based short IDs, witness transactions).
	Version uint64 = 2
	// ProtocolVersion is the lowest protocol version that speaks BIP 152
	// (SHORT_IDS_BLOCKS_VERSION).
	ProtocolVersion uint32 = 70014
	// InvalidCBNoBanVersion is the lowest protocol version a block is
	// pushed to as a compact block before it is validated
	// (INVALID_CB_NO_BAN_VERSION).
	InvalidCBNoBanVersion uint32 = 70015
	// InvTypeCmpctBlock is the getdata type asking for a cmpctblock
	// (MSG_CMPCT_BLOCK).
	InvTypeCmpctBlock wire.InvType = 4
	// MaxCmpctBlockDepth is how far below the tip a block is still served
	// as a compact block (MAX_CMPCTBLOCK_DEPTH).
	MaxCmpctBlockDepth = 5
	// MaxBlockTxnDepth is how far below the tip getblocktxn is still
	// answered with blocktxn (MAX_BLOCKTXN_DEPTH).
	MaxBlockTxnDepth = 10
	// ShortIDSize is the size of a short transaction ID on the wire.
	ShortIDSize = 6
	// MaxPayload bounds every BIP 152 payload
	// (MAX_PROTOCOL_MESSAGE_LENGTH).
	MaxPayload = 4_000_000
	// MaxTxCount bounds the transactions one compact block or request
	// addresses: indexes are 16 bits.
	MaxTxCount = math.MaxUint16
	// minTxSize is the smallest serialized transaction (version, two
	// empty counts, lock time), used to bound counts before allocating.
	minTxSize = 10
	// sendCmpctSize is the sendcmpct payload size.
	sendCmpctSize = 9
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("bip152: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// MsgSendCmpct is sendcmpct: the sender announces it speaks compact
// blocks of Version and, when HighBandwidth, asks to be sent new blocks as
// cmpctblock at once (BIP 152 high-bandwidth mode).
type MsgSendCmpct struct {
	HighBandwidth bool
	Version       uint64
}

// Command implements wire.Message.
func (m *MsgSendCmpct) Command() string { return CmdSendCmpct }

// MaxPayloadLength implements wire.Message.
func (m *MsgSendCmpct) MaxPayloadLength(uint32) uint32 { return sendCmpctSize }

// BtcEncode implements wire.Message.
func (m *MsgSendCmpct) BtcEncode(w io.Writer, _ uint32, _ wire.MessageEncoding) error {
	var b [sendCmpctSize]byte
	if m.HighBandwidth {
		b[0] = 1
	}
	binary.LittleEndian.PutUint64(b[1:], m.Version)
	_, err := w.Write(b[:])
	return err
}

// BtcDecode implements wire.Message. Like Core, any non-zero first byte
// is true.
func (m *MsgSendCmpct) BtcDecode(r io.Reader, _ uint32, _ wire.MessageEncoding) error {
	var b [sendCmpctSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return malformed("sendcmpct: %v", err)
	}
	m.HighBandwidth = b[0] != 0
	m.Version = binary.LittleEndian.Uint64(b[1:])
	return nil
}

// PrefilledTx is a transaction sent in full inside a cmpctblock, at its
// absolute Index in the block.
type PrefilledTx struct {
	Index uint16
	Tx    *wire.MsgTx
}

// MsgCmpctBlock is cmpctblock (Core's CBlockHeaderAndShortTxIDs): the
// header, the short ID nonce, the short IDs of the transactions not
// prefilled, in block order, and the prefilled transactions.
type MsgCmpctBlock struct {
	Header    wire.BlockHeader
	Nonce     uint64
	ShortIDs  []uint64
	Prefilled []PrefilledTx
}

// Command implements wire.Message.
func (m *MsgCmpctBlock) Command() string { return CmdCmpctBlock }

// MaxPayloadLength implements wire.Message.
func (m *MsgCmpctBlock) MaxPayloadLength(uint32) uint32 { return MaxPayload }

// TxCount is the number of transactions of the block.
func (m *MsgCmpctBlock) TxCount() int { return len(m.ShortIDs) + len(m.Prefilled) }

// BtcEncode implements wire.Message. Prefilled transactions must be in
// increasing index order.
func (m *MsgCmpctBlock) BtcEncode(w io.Writer, pver uint32, _ wire.MessageEncoding) error {
	if m.TxCount() > MaxTxCount {
		return fmt.Errorf("bip152: cmpctblock of %d transactions", m.TxCount())
	}
	if err := m.Header.Serialize(w); err != nil {
		return err
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], m.Nonce)
	if _, err := w.Write(b[:]); err != nil {
		return err
	}
	if err := wire.WriteVarInt(w, pver, uint64(len(m.ShortIDs))); err != nil {
		return err
	}
	ids := make([]byte, ShortIDSize*len(m.ShortIDs))
	for i, id := range m.ShortIDs {
		putShortID(ids[i*ShortIDSize:], id)
	}
	if _, err := w.Write(ids); err != nil {
		return err
	}
	if err := wire.WriteVarInt(w, pver, uint64(len(m.Prefilled))); err != nil {
		return err
	}
	next := 0
	for _, p := range m.Prefilled {
		if int(p.Index) < next || p.Tx == nil {
			return fmt.Errorf("bip152: prefilled transaction at %d out of order or nil", p.Index)
		}
		if err := wire.WriteVarInt(w, pver, uint64(int(p.Index)-next)); err != nil {
			return err
		}
		next = int(p.Index) + 1
		if err := p.Tx.BtcEncode(w, pver, wire.WitnessEncoding); err != nil {
			return err
		}
	}
	return nil
}

// BtcDecode implements wire.Message.
func (m *MsgCmpctBlock) BtcDecode(r io.Reader, pver uint32, _ wire.MessageEncoding) error {
	br, err := payloadReader(r)
	if err != nil {
		return err
	}
	if err := m.Header.Deserialize(br); err != nil {
		return malformed("cmpctblock header: %v", err)
	}
	var b [8]byte
	if _, err := io.ReadFull(br, b[:]); err != nil {
		return malformed("cmpctblock nonce: %v", err)
	}
	m.Nonce = binary.LittleEndian.Uint64(b[:])
	n, err := readCount(br, pver, ShortIDSize, "short IDs")
	if err != nil {
		return err
	}
	m.ShortIDs = make([]uint64, n)
	for i := range m.ShortIDs {
		var id [ShortIDSize]byte
		if _, err := io.ReadFull(br, id[:]); err != nil {
			return malformed("short ID %d: %v", i, err)
		}
		m.ShortIDs[i] = shortIDFrom(id[:])
	}
	np, err := readCount(br, pver, 1+minTxSize, "prefilled transactions")
	if err != nil {
		return err
	}
	if n+np > MaxTxCount {
		return malformed("cmpctblock of %d transactions: indexes overflowed 16 bits", n+np)
	}
	m.Prefilled = make([]PrefilledTx, np)
	next := uint64(0)
	for i := range m.Prefilled {
		idx, err := readIndex(br, pver, &next)
		if err != nil {
			return err
		}
		tx := new(wire.MsgTx)
		if err := tx.BtcDecode(br, pver, wire.WitnessEncoding); err != nil {
			return malformed("prefilled transaction %d: %v", i, err)
		}
		m.Prefilled[i] = PrefilledTx{Index: idx, Tx: tx}
	}
	return trailing(br, CmdCmpctBlock)
}

// MsgGetBlockTxn is getblocktxn (Core's BlockTransactionsRequest): the
// absolute indexes, increasing, of the transactions of BlockHash the
// sender could not rebuild.
type MsgGetBlockTxn struct {
	BlockHash chainhash.Hash
	Indexes   []uint16
}

// Command implements wire.Message.
func (m *MsgGetBlockTxn) Command() string { return CmdGetBlockTxn }

// MaxPayloadLength implements wire.Message.
func (m *MsgGetBlockTxn) MaxPayloadLength(uint32) uint32 { return MaxPayload }

// BtcEncode implements wire.Message. Indexes must be strictly increasing.
func (m *MsgGetBlockTxn) BtcEncode(w io.Writer, pver uint32, _ wire.MessageEncoding) error {
	if err := writeHashCount(w, pver, &m.BlockHash, len(m.Indexes)); err != nil {
		return err
	}
	next := 0
	for _, idx := range m.Indexes {
		if int(idx) < next {
			return fmt.Errorf("bip152: getblocktxn index %d not increasing", idx)
		}
		if err := wire.WriteVarInt(w, pver, uint64(int(idx)-next)); err != nil {
			return err
		}
		next = int(idx) + 1
	}
	return nil
}

// BtcDecode implements wire.Message.
func (m *MsgGetBlockTxn) BtcDecode(r io.Reader, pver uint32, _ wire.MessageEncoding) error {
	br, err := payloadReader(r)
	if err != nil {
		return err
	}
	if _, err := io.ReadFull(br, m.BlockHash[:]); err != nil {
		return malformed("getblocktxn hash: %v", err)
	}
	n, err := readCount(br, pver, 1, "indexes")
	if err != nil {
		return err
	}
	if n > MaxTxCount+1 {
		return malformed("getblocktxn of %d indexes", n)
	}
	m.Indexes = make([]uint16, n)
	next := uint64(0)
	for i := range m.Indexes {
		if m.Indexes[i], err = readIndex(br, pver, &next); err != nil {
			return err
		}
	}
	return trailing(br, CmdGetBlockTxn)
}

// MsgBlockTxn is blocktxn (Core's BlockTransactions): the transactions a
// getblocktxn asked for, in its order.
type MsgBlockTxn struct {
	BlockHash chainhash.Hash
	Txs       []*wire.MsgTx
}

// Command implements wire.Message.
func (m *MsgBlockTxn) Command() string { return CmdBlockTxn }

// MaxPayloadLength implements wire.Message.
func (m *MsgBlockTxn) MaxPayloadLength(uint32) uint32 { return MaxPayload }

// BtcEncode implements wire.Message.
func (m *MsgBlockTxn) BtcEncode(w io.Writer, pver uint32, _ wire.MessageEncoding) error {
	if err := writeHashCount(w, pver, &m.BlockHash, len(m.Txs)); err != nil {
		return err
	}
	for _, tx := range m.Txs {
		if err := tx.BtcEncode(w, pver, wire.WitnessEncoding); err != nil {
			return err
		}
	}
	return nil
}

// BtcDecode implements wire.Message.
func (m *MsgBlockTxn) BtcDecode(r io.Reader, pver uint32, _ wire.MessageEncoding) error {
	br, err := payloadReader(r)
	if err != nil {
		return err
	}
	if _, err := io.ReadFull(br, m.BlockHash[:]); err != nil {
		return malformed("blocktxn hash: %v", err)
	}
	n, err := readCount(br, pver, minTxSize, "transactions")
	if err != nil {
		return err
	}
	m.Txs = make([]*wire.MsgTx, n)
	for i := range m.Txs {
		tx := new(wire.MsgTx)
		if err := tx.BtcDecode(br, pver, wire.WitnessEncoding); err != nil {
			return malformed("blocktxn transaction %d: %v", i, err)
		}
		m.Txs[i] = tx
	}
	return trailing(br, CmdBlockTxn)
}

// writeHashCount writes the block hash and the item count that start
// getblocktxn and blocktxn.
func writeHashCount(w io.Writer, pver uint32, hash *chainhash.Hash, n int) error {
	if _, err := w.Write(hash[:]); err != nil {
		return err
	}
	return wire.WriteVarInt(w, pver, uint64(n))
}

// payloadReader returns r as a *bytes.Reader (the whole payload), reading
// at most MaxPayload+1 bytes when it is another reader.
func payloadReader(r io.Reader) (*bytes.Reader, error) {
	if br, ok := r.(*bytes.Reader); ok {
		if br.Len() > MaxPayload {
			return nil, malformed("payload of %d bytes", br.Len())
		}
		return br, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxPayload+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxPayload {
		return nil, malformed("payload over %d bytes", MaxPayload)
	}
	return bytes.NewReader(b), nil
}

// readCount reads a compact size count of items of at least minSize bytes
// each and checks that the rest of the payload can hold them.
func readCount(br *bytes.Reader, pver uint32, minSize int, what string) (int, error) {
	n, err := wire.ReadVarInt(br, pver)
	if err != nil {
		return 0, malformed("count of %s: %v", what, err)
	}
	if n > uint64(br.Len()/minSize) {
		return 0, malformed("%d %s in %d bytes", n, what, br.Len())
	}
	return int(n), nil
}

// readIndex reads one differentially encoded index following next (the
// previous absolute index plus one) and advances next, refusing indexes
// past 16 bits as Core does ("differential value overflow").
func readIndex(br *bytes.Reader, pver uint32, next *uint64) (uint16, error) {
	d, err := wire.ReadVarInt(br, pver)
	if err != nil {
		return 0, malformed("index: %v", err)
	}
	if d > MaxTxCount || *next+d > MaxTxCount {
		return 0, malformed("differential value overflow")
	}
	idx := *next + d
	*next = idx + 1
	return uint16(idx), nil
}

func trailing(br *bytes.Reader, cmd string) error {
	if br.Len() != 0 {
		return malformed("%s: %d bytes after the message", cmd, br.Len())
	}
	return nil
}

func putShortID(b []byte, id uint64) {
	binary.LittleEndian.PutUint32(b, uint32(id))
	binary.LittleEndian.PutUint16(b[4:], uint16(id>>32))
}

func shortIDFrom(b []byte) uint64 {
	return uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint16(b[4:]))<<32
}
