package admission

import (
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	const length = time.Minute
	var w window
	now := testEpoch
	if n := w.count(now, length); n != 0 {
		t.Fatalf("zero window counts %d", n)
	}
	if n, fresh := w.add(now, length); n != 1 || !fresh {
		t.Fatalf("first add: %d, fresh %v; want 1, true", n, fresh)
	}
	// Counting does not move the window; events inside it add up.
	if n := w.count(now.Add(30*time.Second), length); n != 1 {
		t.Fatalf("count inside the window %d", n)
	}
	if n, fresh := w.add(now.Add(59*time.Second), length); n != 2 || fresh {
		t.Fatalf("add inside the window: %d, fresh %v; want 2, false", n, fresh)
	}
	// The window ends length after its first event, whatever came later.
	if n := w.count(now.Add(length-time.Nanosecond), length); n != 2 {
		t.Fatalf("count just before the end %d", n)
	}
	if n := w.count(now.Add(length), length); n != 0 {
		t.Fatalf("count at the end %d", n)
	}
	// The next event opens a new window at its own time.
	later := now.Add(90 * time.Second)
	if n, fresh := w.add(later, length); n != 1 || !fresh {
		t.Fatalf("add after the end: %d, fresh %v; want 1, true", n, fresh)
	}
	if n := w.count(later.Add(length-time.Nanosecond), length); n != 1 {
		t.Fatalf("new window ended early: %d", n)
	}
	// A clock that went back counts in the open window.
	if n := w.count(later.Add(-time.Hour), length); n != 1 {
		t.Fatalf("count on a clock that went back %d", n)
	}
}

func TestTokenBucket(t *testing.T) {
	const rate, burst = 10.0, 3 // 10 per second, 3 at once
	var b bucket
	now := testEpoch
	if !b.full(now, rate) {
		t.Fatal("zero bucket not full")
	}
	for i := range burst {
		if !b.take(now, rate, burst) {
			t.Fatalf("take %d of the burst refused", i+1)
		}
	}
	if b.take(now, rate, burst) {
		t.Fatal("take beyond the burst allowed")
	}
	if b.full(now, rate) {
		t.Fatal("empty bucket reported full")
	}
	// 99 ms refill 0.99 of a token: still none.
	if b.take(now.Add(99*time.Millisecond), rate, burst) {
		t.Fatal("take allowed before a token was refilled")
	}
	// At 100 ms one token is back, and only one.
	now = now.Add(100 * time.Millisecond)
	if !b.take(now, rate, burst) {
		t.Fatal("refilled token refused")
	}
	if b.take(now, rate, burst) {
		t.Fatal("second take after one refill allowed")
	}
	// A clock that goes back refills nothing and breaks nothing.
	if b.take(now.Add(-time.Hour), rate, burst) {
		t.Fatal("take allowed on a clock that went back")
	}
	// After a long pause the bucket is full again, but holds no more than
	// the burst.
	now = now.Add(time.Hour)
	if !b.full(now, rate) {
		t.Fatal("bucket not full after an hour")
	}
	n := 0
	for b.take(now, rate, burst) {
		n++
	}
	if n != burst {
		t.Fatalf("%d takes after a long pause, want the burst %d", n, burst)
	}
	// full turns true exactly when the deficit has been refilled.
	if b.full(now.Add(299*time.Millisecond), rate) || !b.full(now.Add(300*time.Millisecond), rate) {
		t.Fatal("full before 300 ms or not after (3 tokens at 10/s)")
	}
}
