package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/miner"
)

// Report is what a load run measured. Times are in milliseconds, memory in
// KiB.
type Report struct {
	Addr      string  `json:"addr"`
	Conns     int     `json:"conns"`
	Rate      float64 `json:"rate"`
	Duration  float64 `json:"duration_seconds"`
	Workers   int     `json:"workers"`
	Configure bool    `json:"configure"`

	NoFile      NoFileReport      `json:"nofile"`
	Connections ConnectionsReport `json:"connections"`
	RSS         *RSSReport        `json:"rss,omitempty"`
	Shares      SharesReport      `json:"shares"`
	Latency     Percentiles       `json:"latency_ms"`
	FanOut      FanOutReport      `json:"fanout"`

	mu sync.Mutex // guards Shares.RejectReasons and Shares.Errors
}

// NoFileReport is the descriptor limit after raising it.
type NoFileReport struct {
	Soft uint64 `json:"soft"`
	Hard uint64 `json:"hard"`
	Note string `json:"note,omitempty"`
}

// ConnectionsReport counts connection attempts.
type ConnectionsReport struct {
	Attempted   int            `json:"attempted"`
	Established int            `json:"established"`
	Failed      int            `json:"failed"`
	FailReasons map[string]int `json:"fail_reasons,omitempty"`
	// Dropped counts established connections that had ended by the end of
	// the run.
	Dropped int `json:"dropped"`
	// Seconds is how long opening all connections took.
	Seconds float64 `json:"seconds"`
}

// RSSReport is the pool's resident memory.
type RSSReport struct {
	BeforeKiB  int64   `json:"before_kib"`
	AfterKiB   int64   `json:"after_kib"`
	PerConnKiB float64 `json:"per_conn_kib"`
}

// SharesReport counts submits. Submitted = Accepted + Rejected + Unanswered.
type SharesReport struct {
	Submitted atomic.Int64 `json:"-"`
	Accepted  atomic.Int64 `json:"-"`
	Rejected  atomic.Int64 `json:"-"`
	// unanswered counts submits whose connection ended before the reply.
	unanswered atomic.Int64
	// sendErrors counts submits that could not be written (not submitted).
	sendErrors atomic.Int64
	// Blocks counts submitted shares that met the network target.
	Blocks atomic.Int64 `json:"-"`

	RejectReasons map[string]int64 `json:"-"`
	Seconds       float64          `json:"-"`
}

// sharesJSON is SharesReport's JSON form.
type sharesJSON struct {
	Submitted      int64            `json:"submitted"`
	Accepted       int64            `json:"accepted"`
	Rejected       int64            `json:"rejected"`
	Unanswered     int64            `json:"unanswered"`
	SendErrors     int64            `json:"send_errors"`
	Blocks         int64            `json:"blocks"`
	Seconds        float64          `json:"seconds"`
	AcceptedPerSec float64          `json:"accepted_per_sec"`
	RejectedPerSec float64          `json:"rejected_per_sec"`
	RejectReasons  map[string]int64 `json:"reject_reasons,omitempty"`
}

// Unanswered returns the submits that got no reply.
func (s *SharesReport) Unanswered() int64 { return s.unanswered.Load() }

func (s *SharesReport) json() sharesJSON {
	out := sharesJSON{
		Submitted: s.Submitted.Load(), Accepted: s.Accepted.Load(), Rejected: s.Rejected.Load(),
		Unanswered: s.unanswered.Load(), SendErrors: s.sendErrors.Load(), Blocks: s.Blocks.Load(),
		Seconds: s.Seconds, RejectReasons: s.RejectReasons,
	}
	if s.Seconds > 0 {
		out.AcceptedPerSec = float64(out.Accepted) / s.Seconds
		out.RejectedPerSec = float64(out.Rejected) / s.Seconds
	}
	return out
}

// MarshalJSON implements json.Marshaler.
func (s *SharesReport) MarshalJSON() ([]byte, error) {
	return marshal(s.json())
}

// Percentiles summarize durations in milliseconds.
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// FanOutReport is the spread of new-tip notifies across connections.
type FanOutReport struct {
	// Jobs is the number of new tips seen after all connections were up.
	Jobs int `json:"jobs"`
	// Delay is the per-connection arrival delay after the first arrival,
	// over all those tips.
	Delay Percentiles `json:"delay_ms"`
	// Missed counts (tip, established connection) pairs that never got
	// the notify.
	Missed int `json:"missed"`
	// PerJob details each tip.
	PerJob []JobFanOut `json:"per_job,omitempty"`
}

// JobFanOut is one tip's fan-out.
type JobFanOut struct {
	PrevHash string      `json:"prevhash"`
	Received int         `json:"received"`
	Missed   int         `json:"missed"`
	Delay    Percentiles `json:"delay_ms"`
}

func newReport(cfg Config) *Report {
	return &Report{
		Addr: cfg.Addr, Conns: cfg.Conns, Rate: cfg.Rate, Duration: cfg.Duration.Seconds(),
		Workers: cfg.Workers, Configure: cfg.Configure,
		Connections: ConnectionsReport{FailReasons: map[string]int{}},
		Shares:      SharesReport{RejectReasons: map[string]int64{}},
	}
}

func (r *Report) setRSS(before, after int64) {
	r.RSS = &RSSReport{BeforeKiB: before, AfterKiB: after}
	if n := r.Connections.Established; n > 0 {
		r.RSS.PerConnKiB = float64(after-before) / float64(n)
	}
}

// recordResult counts one submit's outcome; called from reader goroutines.
func (r *Report) recordResult(res miner.Result, err error, lat *latencies) {
	switch {
	case err != nil:
		r.Shares.unanswered.Add(1)
	case res.Accepted:
		r.Shares.Accepted.Add(1)
		lat.add(res.Latency)
	default:
		r.Shares.Rejected.Add(1)
		lat.add(res.Latency)
		reason := "false without error"
		if res.Error != nil {
			reason = strconv.Itoa(res.Error.Code) + " " + res.Error.Message
		}
		r.mu.Lock()
		r.Shares.RejectReasons[reason]++
		r.mu.Unlock()
	}
}

func (r *Report) recordSendError() { r.Shares.sendErrors.Add(1) }

func (r *Report) finishShares(elapsed time.Duration, lat *latencies) {
	r.Shares.Seconds = elapsed.Seconds()
	r.Latency = lat.percentiles()
}

// WriteText writes the human summary.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	c := r.Connections
	fmt.Fprintf(bw, "pool %s, %d connections, rate %s, %.0fs, %d hashing workers, %s\n",
		r.Addr, r.Conns, rateText(r.Rate), r.Duration, r.Workers, minerKind(r.Configure))
	if r.NoFile.Note != "" {
		fmt.Fprintf(bw, "warning: %s\n", r.NoFile.Note)
	}
	fmt.Fprintf(bw, "connections: %d attempted, %d established, %d failed, %d dropped; %.2fs to connect\n",
		c.Attempted, c.Established, c.Failed, c.Dropped, c.Seconds)
	for _, k := range slices.Sorted(maps.Keys(c.FailReasons)) {
		fmt.Fprintf(bw, "  failed: %s: %d\n", k, c.FailReasons[k])
	}
	if r.RSS != nil {
		fmt.Fprintf(bw, "pool RSS: %d KiB before, %d KiB connected and idle: %.2f KiB per connection\n",
			r.RSS.BeforeKiB, r.RSS.AfterKiB, r.RSS.PerConnKiB)
	}
	s := r.Shares.json()
	fmt.Fprintf(bw, "shares: %d submitted, %d accepted (%.0f/s), %d rejected (%.0f/s), %d unanswered, %d blocks\n",
		s.Submitted, s.Accepted, s.AcceptedPerSec, s.Rejected, s.RejectedPerSec, s.Unanswered, s.Blocks)
	for _, k := range slices.Sorted(maps.Keys(s.RejectReasons)) {
		fmt.Fprintf(bw, "  rejected: %s: %d\n", k, s.RejectReasons[k])
	}
	l := r.Latency
	fmt.Fprintf(bw, "submit → reply: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms (%d replies)\n",
		l.P50, l.P90, l.P99, l.Max, l.Count)
	f := r.FanOut
	fmt.Fprintf(bw, "new-tip fan-out: %d tips, delay after first arrival p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d missed\n",
		f.Jobs, f.Delay.P50, f.Delay.P99, f.Delay.Max, f.Missed)
	return bw.Flush()
}

func rateText(r float64) string {
	if r == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%g/s", r)
}

func minerKind(configure bool) string {
	if configure {
		return "ESP-Miner style (version rolling)"
	}
	return "cpuminer style"
}

// latencies collects durations; safe for concurrent use.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func newLatencies() *latencies { return &latencies{} }

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) percentiles() Percentiles {
	l.mu.Lock()
	defer l.mu.Unlock()
	return percentiles(l.d)
}

// percentiles sorts d and summarizes it (nearest-rank percentiles).
func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	rank := func(q float64) float64 {
		i := int(q*float64(len(d))+0.999999) - 1
		i = max(0, min(i, len(d)-1))
		return ms(d[i])
	}
	return Percentiles{Count: len(d), P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: ms(d[len(d)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fanout records when each connection read each new tip's notify.
type fanout struct {
	mu      sync.Mutex
	armedAt time.Time     // tips first seen before this are the handshake's
	updated chan struct{} // receives (without blocking) on every arrival
	tips    map[chainhash.Hash][]time.Time
	order   []chainhash.Hash
}

func newFanout() *fanout {
	return &fanout{tips: make(map[chainhash.Hash][]time.Time), updated: make(chan struct{}, 1)}
}

// armed starts counting tips first seen after t.
func (f *fanout) armed(t time.Time) {
	f.mu.Lock()
	f.armedAt = t
	f.mu.Unlock()
}

// hook returns one connection's OnEvent: it records the arrival of each
// clean notify with a prevhash new to that connection.
func (f *fanout) hook() func(miner.Event) {
	var last chainhash.Hash
	return func(e miner.Event) {
		if e.Job == nil || !e.Job.Clean || e.Job.PrevHash == last {
			return
		}
		last = e.Job.PrevHash
		f.mu.Lock()
		f.tips[last] = append(f.tips[last], e.Time)
		if len(f.tips[last]) == 1 {
			f.order = append(f.order, last)
		}
		f.mu.Unlock()
		select {
		case f.updated <- struct{}{}:
		default:
		}
	}
}

// settle waits until no notify of a new tip has been read for quiet, at
// most max: the readers of a tip that came at the end of the run (or of a
// tool running at a low priority) may still be at work.
func (f *fanout) settle(ctx context.Context, quiet, max time.Duration) {
	end := time.After(max)
	for {
		t := time.NewTimer(quiet)
		select {
		case <-f.updated:
			t.Stop()
		case <-t.C:
			return
		case <-end:
			t.Stop()
			return
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// report summarizes the tips first seen after armed.
func (f *fanout) report(established int) FanOutReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out FanOutReport
	var all []time.Duration
	for _, h := range f.order {
		arrivals := slices.Clone(f.tips[h])
		slices.SortFunc(arrivals, func(a, b time.Time) int { return a.Compare(b) })
		if f.armedAt.IsZero() || arrivals[0].Before(f.armedAt) {
			continue
		}
		delays := make([]time.Duration, len(arrivals))
		for i, t := range arrivals {
			delays[i] = t.Sub(arrivals[0])
		}
		all = append(all, delays...)
		missed := max(0, established-len(arrivals))
		out.Jobs++
		out.Missed += missed
		out.PerJob = append(out.PerJob, JobFanOut{
			PrevHash: h.String(), Received: len(arrivals), Missed: missed, Delay: percentiles(delays),
		})
	}
	out.Delay = percentiles(all)
	return out
}

// readRSS returns VmRSS of pid in KiB from /proc/<pid>/status.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS of %d: %w", pid, err)
	}
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("read RSS of %d: unexpected line %q", pid, line)
		}
		v, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read RSS of %d: %w", pid, err)
		}
		return v, nil
	}
	return 0, fmt.Errorf("read RSS of %d: no VmRSS line", pid)
}

// marshal is json.Marshal, indirect for MarshalJSON methods.
func marshal(v any) ([]byte, error) { return json.Marshal(v) }
