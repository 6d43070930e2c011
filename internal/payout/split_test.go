package payout

import (
	"errors"
	"fmt"
	"math"
	"testing"
)

func sumSplit(s Split) int64 {
	t := s.PoolFee + s.Remainder
	for _, c := range s.Credits {
		t += c.Amount
	}
	return t
}

func TestSplitReward(t *testing.T) {
	type want struct {
		fee, rest int64
		credits   map[string]int64
	}
	tests := []struct {
		name    string
		reward  int64
		bps     int
		weights []Weight
		want    want
	}{
		{"one user, no fee", 312500000, 0, []Weight{{"a", 5}},
			want{0, 0, map[string]int64{"a": 312500000}}},
		{"one user, 1%", 312500000, 100, []Weight{{"a", 5}},
			want{3125000, 0, map[string]int64{"a": 309375000}}},
		{"fee 100%", 312500000, 10000, []Weight{{"a", 1}, {"b", 3}},
			want{312500000, 0, map[string]int64{}}},
		// miners = 100; thirds floor to 33 each; 1 sat remainder to the pool
		{"remainder to pool", 100, 0, []Weight{{"a", 1}, {"b", 1}, {"c", 1}},
			want{0, 1, map[string]int64{"a": 33, "b": 33, "c": 33}}},
		// miners = floor(101*9950/10000) = 100 (100.495); fee 1 (rounded up)
		{"fee rounds up", 101, 50, []Weight{{"a", 1}, {"b", 1}},
			want{1, 0, map[string]int64{"a": 50, "b": 50}}},
		// weights 1:2:4 of 700 → 100, 200, 400 exactly
		{"proportional", 700, 0, []Weight{{"c", 4}, {"a", 1}, {"b", 2}},
			want{0, 0, map[string]int64{"a": 100, "b": 200, "c": 400}}},
		// the same user twice is added up
		{"duplicate user", 90, 0, []Weight{{"a", 1}, {"b", 1}, {"a", 1}},
			want{0, 0, map[string]int64{"a": 60, "b": 30}}},
		// a partial oldest share: 0.5 of a share weighs half
		{"partial share", 300, 0, []Weight{{"a", 1}, {"b", 0.5}},
			want{0, 0, map[string]int64{"a": 200, "b": 100}}},
		// a tiny weight rounds to zero: no credit row, its part is remainder
		{"dust user", 1000, 0, []Weight{{"a", 1e6}, {"b", 1}},
			want{0, 1, map[string]int64{"a": 999}}},
		{"zero reward", 0, 200, []Weight{{"a", 1}},
			want{0, 0, map[string]int64{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := SplitReward(tc.reward, tc.bps, tc.weights)
			if err != nil {
				t.Fatal(err)
			}
			if sumSplit(s) != tc.reward || s.Reward != tc.reward {
				t.Fatalf("sum %d, reward %d", sumSplit(s), tc.reward)
			}
			if s.PoolFee != tc.want.fee || s.Remainder != tc.want.rest {
				t.Fatalf("fee %d remainder %d, want %d %d", s.PoolFee, s.Remainder, tc.want.fee, tc.want.rest)
			}
			if len(s.Credits) != len(tc.want.credits) {
				t.Fatalf("credits %+v, want %v", s.Credits, tc.want.credits)
			}
			var miners int64
			for i, c := range s.Credits {
				if tc.want.credits[c.Username] != c.Amount {
					t.Errorf("%s got %d, want %d", c.Username, c.Amount, tc.want.credits[c.Username])
				}
				if i > 0 && s.Credits[i-1].Username >= c.Username {
					t.Errorf("credits not sorted: %+v", s.Credits)
				}
				miners += c.Amount
			}
			if miners != s.MinersTotal {
				t.Errorf("miners total %d, credits sum %d", s.MinersTotal, miners)
			}
		})
	}
}

func TestSplitRewardManyUsers(t *testing.T) {
	var ws []Weight
	for i := range 5000 {
		ws = append(ws, Weight{fmt.Sprintf("user%04d", i), float64(1 + i%17)})
	}
	const reward = 625000000 + 12345
	s, err := SplitReward(reward, 150, ws)
	if err != nil {
		t.Fatal(err)
	}
	if sumSplit(s) != reward {
		t.Fatalf("sum %d", sumSplit(s))
	}
	if s.Remainder < 0 || s.Remainder >= int64(len(ws)) {
		t.Fatalf("remainder %d not in [0, users)", s.Remainder)
	}
	// each user's amount is the floor of its exact share
	miners := reward - s.PoolFee
	var total float64
	for _, w := range ws {
		total += w.Difficulty
	}
	for _, c := range s.Credits {
		exact := float64(miners) * c.Difficulty / total
		if float64(c.Amount) > exact+1e-6 || float64(c.Amount) < exact-1 {
			t.Fatalf("%s got %d, exact %f", c.Username, c.Amount, exact)
		}
	}
}

func TestSplitRewardErrors(t *testing.T) {
	for _, tc := range []struct {
		reward int64
		bps    int
		ws     []Weight
		want   error
	}{
		{100, 0, nil, ErrNoShares},
		{-1, 0, []Weight{{"a", 1}}, ErrInvalid},
		{100, -1, []Weight{{"a", 1}}, ErrInvalid},
		{100, 10001, []Weight{{"a", 1}}, ErrInvalid},
		{100, 0, []Weight{{"a", 0}}, ErrInvalid},
		{100, 0, []Weight{{"a", math.NaN()}}, ErrInvalid},
		{100, 0, []Weight{{"a", math.Inf(1)}}, ErrInvalid},
	} {
		if _, err := SplitReward(tc.reward, tc.bps, tc.ws); !errors.Is(err, tc.want) {
			t.Errorf("SplitReward(%d, %d, %v) = %v, want %v", tc.reward, tc.bps, tc.ws, err, tc.want)
		}
	}
}

func FuzzSplitReward(f *testing.F) {
	f.Add(int64(312500000), 100, []byte{1, 2, 3, 250})
	f.Add(int64(1), 0, []byte{7})
	f.Add(int64(math.MaxInt64), 9999, []byte{255, 255, 1})
	f.Add(int64(0), 10000, []byte{0, 5})
	f.Fuzz(func(t *testing.T, reward int64, bps int, raw []byte) {
		var ws []Weight
		for i, b := range raw {
			// user names repeat so that sums per user are exercised
			ws = append(ws, Weight{fmt.Sprintf("u%d", i%7), float64(b) / 16})
		}
		s, err := SplitReward(reward, bps, ws)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNoShares) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if sumSplit(s) != reward {
			t.Fatalf("sum %d != reward %d", sumSplit(s), reward)
		}
		if s.PoolFee < 0 || s.Remainder < 0 || s.MinersTotal < 0 {
			t.Fatalf("negative part: %+v", s)
		}
		for _, c := range s.Credits {
			if c.Amount <= 0 {
				t.Fatalf("non-positive credit %+v", c)
			}
		}
		if int64(len(ws)) > 0 && s.Remainder >= int64(len(ws))+1 {
			t.Fatalf("remainder %d with %d weights", s.Remainder, len(ws))
		}
	})
}
