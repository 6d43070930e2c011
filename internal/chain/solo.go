package chain

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/btcsuite/btcd/wire"
)

// MaxSoloFeeBPS bounds the pool fee of a solo coinbase, in basis points:
// below 100 %, so that the miner's output always carries the rest.
const MaxSoloFeeBPS = 9999

// SoloSplit splits a solo block's coinbase value between the miner and the
// pool under a fee of feeBPS basis points (0..MaxSoloFeeBPS; the caller
// checks the range). The rounding rule: the pool's fee is rounded down,
// fee = floor(value × feeBPS / 10,000), computed without overflow for any
// value up to the 21 million coins; the miner gets the rest,
// value − fee, so the two always add up to value and every remainder
// satoshi goes to the miner. A feeBPS over 10,000 counts as 10,000.
func SoloSplit(value int64, feeBPS int) (miner, fee int64) {
	if value <= 0 || feeBPS <= 0 {
		return value, 0
	}
	feeBPS = min(feeBPS, 10_000)
	hi, lo := bits.Mul64(uint64(value), uint64(feeBPS))
	q, _ := bits.Div64(hi, lo, 10_000) // hi < feeBPS <= 10,000: no overflow
	return value - int64(q), int64(q)
}

// SoloPayout says where a solo job's coinbase pays: MinerScript receives the
// coinbase value less the fee; FeeScript (the pool's) receives
// SoloSplit's fee in a second output, left out when the fee is zero.
type SoloPayout struct {
	MinerScript []byte
	FeeScript   []byte
	FeeBPS      int
}

// Validate returns an error wrapping ErrInvalidConfig when p cannot build a
// coinbase.
func (p SoloPayout) Validate() error {
	switch {
	case len(p.MinerScript) == 0 || len(p.MinerScript) > MaxPayoutScriptSize:
		return fmt.Errorf("%w: solo miner script of %d bytes", ErrInvalidConfig, len(p.MinerScript))
	case p.FeeBPS < 0 || p.FeeBPS > MaxSoloFeeBPS:
		return fmt.Errorf("%w: solo fee %d bps not in 0..%d", ErrInvalidConfig, p.FeeBPS, MaxSoloFeeBPS)
	case p.FeeBPS > 0 && (len(p.FeeScript) == 0 || len(p.FeeScript) > MaxPayoutScriptSize):
		return fmt.Errorf("%w: solo fee script of %d bytes", ErrInvalidConfig, len(p.FeeScript))
	}
	return nil
}

// NewSoloJob returns a copy of base, a job NewJob built with cfg, whose
// coinbase pays p instead of cfg.PayoutScript: the miner's output first,
// then the fee output (when the fee is not zero), then the witness
// commitment as in base. Only Coinb2 differs from base (the outputs come
// after the extranonce slot): Coinb1, the merkle branch, the template and
// its transactions are shared, so a solo job costs its outputs, not a
// template's work. Coinb2 is base's with the outputs replaced, which is
// what serializing the whole coinbase gives (checked on base's bytes; the
// whole coinbase is built when they are not as expected). cfg must be the
// config base was built with (its tag and extranonce sizes).
func NewSoloJob(base *Job, cfg CoinbaseConfig, p SoloPayout) (*Job, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if base == nil || base.Template == nil {
		return nil, fmt.Errorf("%w: no base job", ErrInvalidTemplate)
	}
	if cfg.Extranonce1Size != base.Extranonce1Size || cfg.Extranonce2Size != base.Extranonce2Size {
		return nil, fmt.Errorf("%w: extranonce sizes %d+%d differ from the base job's %d+%d", ErrInvalidConfig,
			cfg.Extranonce1Size, cfg.Extranonce2Size, base.Extranonce1Size, base.Extranonce2Size)
	}
	value := base.Template.CoinbaseValue
	miner, fee := SoloSplit(value, p.FeeBPS)
	pay := make([]*wire.TxOut, 0, 3)
	pay = append(pay, wire.NewTxOut(miner, p.MinerScript))
	if fee > 0 {
		pay = append(pay, wire.NewTxOut(fee, p.FeeScript))
	}
	outs, baseOuts := pay, []*wire.TxOut{wire.NewTxOut(value, cfg.PayoutScript)}
	if base.WitnessCommitment != nil {
		outs = append(outs, wire.NewTxOut(0, base.WitnessCommitment))
		baseOuts = append(baseOuts, wire.NewTxOut(0, base.WitnessCommitment))
	}
	j := *base
	old := appendOutputs(nil, baseOuts)
	if end := len(base.Coinb2) - 4; end >= len(old) && bytes.Equal(base.Coinb2[end-len(old):end], old) {
		// Coinb2 is the tag push, the sequence, the outputs and the lock time.
		head, lockTime := base.Coinb2[:end-len(old)], base.Coinb2[end:]
		c2 := make([]byte, 0, len(head)+outputsSize(outs)+len(lockTime))
		c2 = append(c2, head...)
		c2 = appendOutputs(c2, outs)
		j.Coinb2 = append(c2, lockTime...)
		return &j, nil
	}
	coinb1, coinb2, err := buildCoinbase(base.Template, cfg, pay[:len(pay):len(pay)], base.WitnessCommitment)
	if err != nil {
		return nil, err
	}
	j.Coinb1, j.Coinb2 = coinb1, coinb2
	return &j, nil
}

// outputsSize is the serialized size of outs with their count.
func outputsSize(outs []*wire.TxOut) int {
	n := wire.VarIntSerializeSize(uint64(len(outs)))
	for _, o := range outs {
		n += o.SerializeSize()
	}
	return n
}

// appendOutputs appends the transaction serialization of outs (count,
// then each value and script) to dst.
func appendOutputs(dst []byte, outs []*wire.TxOut) []byte {
	dst = appendVarInt(dst, uint64(len(outs)))
	for _, o := range outs {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(o.Value))
		dst = appendVarInt(dst, uint64(len(o.PkScript)))
		dst = append(dst, o.PkScript...)
	}
	return dst
}

// appendVarInt appends Bitcoin's CompactSize encoding of v.
func appendVarInt(dst []byte, v uint64) []byte {
	switch {
	case v < 0xfd:
		return append(dst, byte(v))
	case v <= 0xffff:
		return binary.LittleEndian.AppendUint16(append(dst, 0xfd), uint16(v))
	case v <= 0xffffffff:
		return binary.LittleEndian.AppendUint32(append(dst, 0xfe), uint32(v))
	}
	return binary.LittleEndian.AppendUint64(append(dst, 0xff), v)
}
