package payout

import (
	"fmt"
	"math"
	"math/big"
	"sort"
)

// MaxFeeBPS is a pool fee of 100 %.
const MaxFeeBPS = 10000

// Weight is one user's share difficulty inside a PPLNS window (the oldest
// share of the window counted in part).
type Weight struct {
	Username   string
	Difficulty float64
}

// Credit is what one user earns from one block.
type Credit struct {
	Username   string  `json:"username"`
	Amount     int64   `json:"amount"`
	Difficulty float64 `json:"difficulty"`
}

// Split is a block reward divided between the miners and the pool. Reward =
// MinersTotal + PoolFee + Remainder, always.
type Split struct {
	Reward      int64    `json:"reward"`
	FeeBPS      int      `json:"fee_bps"`
	PoolFee     int64    `json:"pool_fee"`
	Remainder   int64    `json:"pool_remainder"`
	MinersTotal int64    `json:"miners_total"`
	Credits     []Credit `json:"credits"` // sorted by user name; amounts > 0
}

// SplitReward divides reward satoshis among weights with a pool fee of feeBPS
// basis points. The rule, in integer (exact rational) arithmetic:
//
//	miners  = floor(reward × (10000 − feeBPS) / 10000)
//	fee     = reward − miners               (the fee rounds up by < 1 satoshi)
//	user_i  = floor(miners × w_i / Σw)      (w_i: the user's share difficulty)
//	rest    = miners − Σ user_i             (0 ≤ rest < number of users)
//
// The remainder goes to the pool. Users whose amount rounds to 0 get no
// credit. Weights of the same user are added; a weight must be positive and
// finite. With no weights at all ErrNoShares: a reward is never kept silently.
func SplitReward(reward int64, feeBPS int, weights []Weight) (Split, error) {
	if reward < 0 {
		return Split{}, fmt.Errorf("split: reward %d: %w", reward, ErrInvalid)
	}
	if feeBPS < 0 || feeBPS > MaxFeeBPS {
		return Split{}, fmt.Errorf("split: fee %d bps: %w", feeBPS, ErrInvalid)
	}
	byUser := make(map[string]*big.Rat, len(weights))
	diff := make(map[string]float64, len(weights))
	total := new(big.Rat)
	for _, w := range weights {
		if !(w.Difficulty > 0) || math.IsInf(w.Difficulty, 0) {
			return Split{}, fmt.Errorf("split: user %q weight %v: %w", w.Username, w.Difficulty, ErrInvalid)
		}
		r := new(big.Rat).SetFloat64(w.Difficulty) // exact for finite floats
		if byUser[w.Username] == nil {
			byUser[w.Username] = new(big.Rat)
		}
		byUser[w.Username].Add(byUser[w.Username], r)
		diff[w.Username] += w.Difficulty
		total.Add(total, r)
	}
	if len(byUser) == 0 {
		return Split{}, fmt.Errorf("split: %w", ErrNoShares)
	}
	names := make([]string, 0, len(byUser))
	for u := range byUser {
		names = append(names, u)
	}
	sort.Strings(names)

	s := Split{Reward: reward, FeeBPS: feeBPS, Credits: []Credit{}}
	miners := new(big.Int).Mul(big.NewInt(reward), big.NewInt(int64(MaxFeeBPS-feeBPS)))
	miners.Quo(miners, big.NewInt(MaxFeeBPS))
	m := miners.Int64()
	s.PoolFee = reward - m

	minersRat := new(big.Rat).SetInt64(m)
	var paid int64
	q := new(big.Rat)
	amt := new(big.Int)
	for _, u := range names {
		q.Mul(minersRat, byUser[u])
		q.Quo(q, total)
		amt.Quo(q.Num(), q.Denom()) // both positive: truncation is floor
		a := amt.Int64()
		if a == 0 {
			continue
		}
		paid += a
		s.Credits = append(s.Credits, Credit{Username: u, Amount: a, Difficulty: diff[u]})
	}
	s.MinersTotal = paid
	s.Remainder = m - paid
	return s, nil
}
