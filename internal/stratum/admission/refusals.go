package admission

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

const (
	// RefusalLogPeriod is how often a flood of refused connections is
	// summarized in the log: the first refusal of a period is logged at
	// once, later ones in one line when the period ends.
	RefusalLogPeriod = time.Minute
	// refusalLogAddrs bounds the addresses counted one by one in a period.
	refusalLogAddrs = 1024
	// refusalLogTop is how many addresses a summary names.
	refusalLogTop = 5
)

// refusalLog counts connections refused at accept and keeps their logging
// to at most two lines per RefusalLogPeriod, however many there are.
// Safe for concurrent use.
type refusalLog struct {
	mu      sync.Mutex
	start   time.Time // start of the current period; zero: no period open
	reasons map[Reason]uint64
	addrs   map[string]uint64
	other   uint64 // refusals from addresses beyond refusalLogAddrs
	n       uint64 // refusals in the period after the first

	timerMu sync.Mutex
	timer   *time.Timer // ends the period; nil until the first
}

// refusalSummary is what a period counted after its first refusal.
type refusalSummary struct {
	since   time.Time
	n       uint64
	reasons map[Reason]uint64
	top     []string // "ip×count", most first
	addrs   int      // distinct addresses (at most refusalLogAddrs, plus "others")
}

// add counts a refusal at now. It reports whether it is the first of a
// new period (to be logged on its own; the caller then arranges a flush
// after RefusalLogPeriod).
func (r *refusalLog) add(now time.Time, ip string, why Reason) (first bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.start.IsZero() {
		r.start = now
		r.reasons, r.addrs, r.other, r.n = map[Reason]uint64{}, map[string]uint64{}, 0, 0
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

// refuse counts a connection refused at accept and logs it through the
// refusal summary.
func (c *Controller) refuse(ip, remote string, why Reason) {
	c.refused.Add(1)
	switch why {
	case RefusedRate:
		c.refusedRate.Add(1)
	case RefusedFull:
		c.refusedFull.Add(1)
	}
	r := &c.refusals
	if !r.add(c.now(), ip, why) {
		return
	}
	c.log.Info("stratum: connection refused; further refusals are summarized", "remote", remote, "why", string(why),
		"every", RefusalLogPeriod)
	r.timerMu.Lock()
	defer r.timerMu.Unlock()
	if r.timer == nil {
		r.timer = time.AfterFunc(RefusalLogPeriod, c.flushRefusals)
	} else {
		r.timer.Reset(RefusalLogPeriod)
	}
}

// flushRefusals logs the refusals summarized since the period's first.
func (c *Controller) flushRefusals() {
	if sum, ok := c.refusals.flush(); ok {
		sum.log(c.log)
	}
}

// FlushRefusals stops the refusal summary's timer and logs what it would
// have. A later refusal starts a new period (and the timer again).
func (c *Controller) FlushRefusals() {
	r := &c.refusals
	r.timerMu.Lock()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timerMu.Unlock()
	c.flushRefusals()
}
