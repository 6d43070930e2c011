package backoff

import (
	"context"
	"time"
)

// Backoff is a capped exponential schedule of waits between attempts. Set
// Min (positive) and Max (at least Min); the zero state then starts at Min.
// A Backoff is a small value meant to be kept per loop or per retried item;
// it is not safe for concurrent use.
type Backoff struct {
	// Min is the first wait, and the wait after Reset.
	Min time.Duration
	// Max caps every wait after the first.
	Max time.Duration

	next time.Duration // the wait Next returns; 0: Min (not retrying)
}

// Next returns the wait before the next attempt and advances the schedule:
// Min on the first call (and the first after Reset), then twice the
// previous wait, capped at Max.
func (b *Backoff) Next() time.Duration {
	d := b.next
	if d == 0 {
		d = b.Min
	}
	if d > b.Max/2 {
		b.next = b.Max // also where 2*d would overflow
	} else {
		b.next = 2 * d
	}
	return d
}

// Reset starts the schedule over at Min: call it after a success.
func (b *Backoff) Reset() { b.next = 0 }

// Retrying reports whether Next was called since the last Reset (or since
// the start): whether the loop is between failed attempts.
func (b *Backoff) Retrying() bool { return b.next != 0 }

// Sleep waits for d, or until ctx ends, and then returns ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
