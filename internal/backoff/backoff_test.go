package backoff_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stratumd/stratumd/internal/backoff"
)

const ms = time.Millisecond

// take returns the next n waits of b.
func take(b *backoff.Backoff, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = b.Next()
	}
	return out
}

// TestSchedules: each loop's documented timings, exactly (see doc.go).
func TestSchedules(t *testing.T) {
	for _, tc := range []struct {
		loop     string
		min, max time.Duration
		want     []time.Duration
	}{
		{"rpcsource reconnect", 250 * ms, 2 * time.Second,
			[]time.Duration{250 * ms, 500 * ms, time.Second, 2 * time.Second, 2 * time.Second}},
		{"drainer retry", 50 * ms, 5 * time.Second,
			[]time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5 * time.Second, 5 * time.Second}},
		{"resubmission", time.Second, time.Minute,
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}},
		{"template retry", 100 * ms, 10 * time.Second,
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 10 * time.Second, 10 * time.Second}},
		{"accept retry", 5 * ms, time.Second,
			[]time.Duration{5 * ms, 10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, time.Second, time.Second}},
		{"password worker restart", 100 * ms, 30 * time.Second,
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 12800 * ms, 25600 * ms, 30 * time.Second, 30 * time.Second}},
		// Edge cases the loops' configurations allow.
		{"max not a power of two of min", 50 * ms, 80 * ms, []time.Duration{50 * ms, 80 * ms, 80 * ms}},
		{"max equal to min", time.Second, time.Second, []time.Duration{time.Second, time.Second, time.Second}},
		{"max below min: min first, then max", time.Second, 200 * ms, []time.Duration{time.Second, 200 * ms, 200 * ms}},
		{"no overflow near the largest duration", math.MaxInt64 / 3, math.MaxInt64,
			[]time.Duration{math.MaxInt64 / 3, math.MaxInt64 / 3 * 2, math.MaxInt64, math.MaxInt64}},
	} {
		b := backoff.Backoff{Min: tc.min, Max: tc.max}
		if got := take(&b, len(tc.want)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.loop, got, tc.want)
		}
	}
}

func TestResetAndRetrying(t *testing.T) {
	b := backoff.Backoff{Min: 10 * ms, Max: time.Second}
	if b.Retrying() {
		t.Fatal("a fresh Backoff says it is retrying")
	}
	take(&b, 3)
	if !b.Retrying() {
		t.Fatal("not retrying after Next")
	}
	b.Reset()
	if b.Retrying() {
		t.Fatal("retrying after Reset")
	}
	if got := take(&b, 2); !slices.Equal(got, []time.Duration{10 * ms, 20 * ms}) {
		t.Fatalf("after Reset: %v", got)
	}
	// A value copy is an independent schedule (the per-block ones).
	c := b
	c.Next()
	if d := b.Next(); d != 40*ms {
		t.Fatalf("copy advanced the original: %v", d)
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := backoff.Sleep(t.Context(), 3*time.Second); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Fatalf("slept %v", got)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start = time.Now()
		if err := backoff.Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Sleep past its context: %v", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Fatalf("Sleep returned %v after its context ended", got)
		}
	})
}
