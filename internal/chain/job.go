package chain

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Coinbase limits and layout constants.
const (
	// MaxExtranonceSize is the largest extranonce1 or extranonce2 size, in
	// bytes, that a CoinbaseConfig accepts.
	MaxExtranonceSize = 16

	// MaxPayoutScriptSize is the largest payout script accepted, in bytes.
	MaxPayoutScriptSize = txscript.MaxScriptSize

	// CoinbaseVersion is the transaction version of the coinbases built
	// here.
	CoinbaseVersion = 2

	// maxScriptSig is the consensus limit on a coinbase scriptSig.
	maxScriptSig = blockchain.MaxCoinbaseScriptLen

	// coinbaseStackBuf is the size of the stack buffer the hot path
	// assembles the coinbase in; larger coinbases (only possible with very
	// long payout scripts) fall back to a heap allocation.
	coinbaseStackBuf = 512

	// scriptSigOffset is where the scriptSig starts in a serialized
	// one-input coinbase: version(4), input count(1), prevout(36),
	// script length(1; the scriptSig is at most 100 bytes).
	scriptSigOffset = 4 + 1 + 36 + 1
)

// CoinbaseConfig says how the pool's coinbase looks.
type CoinbaseConfig struct {
	// PayoutScript is the output script the block reward pays to.
	PayoutScript []byte
	// Tag is pushed into the coinbase scriptSig after the extranonce
	// (e.g. "/stratumd/"). It is truncated so that the scriptSig fits in
	// 100 bytes, never in the middle of a UTF-8 encoded character.
	Tag string
	// Extranonce1Size is the size of the per-session extranonce1, 1..16.
	Extranonce1Size int
	// Extranonce2Size is the size of the miner-rolled extranonce2, 1..16.
	Extranonce2Size int
}

// Validate returns an error wrapping ErrInvalidConfig when c cannot build a
// coinbase.
func (c CoinbaseConfig) Validate() error {
	switch {
	case len(c.PayoutScript) == 0:
		return fmt.Errorf("%w: empty payout script", ErrInvalidConfig)
	case len(c.PayoutScript) > MaxPayoutScriptSize:
		return fmt.Errorf("%w: payout script of %d bytes exceeds %d",
			ErrInvalidConfig, len(c.PayoutScript), MaxPayoutScriptSize)
	case c.Extranonce1Size < 1 || c.Extranonce1Size > MaxExtranonceSize:
		return fmt.Errorf("%w: extranonce1 size %d not in 1..%d",
			ErrInvalidConfig, c.Extranonce1Size, MaxExtranonceSize)
	case c.Extranonce2Size < 1 || c.Extranonce2Size > MaxExtranonceSize:
		return fmt.Errorf("%w: extranonce2 size %d not in 1..%d",
			ErrInvalidConfig, c.Extranonce2Size, MaxExtranonceSize)
	}
	return nil
}

// Job is a Template turned into what stratum's mining.notify sends, plus
// what share validation needs. A Job is immutable after NewJob and safe for
// concurrent use; callers must not modify its slices.
type Job struct {
	// ID is the stratum job id.
	ID string
	// Template is the template the job was built from.
	Template *Template

	// Coinb1 is the non-witness serialization of the coinbase up to the
	// extranonce slot.
	Coinb1 []byte
	// Coinb2 is the rest of the coinbase after the extranonce slot; the
	// coinbase is Coinb1 || extranonce1 || extranonce2 || Coinb2.
	Coinb2 []byte
	// MerkleBranch is the stratum merkle branch over the txids: the
	// siblings of the coinbase (index 0) from the leaves up. mining.notify
	// sends each as the hex of its 32 bytes in internal order (see
	// MerkleBranchHex), not as chainhash.Hash.String, which reverses them.
	MerkleBranch []chainhash.Hash

	// PrevHashStratum is the previous block hash as stratum sends it: the
	// 32 internal (little-endian) bytes with each 4-byte word byte-swapped,
	// in hex.
	PrevHashStratum string
	// VersionHex is the block version as big-endian hex ("20000000").
	VersionHex string
	// BitsHex is the compact network target as big-endian hex ("1d00ffff").
	BitsHex string
	// NTimeHex is the template's current time as big-endian hex.
	NTimeHex string

	// WitnessCommitment is the coinbase's witness commitment output script
	// (OP_RETURN 0xaa21a9ed || commitment, 38 bytes); nil when the template
	// has no witness transactions and does not require a commitment, and
	// the coinbase then carries none.
	WitnessCommitment []byte

	// Extranonce1Size and Extranonce2Size are the extranonce slot sizes.
	Extranonce1Size, Extranonce2Size int

	// Target is the network target (from the template's bits) for a cheap
	// "is this share a block" check.
	Target Target
}

// NewJob builds the job with the given id from t: the coinbase paying
// t.CoinbaseValue to cfg.PayoutScript (plus the witness commitment output
// when any transaction has witness data or t.RequireWitnessCommitment is
// set), split around the extranonce slot,
// and the merkle branch over the txids. It fails with errors wrapping
// ErrInvalidConfig, ErrInvalidTemplate or ErrCoinbaseTooLong.
func NewJob(id string, t *Template, cfg CoinbaseConfig) (*Job, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := validateTemplate(t); err != nil {
		return nil, err
	}

	txids := make([]chainhash.Hash, len(t.Transactions))
	for i, tx := range t.Transactions {
		txids[i] = *tx.Hash()
	}
	var commitScript []byte
	if t.HasWitness() || t.RequireWitnessCommitment {
		commitScript = witnessCommitmentScript(witnessCommitment(t.Transactions, [32]byte{}))
	}
	outs := []*wire.TxOut{wire.NewTxOut(t.CoinbaseValue, cfg.PayoutScript)}
	coinb1, coinb2, err := buildCoinbase(t, cfg, outs, commitScript)
	if err != nil {
		return nil, err
	}

	return &Job{
		ID:                id,
		Template:          t,
		Coinb1:            coinb1,
		Coinb2:            coinb2,
		MerkleBranch:      merkleBranch(txids),
		PrevHashStratum:   stratumPrevHash(&t.PrevHash),
		VersionHex:        fmt.Sprintf("%08x", uint32(t.Version)),
		BitsHex:           fmt.Sprintf("%08x", t.Bits),
		NTimeHex:          fmt.Sprintf("%08x", uint32(t.CurTime.Unix())),
		WitnessCommitment: commitScript,
		Extranonce1Size:   cfg.Extranonce1Size,
		Extranonce2Size:   cfg.Extranonce2Size,
		Target:            NewTarget(t.Target()),
	}, nil
}

// validateTemplate returns an error wrapping ErrInvalidTemplate when t cannot
// become a job.
func validateTemplate(t *Template) error {
	if t == nil {
		return fmt.Errorf("%w: nil", ErrInvalidTemplate)
	}
	if t.Height < 1 {
		return fmt.Errorf("%w: height %d", ErrInvalidTemplate, t.Height)
	}
	if t.CoinbaseValue < 0 || t.CoinbaseValue > btcutil.MaxSatoshi {
		return fmt.Errorf("%w: coinbase value %d", ErrInvalidTemplate, t.CoinbaseValue)
	}
	if target := t.Target(); target.Sign() <= 0 || target.BitLen() > 256 {
		return fmt.Errorf("%w: bits %08x", ErrInvalidTemplate, t.Bits)
	}
	if ts := t.CurTime.Unix(); ts < 0 || ts > math.MaxUint32 {
		return fmt.Errorf("%w: time %v does not fit the header", ErrInvalidTemplate, t.CurTime)
	}
	if t.Fees != nil && len(t.Fees) != len(t.Transactions) {
		return fmt.Errorf("%w: %d fees for %d transactions", ErrInvalidTemplate,
			len(t.Fees), len(t.Transactions))
	}
	if t.SigOpCosts != nil && len(t.SigOpCosts) != len(t.Transactions) {
		return fmt.Errorf("%w: %d sigop costs for %d transactions", ErrInvalidTemplate,
			len(t.SigOpCosts), len(t.Transactions))
	}
	for i, tx := range t.Transactions {
		if tx == nil || tx.MsgTx() == nil {
			return fmt.Errorf("%w: transaction %d is nil", ErrInvalidTemplate, i)
		}
		if blockchain.IsCoinBaseTx(tx.MsgTx()) {
			return fmt.Errorf("%w: transaction %d is a coinbase", ErrInvalidTemplate, i)
		}
	}
	return nil
}

// buildCoinbase serializes the coinbase (without witness) paying outs, then
// the witness commitment output when commitScript is set, with a zeroed
// extranonce slot, and returns the bytes before and after the slot.
//
// scriptSig = BIP34 height push || push opcode of len(en1)+len(en2) ||
// extranonce slot || tag push (omitted when the tag is empty or does not fit).
func buildCoinbase(t *Template, cfg CoinbaseConfig, outs []*wire.TxOut, commitScript []byte) (coinb1, coinb2 []byte, err error) {
	heightPush, err := txscript.NewScriptBuilder().AddInt64(int64(t.Height)).Script()
	if err != nil {
		return nil, nil, fmt.Errorf("chain: encode coinbase height %d: %w", t.Height, err)
	}
	enLen := cfg.Extranonce1Size + cfg.Extranonce2Size
	if enLen > txscript.OP_DATA_75 {
		return nil, nil, fmt.Errorf("%w: extranonce slot of %d bytes", ErrCoinbaseTooLong, enLen)
	}
	prefix := len(heightPush) + 1 + enLen
	if prefix > maxScriptSig {
		return nil, nil, fmt.Errorf("%w: height and extranonce need %d bytes, limit %d",
			ErrCoinbaseTooLong, prefix, maxScriptSig)
	}

	script := make([]byte, 0, maxScriptSig)
	script = append(script, heightPush...)
	script = append(script, byte(enLen)) // OP_DATA_n: a direct push of n bytes
	script = append(script, make([]byte, enLen)...)
	script = append(script, tagPush(cfg.Tag, maxScriptSig-prefix)...)

	tx := wire.NewMsgTx(CoinbaseVersion)
	tx.AddTxIn(&wire.TxIn{
		PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex},
		SignatureScript:  script,
		Sequence:         wire.MaxTxInSequenceNum,
	})
	for _, o := range outs {
		tx.AddTxOut(o)
	}
	if commitScript != nil {
		tx.AddTxOut(wire.NewTxOut(0, commitScript))
	}
	var buf bytes.Buffer
	buf.Grow(tx.SerializeSizeStripped())
	if err := tx.SerializeNoWitness(&buf); err != nil {
		return nil, nil, fmt.Errorf("chain: serialize coinbase: %w", err)
	}
	raw := buf.Bytes()
	slot := scriptSigOffset + len(heightPush) + 1
	coinb1 = bytes.Clone(raw[:slot])
	coinb2 = bytes.Clone(raw[slot+enLen:])
	return coinb1, coinb2, nil
}

// tagPush returns the canonical push of the longest prefix of tag whose push
// fits in room bytes, or nil. The cut never splits a valid UTF-8 encoded
// character. It looks at no more than room+utf8.UTFMax bytes of tag.
func tagPush(tag string, room int) []byte {
	if len(tag) > room+utf8.UTFMax {
		tag = tag[:room+utf8.UTFMax]
	}
	for n := min(len(tag), room); n > 0; n-- {
		if splitsRune(tag, n) {
			continue
		}
		s, err := txscript.NewScriptBuilder().AddData([]byte(tag[:n])).Script()
		if err == nil && len(s) <= room {
			return s
		}
	}
	return nil
}

// splitsRune reports whether cutting s at n splits a valid UTF-8 encoded
// character.
func splitsRune(s string, n int) bool {
	if n <= 0 || n >= len(s) || utf8.RuneStart(s[n]) {
		return false
	}
	start := n - 1
	for start > 0 && n-start < utf8.UTFMax && !utf8.RuneStart(s[start]) {
		start--
	}
	r, size := utf8.DecodeRuneInString(s[start:])
	return (r != utf8.RuneError || size > 1) && start+size > n
}

// stratumPrevHash returns h's 32 internal bytes with each 4-byte word
// byte-swapped, in hex: the prevhash field of mining.notify.
func stratumPrevHash(h *chainhash.Hash) string {
	var b [chainhash.HashSize]byte
	for i := 0; i < chainhash.HashSize; i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = h[i+3], h[i+2], h[i+1], h[i]
	}
	return hex.EncodeToString(b[:])
}

// MerkleBranchHex returns MerkleBranch as mining.notify sends it: each hash's
// 32 internal bytes in hex.
func (j *Job) MerkleBranchHex() []string {
	out := make([]string, len(j.MerkleBranch))
	for i := range j.MerkleBranch {
		out[i] = hex.EncodeToString(j.MerkleBranch[i][:])
	}
	return out
}

// coinbaseHash returns the txid of Coinb1 || en1 || en2 || Coinb2.
func (j *Job) coinbaseHash(en1, en2 []byte) chainhash.Hash {
	var buf [coinbaseStackBuf]byte
	b := append(buf[:0], j.Coinb1...)
	b = append(b, en1...)
	b = append(b, en2...)
	b = append(b, j.Coinb2...)
	return chainhash.DoubleHashH(b)
}

// header returns the header of a solution and its 80-byte serialization.
func (j *Job) header(en1, en2 []byte, ntime, nonce uint32, version int32) (wire.BlockHeader, [wire.MaxBlockHeaderPayload]byte) {
	root := foldBranch(j.coinbaseHash(en1, en2), j.MerkleBranch)
	t := j.Template
	var raw [wire.MaxBlockHeaderPayload]byte
	binary.LittleEndian.PutUint32(raw[0:4], uint32(version))
	copy(raw[4:36], t.PrevHash[:])
	copy(raw[36:68], root[:])
	binary.LittleEndian.PutUint32(raw[68:72], ntime)
	binary.LittleEndian.PutUint32(raw[72:76], t.Bits)
	binary.LittleEndian.PutUint32(raw[76:80], nonce)
	return wire.BlockHeader{
		Version:    version,
		PrevBlock:  t.PrevHash,
		MerkleRoot: root,
		Timestamp:  time.Unix(int64(ntime), 0),
		Bits:       t.Bits,
		Nonce:      nonce,
	}, raw
}

// HeaderFor returns the block header of a solution: the coinbase built from
// Coinb1 || extranonce1 || extranonce2 || Coinb2, its txid folded up the
// merkle branch into the merkle root, and the given time, nonce and version
// (the final version, with any rolled bits applied). The extranonce lengths
// are not checked here: callers validate them before hashing (Block does).
func (j *Job) HeaderFor(extranonce1, extranonce2 []byte, ntime, nonce uint32, version int32) wire.BlockHeader {
	h, _ := j.header(extranonce1, extranonce2, ntime, nonce, version)
	return h
}

// Hash is HeaderFor that also returns the header's hash (the block hash), the
// hot path of share validation. It does not allocate unless the coinbase is
// longer than 512 bytes. Compare the hash with Target.Meets.
func (j *Job) Hash(extranonce1, extranonce2 []byte, ntime, nonce uint32, version int32) (chainhash.Hash, wire.BlockHeader) {
	h, raw := j.header(extranonce1, extranonce2, ntime, nonce, version)
	return chainhash.DoubleHashH(raw[:]), h
}

// Block assembles the full block of a solution: the header as HeaderFor
// builds it, the coinbase decoded from the assembled bytes (with the 32-byte
// zero witness reserved value as its witness when the job has a witness
// commitment) and the template's transactions with their witnesses. The
// transactions are shared with the template, not copied. It fails with an
// error wrapping ErrExtranonceSize when an extranonce has the wrong length.
func (j *Job) Block(extranonce1, extranonce2 []byte, ntime, nonce uint32, version int32) (*wire.MsgBlock, error) {
	if len(extranonce1) != j.Extranonce1Size || len(extranonce2) != j.Extranonce2Size {
		return nil, fmt.Errorf("%w: got %d+%d bytes, want %d+%d", ErrExtranonceSize,
			len(extranonce1), len(extranonce2), j.Extranonce1Size, j.Extranonce2Size)
	}
	raw := make([]byte, 0, len(j.Coinb1)+len(extranonce1)+len(extranonce2)+len(j.Coinb2))
	raw = append(raw, j.Coinb1...)
	raw = append(raw, extranonce1...)
	raw = append(raw, extranonce2...)
	raw = append(raw, j.Coinb2...)
	r := bytes.NewReader(raw)
	coinbase := new(wire.MsgTx)
	if err := coinbase.DeserializeNoWitness(r); err != nil {
		return nil, fmt.Errorf("chain: decode assembled coinbase: %w", err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("chain: decode assembled coinbase: %d trailing bytes", r.Len())
	}
	if len(coinbase.TxIn) != 1 {
		return nil, fmt.Errorf("chain: assembled coinbase has %d inputs", len(coinbase.TxIn))
	}
	if j.WitnessCommitment != nil {
		coinbase.TxIn[0].Witness = wire.TxWitness{make([]byte, blockchain.CoinbaseWitnessDataLen)}
	}

	txs := j.Template.Transactions
	block := &wire.MsgBlock{
		Header:       j.HeaderFor(extranonce1, extranonce2, ntime, nonce, version),
		Transactions: make([]*wire.MsgTx, 0, 1+len(txs)),
	}
	block.Transactions = append(block.Transactions, coinbase)
	for _, tx := range txs {
		block.Transactions = append(block.Transactions, tx.MsgTx())
	}
	return block, nil
}
