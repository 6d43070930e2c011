package chain

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// diff1Float is the difficulty-1 target 0xFFFF * 2^208 as a float64 (exact).
var diff1Float = math.Ldexp(0xFFFF, 208)

// Diff1Target returns the difficulty-1 target of the pool ("bdiff")
// convention used by stratum: 0x00000000FFFF0000...0000 (0xFFFF << 208).
func Diff1Target() *big.Int {
	return new(big.Int).Lsh(big.NewInt(0xFFFF), 208)
}

// maxTarget returns 2^256 - 1, the largest 256-bit target.
func maxTarget() *big.Int {
	t := new(big.Int).Lsh(big.NewInt(1), 256)
	return t.Sub(t, big.NewInt(1))
}

// ValidDifficulty returns an error wrapping ErrInvalidDifficulty unless d is
// a finite number greater than zero. Use it on difficulties that come from
// configuration or from miners before turning them into targets.
func ValidDifficulty(d float64) error {
	if math.IsNaN(d) || math.IsInf(d, 0) || d <= 0 {
		return fmt.Errorf("%w: %v", ErrInvalidDifficulty, d)
	}
	return nil
}

// DifficultyToTarget returns the share target of difficulty d: floor(diff1 /
// d), computed exactly from d's binary value, so fractional difficulties (e.g.
// 1/1024 on regtest) work. The result is clamped to [1, 2^256-1]: NaN, zero
// and negative difficulties give 2^256-1 (every hash meets it), +Inf and
// difficulties too large for a non-zero target give 1. Callers that must
// reject such inputs check ValidDifficulty first.
func DifficultyToTarget(d float64) *big.Int {
	switch {
	case math.IsNaN(d) || d <= 0:
		return maxTarget()
	case math.IsInf(d, 1):
		return big.NewInt(1)
	}
	r := new(big.Rat).SetFloat64(d)
	t := Diff1Target()
	t.Mul(t, r.Denom())
	t.Quo(t, r.Num())
	if t.Sign() <= 0 {
		return big.NewInt(1)
	}
	if t.BitLen() > 256 {
		return maxTarget()
	}
	return t
}

// TargetDifficulty returns the difficulty of target: diff1 / target. A nil,
// zero or negative target gives +Inf.
func TargetDifficulty(target *big.Int) float64 {
	if target == nil || target.Sign() <= 0 {
		return math.Inf(1)
	}
	q := new(big.Float).SetPrec(64).SetInt(Diff1Target())
	q.Quo(q, new(big.Float).SetPrec(64).SetInt(target))
	f, _ := q.Float64()
	return f
}

// HashDifficulty returns the difficulty a hash actually achieves: diff1 /
// hash, reading the hash as a little-endian 256-bit number as Bitcoin does.
// A zero hash gives +Inf. It does not allocate.
func HashDifficulty(h chainhash.Hash) float64 {
	var f float64
	for i := 3; i >= 0; i-- { // most significant word first
		f = f*0x1p64 + float64(binary.LittleEndian.Uint64(h[8*i:]))
	}
	if f == 0 {
		return math.Inf(1)
	}
	return diff1Float / f
}

// Target is a 256-bit target precomputed as four 64-bit words, most
// significant first, so that checking a hash against it takes at most four
// integer comparisons and no allocation. The zero Target is met only by the
// zero hash.
type Target [4]uint64

// NewTarget converts t to a Target. A nil, zero or negative t gives the zero
// Target; a t of more than 256 bits is clamped to 2^256-1. It does not
// allocate.
func NewTarget(t *big.Int) Target {
	var out Target
	if t == nil || t.Sign() <= 0 {
		return out
	}
	if t.BitLen() > 256 {
		return Target{math.MaxUint64, math.MaxUint64, math.MaxUint64, math.MaxUint64}
	}
	var b [32]byte
	t.FillBytes(b[:])
	for i := range out {
		out[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	return out
}

// Big returns the target as a big.Int.
func (t Target) Big() *big.Int {
	var b [32]byte
	for i, w := range t {
		binary.BigEndian.PutUint64(b[8*i:], w)
	}
	return new(big.Int).SetBytes(b[:])
}

// Meets reports whether h, read as a little-endian 256-bit number, is at or
// below the target (the proof-of-work rule hash <= target).
func (t Target) Meets(h *chainhash.Hash) bool {
	for i := range t {
		w := binary.LittleEndian.Uint64(h[8*(3-i):])
		if w != t[i] {
			return w < t[i]
		}
	}
	return true
}

// HashMeetsTarget reports whether h is at or below target; it equals
// NewTarget(target).Meets(h), so a nil or non-positive target is met only by
// the zero hash and a target above 2^256-1 by every hash. It does not
// allocate; for many checks against one target, build a Target once with
// NewTarget and use Target.Meets.
func HashMeetsTarget(h *chainhash.Hash, target *big.Int) bool {
	return NewTarget(target).Meets(h)
}
