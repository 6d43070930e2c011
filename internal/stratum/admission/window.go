package admission

import "time"

// window counts events in fixed windows: a window opens with the first
// event after the previous one ended, and lasts the length its caller
// gives. An ended window counts nothing, so forgetting it changes nothing.
// The zero value is an ended window. Not safe for concurrent use.
type window struct {
	start time.Time
	n     int
}

// count returns the events in the window at now, or zero when it has
// ended (or holds none).
func (w *window) count(now time.Time, length time.Duration) int {
	if w.n == 0 || now.Sub(w.start) >= length {
		return 0
	}
	return w.n
}

// add counts an event at now, opening a new window when the last one has
// ended, and returns the count with it. fresh reports a new window.
func (w *window) add(now time.Time, length time.Duration) (n int, fresh bool) {
	if w.count(now, length) == 0 {
		w.start, w.n, fresh = now, 0, true
	}
	w.n++
	return w.n, fresh
}

// bucket is a token bucket: events at rate per second on average, in
// bursts of up to burst, on the caller's clock. It stores what is missing
// from a full bucket, so the zero value is a full bucket. Not safe for
// concurrent use.
//
// Why not golang.org/x/time/rate (which the resubmitter uses): every
// address record holds one, under the table's one mutex. A rate.Limiter is
// 80 bytes with a mutex of its own and its zero value allows nothing; this is
// 32 bytes, starts full as its zero value, and says when it is full again
// (full), which is when the record may be forgotten.
type bucket struct {
	used float64   // tokens taken and not yet refilled as of at
	at   time.Time // when used was last brought up to date
}

// refill brings used up to date at now. A clock that went back refills
// nothing.
func (b *bucket) refill(now time.Time, rate float64) {
	if b.used > 0 && now.After(b.at) {
		b.used = max(0, b.used-now.Sub(b.at).Seconds()*rate)
	}
	b.at = now
}

// take takes one token at now and reports whether there was one.
func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	b.refill(now, rate)
	if b.used+1 > float64(burst) {
		return false
	}
	b.used++
	return true
}

// full reports whether the bucket is full at now, i.e. whether forgetting
// it (a zero bucket) changes nothing.
func (b *bucket) full(now time.Time, rate float64) bool {
	return b.used == 0 || (now.After(b.at) && b.used <= now.Sub(b.at).Seconds()*rate)
}
