package stratum

import (
	"testing"
	"time"
)

// The accept loop sleeps once per acceptBurstLen accepts that came within
// acceptBurstWindow, and never when they are spread out.
func TestAcceptBurstPace(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var slept []time.Duration
	b := acceptBurst{now: func() time.Time { return now }, sleep: func(d time.Duration) { slept = append(slept, d) }}

	for range 3 * acceptBurstLen { // a flood: no time passes between accepts
		b.pace()
	}
	if len(slept) != 3 || slept[0] != acceptBurstPause {
		t.Fatalf("slept %v in a burst of %d accepts, want 3 × %v", slept, 3*acceptBurstLen, acceptBurstPause)
	}

	slept = nil
	step := acceptBurstWindow/acceptBurstLen + time.Millisecond
	for range 5 * acceptBurstLen { // ordinary arrivals
		now = now.Add(step)
		b.pace()
	}
	if len(slept) != 0 {
		t.Fatalf("slept %v for accepts %v apart", slept, step)
	}
}
