package chain

import (
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
// commitment as in base. Everything but Coinb1 and Coinb2 is shared with
// base (the merkle branch, the template and its transactions), so a solo
// job costs a coinbase, not a template's work. cfg must be the config base
// was built with (its tag and extranonce sizes).
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
	miner, fee := SoloSplit(base.Template.CoinbaseValue, p.FeeBPS)
	outs := []*wire.TxOut{wire.NewTxOut(miner, p.MinerScript)}
	if fee > 0 {
		outs = append(outs, wire.NewTxOut(fee, p.FeeScript))
	}
	coinb1, coinb2, err := buildCoinbase(base.Template, cfg, outs, base.WitnessCommitment)
	if err != nil {
		return nil, err
	}
	j := *base
	j.Coinb1, j.Coinb2 = coinb1, coinb2
	return &j, nil
}
