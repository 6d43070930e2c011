package chain

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

func hexTarget(t *big.Int) string { return fmt.Sprintf("%064x", t) }

func TestDifficultyToTarget(t *testing.T) {
	// Expected values computed independently as floor((0xFFFF << 208) / d)
	// with exact rational arithmetic.
	tests := []struct {
		d    float64
		want string
	}{
		{1, "00000000ffff0000000000000000000000000000000000000000000000000000"},
		{2, "000000007fff8000000000000000000000000000000000000000000000000000"},
		{0.5, "00000001fffe0000000000000000000000000000000000000000000000000000"},
		{1.0 / 1024, "000003fffc000000000000000000000000000000000000000000000000000000"},
		{1e12, "00000000000000000119787e99468e32f6e0e71cef78ee034b5f8a0944d68076"},
		{1 << 32, "0000000000000000ffff00000000000000000000000000000000000000000000"},
		// Clamps.
		{0, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
		{-3, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
		{math.NaN(), "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
		{math.SmallestNonzeroFloat64, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
		{math.Inf(1), "0000000000000000000000000000000000000000000000000000000000000001"},
		{math.MaxFloat64, "0000000000000000000000000000000000000000000000000000000000000001"},
		{math.Inf(-1), "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
	}
	for _, tc := range tests {
		if got := hexTarget(DifficultyToTarget(tc.d)); got != tc.want {
			t.Errorf("DifficultyToTarget(%v) = %s, want %s", tc.d, got, tc.want)
		}
	}
	if Diff1Target().Cmp(blockchain.CompactToBig(0x1d00ffff)) != 0 {
		t.Fatal("diff1 is not the target of bits 1d00ffff")
	}
}

func TestValidDifficulty(t *testing.T) {
	for _, d := range []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1)} {
		if err := ValidDifficulty(d); !errors.Is(err, ErrInvalidDifficulty) {
			t.Errorf("ValidDifficulty(%v) = %v", d, err)
		}
	}
	for _, d := range []float64{1.0 / 1024, 1, 65536, 1e15} {
		if err := ValidDifficulty(d); err != nil {
			t.Errorf("ValidDifficulty(%v) = %v", d, err)
		}
	}
}

func TestDifficultyRoundTrip(t *testing.T) {
	for _, d := range []float64{1.0 / 1024, 0.001, 0.5, 1, 2, 3, 1000, 16384.5, 1e9, 8.3e13, 1e20} {
		got := TargetDifficulty(DifficultyToTarget(d))
		if math.Abs(got-d)/d > 1e-12 {
			t.Errorf("round trip of %v gave %v", d, got)
		}
	}
}

func TestTargetDifficulty(t *testing.T) {
	tests := []struct {
		bits uint32
		want float64
	}{
		{0x1d00ffff, 1},
		{0x1b04864c, 14484.1623612254}, // block 100,000's difficulty
		{0x207fffff, 4.656542373906925e-10},
	}
	for _, tc := range tests {
		got := TargetDifficulty(blockchain.CompactToBig(tc.bits))
		if math.Abs(got-tc.want)/tc.want > 1e-12 {
			t.Errorf("bits %08x: difficulty %v, want %v", tc.bits, got, tc.want)
		}
	}
	for _, target := range []*big.Int{nil, big.NewInt(0), big.NewInt(-5)} {
		if got := TargetDifficulty(target); !math.IsInf(got, 1) {
			t.Errorf("TargetDifficulty(%v) = %v, want +Inf", target, got)
		}
	}
}

// hashFromBig returns the hash whose little-endian number is n.
func hashFromBig(n *big.Int) chainhash.Hash {
	var b [32]byte
	n.FillBytes(b[:])
	var h chainhash.Hash
	for i := range b {
		h[i] = b[31-i]
	}
	return h
}

func TestHashDifficulty(t *testing.T) {
	if d := HashDifficulty(hashFromBig(Diff1Target())); d != 1 {
		t.Fatalf("difficulty of the diff1 hash %v", d)
	}
	half := new(big.Int).Rsh(Diff1Target(), 1)
	if d := HashDifficulty(hashFromBig(half)); d != 2 {
		t.Fatalf("difficulty of diff1/2 %v", d)
	}
	if d := HashDifficulty(chainhash.Hash{}); !math.IsInf(d, 1) {
		t.Fatalf("zero hash %v", d)
	}
	// Against big.Float on random hashes.
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		var h chainhash.Hash
		for i := range h {
			h[i] = byte(r.Uint32())
		}
		h[31] >>= r.UintN(8) // vary the magnitude
		n := new(big.Int).SetBytes(reverse(h[:]))
		want, _ := new(big.Float).Quo(new(big.Float).SetInt(Diff1Target()), new(big.Float).SetInt(n)).Float64()
		if got := HashDifficulty(h); math.Abs(got-want)/want > 1e-14 {
			t.Fatalf("hash %v: %v, want %v", h, got, want)
		}
	}
	// Real blocks: the achieved difficulty is at least the required one.
	for _, rb := range realBlockFiles {
		b := loadBlock(t, rb.file)
		if hd, td := HashDifficulty(b.BlockHash()), TargetDifficulty(blockchain.CompactToBig(b.Header.Bits)); hd < td {
			t.Errorf("%s: hash difficulty %v < %v", rb.file, hd, td)
		}
	}
}

func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[i] = b[len(b)-1-i]
	}
	return out
}

func TestTargetMeets(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	randBig := func() *big.Int {
		var b [32]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return new(big.Int).Rsh(new(big.Int).SetBytes(b[:]), r.UintN(256))
	}
	for range 5000 {
		target, n := randBig(), randBig()
		if r.UintN(4) == 0 {
			n = new(big.Int).Set(target) // equal: meets
		}
		h := hashFromBig(n)
		want := n.Cmp(target) <= 0
		tg := NewTarget(target)
		if got := tg.Meets(&h); got != want {
			t.Fatalf("Meets(%x <= %x) = %v", n, target, got)
		}
		if got := HashMeetsTarget(&h, target); got != want {
			t.Fatalf("HashMeetsTarget(%x <= %x) = %v", n, target, got)
		}
		if tg.Big().Cmp(target) != 0 {
			t.Fatalf("Big() %x, want %x", tg.Big(), target)
		}
	}
	// Boundaries around the diff1 target.
	d1 := Diff1Target()
	above := hashFromBig(new(big.Int).Add(d1, big.NewInt(1)))
	at := hashFromBig(d1)
	if NewTarget(d1).Meets(&above) || !NewTarget(d1).Meets(&at) {
		t.Fatal("diff1 boundary")
	}
	// Clamps.
	maxHash := hashFromBig(maxTarget())
	zero := chainhash.Hash{}
	for _, bad := range []*big.Int{nil, big.NewInt(-1), big.NewInt(0)} {
		if HashMeetsTarget(&at, bad) || !HashMeetsTarget(&zero, bad) {
			t.Fatalf("target %v must be met by the zero hash only", bad)
		}
	}
	huge := new(big.Int).Lsh(big.NewInt(1), 300)
	if !HashMeetsTarget(&maxHash, huge) || NewTarget(huge).Big().Cmp(maxTarget()) != 0 {
		t.Fatal("targets above 2^256-1 clamp to it")
	}
}
