package stratum

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// tokenBucket limits events to rate per second on average, with bursts of
// up to burst, on an injected clock. It stores what is missing from a full
// bucket, so the zero value is a full bucket. Not safe for concurrent use.
type tokenBucket struct {
	used float64   // tokens taken and not yet refilled as of at
	at   time.Time // when used was last brought up to date
}

// refill brings used up to date at now. A clock that went back refills
// nothing.
func (b *tokenBucket) refill(now time.Time, rate float64) {
	if b.used > 0 && now.After(b.at) {
		b.used = max(0, b.used-now.Sub(b.at).Seconds()*rate)
	}
	b.at = now
}

// take takes one token at now and reports whether there was one.
func (b *tokenBucket) take(now time.Time, rate float64, burst int) bool {
	b.refill(now, rate)
	if b.used+1 > float64(burst) {
		return false
	}
	b.used++
	return true
}

// full reports whether the bucket is full at now, i.e. whether forgetting
// it (a zero bucket) changes nothing.
func (b *tokenBucket) full(now time.Time, rate float64) bool {
	return b.used == 0 || (now.After(b.at) && b.used <= now.Sub(b.at).Seconds()*rate)
}

// Reasons a connection is refused at accept, as logged and counted.
const (
	refuseBanned = "banned"
	refuseCap    = "per-IP connection cap"
	refuseRate   = "per-IP connection rate"
)

const (
	// refusalLogPeriod is how often a flood of refused connections is
	// summarized in the log: the first refusal of a period is logged at
	// once, later ones in one line when the period ends.
	refusalLogPeriod = time.Minute
	// refusalLogAddrs bounds the addresses counted one by one in a period.
	refusalLogAddrs = 1024
	// refusalLogTop is how many addresses a summary names.
	refusalLogTop = 5
)

// refusalLog counts connections refused at accept and keeps their logging
// to at most two lines per refusalLogPeriod, however many there are.
// Safe for concurrent use.
type refusalLog struct {
	mu      sync.Mutex
	start   time.Time // start of the current period; zero: no period open
	reasons map[string]uint64
	addrs   map[string]uint64
	other   uint64 // refusals from addresses beyond refusalLogAddrs
	n       uint64 // refusals in the period after the first
}

// refusalSummary is what a period counted after its first refusal.
type refusalSummary struct {
	since   time.Time
	n       uint64
	reasons map[string]uint64
	top     []string // "ip×count", most first
	addrs   int      // distinct addresses (at most refusalLogAddrs, plus "others")
}

// add counts a refusal at now. It reports whether it is the first of a
// new period (to be logged on its own; the caller then arranges a flush
// after refusalLogPeriod).
func (r *refusalLog) add(now time.Time, ip, why string) (first bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.start.IsZero() {
		r.start = now
		r.reasons, r.addrs, r.other, r.n = map[string]uint64{}, map[string]uint64{}, 0, 0
		return true
	}
	r.n++
	r.reasons[why]++
	if _, ok := r.addrs[ip]; ok || len(r.addrs) < refusalLogAddrs {
		r.addrs[ip]++
	} else {
		r.other++
	}
	return false
}

// flush closes the current period and returns what it counted after its
// first refusal; ok is false when no period was open. The next refusal
// starts a new period.
func (r *refusalLog) flush() (s refusalSummary, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.start.IsZero() {
		return s, false
	}
	s = refusalSummary{since: r.start, n: r.n, reasons: r.reasons, addrs: len(r.addrs)}
	type kv struct {
		ip string
		n  uint64
	}
	list := make([]kv, 0, len(r.addrs))
	for ip, n := range r.addrs {
		list = append(list, kv{ip, n})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].n > list[j].n || list[i].n == list[j].n && list[i].ip < list[j].ip })
	for _, x := range list[:min(len(list), refusalLogTop)] {
		s.top = append(s.top, fmt.Sprintf("%s×%d", x.ip, x.n))
	}
	if r.other > 0 {
		s.top = append(s.top, fmt.Sprintf("others×%d", r.other))
	}
	r.start, r.reasons, r.addrs = time.Time{}, nil, nil
	return s, true
}

// log writes the summary as one line (nothing when the period had only its
// first refusal).
func (s refusalSummary) log(l *slog.Logger) {
	if s.n == 0 {
		return
	}
	reasons := make([]string, 0, len(s.reasons))
	for why, n := range s.reasons {
		reasons = append(reasons, fmt.Sprintf("%s: %d", why, n))
	}
	sort.Strings(reasons)
	l.Info("stratum: connections refused", "count", s.n, "since", s.since, "reasons", strings.Join(reasons, ", "),
		"addresses", s.addrs, "top", strings.Join(s.top, " "))
}

// refuse closes a connection refused at accept, counts it and logs it
// through the refusal summary.
func (s *Server) refuse(remote, ip, why string) {
	s.st.refused.Add(1)
	if why == refuseRate {
		s.st.refusedRate.Add(1)
	}
	if !s.refusals.add(s.now(), ip, why) {
		return
	}
	s.log.Info("stratum: connection refused; further refusals are summarized", "remote", remote, "why", why,
		"every", refusalLogPeriod)
	s.refusalMu.Lock()
	defer s.refusalMu.Unlock()
	if s.refusalTimer == nil {
		s.refusalTimer = time.AfterFunc(refusalLogPeriod, s.flushRefusals)
	} else {
		s.refusalTimer.Reset(refusalLogPeriod)
	}
}

// flushRefusals logs the refusals summarized since the period's first.
func (s *Server) flushRefusals() {
	if sum, ok := s.refusals.flush(); ok {
		sum.log(s.log)
	}
}

// stopRefusals stops the summary timer and logs what it would have.
func (s *Server) stopRefusals() {
	s.refusalMu.Lock()
	if s.refusalTimer != nil {
		s.refusalTimer.Stop()
	}
	s.refusalMu.Unlock()
	s.flushRefusals()
}
