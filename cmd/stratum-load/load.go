package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratumd/stratumd/internal/miner"
)

// Defaults of the load parameters.
const (
	DefaultDuration = 10 * time.Second
	DefaultParallel = 256
	DefaultInFlight = 4
	DefaultSettle   = time.Second
	// drainTimeout bounds the wait for replies to the last submits.
	drainTimeout = 5 * time.Second
	// fanoutQuiet is how long no tip may arrive before the fan-out is
	// reported.
	fanoutQuiet = 500 * time.Millisecond
	// handshakeTimeout bounds one connection's handshake.
	handshakeTimeout = 30 * time.Second
)

// Credential is one user for mining.authorize.
type Credential struct {
	User, Password string
}

// Config is one load run.
type Config struct {
	// Addr is the pool's host:port.
	Addr string
	// Conns is the number of connections to open.
	Conns int
	// Rate is the total submits per second; 0 submits as fast as shares
	// are found.
	Rate float64
	// Duration is how long shares are submitted (or, with Idle, the
	// connections kept idle) after all connections are up.
	Duration time.Duration
	// Users are assigned to connections in turn; connection i authorizes
	// "user.w<i>" (or the user alone when it already names a worker).
	Users []Credential
	// Ramp is new connections per second; 0 opens them as fast as
	// Parallel allows.
	Ramp float64
	// Idle keeps the connections idle for Duration instead of submitting:
	// the "N miners, then one new block" fan-out and memory measurement.
	Idle bool
	// Configure makes every connection an ESP-Miner: mining.configure
	// version-rolling first, version bits rolled.
	Configure bool
	// PID is the pool's process id, 0 for none: its RSS is read before and
	// after connecting.
	PID int
	// Workers is the number of hashing goroutines; GOMAXPROCS-1 (at least
	// 1) when 0.
	Workers int
	// Parallel bounds the handshakes in progress; DefaultParallel when 0.
	Parallel int
	// InFlight bounds unanswered submits per connection; DefaultInFlight
	// when 0.
	InFlight int
	// Settle is the wait between the last handshake and the second RSS
	// reading.
	Settle time.Duration
	// OnConnected, when set, is called once all connections are up (the
	// tests use it to trigger a new tip).
	OnConnected func()
	// Logger receives progress logs; none when nil.
	Logger *slog.Logger
}

// Validate reports a Config that cannot run.
func (c *Config) Validate() error {
	switch {
	case c.Addr == "":
		return errors.New("no address")
	case c.Conns < 1:
		return fmt.Errorf("-conns %d: want at least 1", c.Conns)
	case c.Rate < 0 || c.Ramp < 0 || c.Duration < 0 || c.Settle < 0:
		return errors.New("-rate, -ramp, -duration and -settle must not be negative")
	case len(c.Users) == 0:
		return errors.New("no users")
	case c.Workers < 0 || c.Parallel < 0 || c.InFlight < 0:
		return errors.New("-workers, -parallel and -inflight must not be negative")
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Workers == 0 {
		c.Workers = defaultWorkers()
	}
	if c.Parallel == 0 {
		c.Parallel = DefaultParallel
	}
	if c.InFlight == 0 {
		c.InFlight = DefaultInFlight
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// defaultWorkers leaves one core to the reader goroutines: with every P
// busy hashing, Go polls the network only every 10 ms or so and the
// latencies measured would be the tool's own.
func defaultWorkers() int {
	return max(1, runtime.GOMAXPROCS(0)-1)
}

// conn is one load connection.
type conn struct {
	m        *miner.Miner
	inflight atomic.Int32
}

// Run opens the connections, measures, submits shares for cfg.Duration and
// returns the report. It closes every connection before returning. The
// error is for a run that could not start at all; connection failures are
// counted in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	rep := newReport(cfg)
	rep.NoFile = raiseNoFile(uint64(cfg.Conns) + 64)
	if rep.NoFile.Note != "" {
		cfg.Logger.Warn(rep.NoFile.Note)
	}

	var rssBefore int64
	if cfg.PID > 0 {
		v, err := readRSS(cfg.PID)
		if err != nil {
			return nil, err
		}
		rssBefore = v
	}

	fan := newFanout()
	start := time.Now()
	conns := connectAll(ctx, cfg, rep, fan)
	defer func() {
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Go(func() { c.m.Close() })
		}
		wg.Wait()
	}()
	rep.Connections.Seconds = time.Since(start).Seconds()
	fan.armed(time.Now())
	cfg.Logger.Info("connected", "established", rep.Connections.Established,
		"failed", rep.Connections.Failed, "seconds", rep.Connections.Seconds)

	if cfg.PID > 0 {
		if err := sleepCtx(ctx, cfg.Settle); err != nil {
			return nil, err
		}
		after, err := readRSS(cfg.PID)
		if err != nil {
			return nil, err
		}
		rep.setRSS(rssBefore, after)
	}
	if cfg.OnConnected != nil {
		cfg.OnConnected()
	}

	switch {
	case cfg.Idle:
		cfg.Logger.Info("idle", "seconds", cfg.Duration.Seconds())
		_ = sleepCtx(ctx, cfg.Duration) // an interrupt ends the wait early; the report is still made
	case cfg.Duration > 0 && len(conns) > 0:
		submitPhase(ctx, cfg, conns, rep)
	}
	for _, c := range conns {
		select {
		case <-c.m.Done():
			rep.Connections.Dropped++
		default:
		}
	}
	fan.settle(ctx, fanoutQuiet, drainTimeout)
	rep.FanOut = fan.report(rep.Connections.Established)
	return rep, nil
}

// connectAll opens cfg.Conns connections at the ramp rate, Parallel
// handshakes at a time, and returns the established ones.
func connectAll(ctx context.Context, cfg Config, rep *Report, fan *fanout) []*conn {
	var (
		mu    sync.Mutex
		conns []*conn
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, cfg.Parallel)
	pace := newPacer(cfg.Ramp)
	for i := range cfg.Conns {
		if pace.wait(ctx) != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		rep.Connections.Attempted++
		cred := cfg.Users[i%len(cfg.Users)]
		opts := miner.Options{
			User:             cred.User,
			Password:         cred.Password,
			VersionRolling:   cfg.Configure,
			HandshakeTimeout: handshakeTimeout,
			MaxJobs:          4,
			MaxEvents:        8,
			OnEvent:          fan.hook(),
			KernelTimestamps: true,
		}
		if !strings.Contains(cred.User, ".") {
			opts.Workers = []string{fmt.Sprintf("w%d", i)}
		}
		if cfg.Configure {
			opts.UserAgent = miner.UserAgentBitaxe
		}
		wg.Go(func() {
			defer func() { <-sem }()
			m, err := miner.Dial(ctx, cfg.Addr, opts)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rep.Connections.Failed++
				rep.Connections.FailReasons[failReason(err)]++
				return
			}
			rep.Connections.Established++
			conns = append(conns, &conn{m: m})
		})
	}
	wg.Wait()
	return conns
}

// failReason classifies a connection failure for the report.
func failReason(err error) string {
	var rpcErr *miner.RPCError
	var opErr *net.OpError
	switch {
	case errors.Is(err, miner.ErrUnauthorized):
		if errors.As(err, &rpcErr) {
			return fmt.Sprintf("unauthorized (%d %s)", rpcErr.Code, rpcErr.Message)
		}
		return "unauthorized"
	case errors.Is(err, miner.ErrSubscribe):
		return "subscribe refused"
	case errors.Is(err, miner.ErrProtocol):
		return "protocol error"
	case errors.Is(err, context.DeadlineExceeded):
		return "handshake timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		if errors.Is(err, syscallEMFILE()) {
			return "dial: too many open files"
		}
		return "dial: " + opErr.Err.Error()
	case errors.Is(err, miner.ErrClosed):
		return "closed by the pool during the handshake"
	}
	return err.Error()
}

// submitPhase finds and submits shares on conns for cfg.Duration, then
// waits (bounded) for the outstanding replies.
func submitPhase(ctx context.Context, cfg Config, conns []*conn, rep *Report) {
	var (
		outstanding sync.WaitGroup
		next        atomic.Uint64
		lat         = newLatencies()
	)
	pace := newPacer(cfg.Rate)
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	var workers sync.WaitGroup
	for range cfg.Workers {
		workers.Go(func() {
			for runCtx.Err() == nil {
				c := pick(conns, &next, int32(cfg.InFlight))
				if c == nil {
					// Every connection is dead or has InFlight submits
					// pending: let the replies come.
					if sleepCtx(runCtx, time.Millisecond) != nil {
						return
					}
					continue
				}
				share, err := c.m.FindShare(runCtx)
				if err != nil {
					continue // cancelled, or the connection died
				}
				if pace.wait(runCtx) != nil {
					return
				}
				c.inflight.Add(1)
				outstanding.Add(1)
				err = c.m.SubmitAsync(share, func(r miner.Result, err error) {
					defer outstanding.Done()
					c.inflight.Add(-1)
					rep.recordResult(r, err, lat)
				})
				if err != nil {
					c.inflight.Add(-1)
					outstanding.Done()
					rep.recordSendError()
					continue
				}
				rep.Shares.Submitted.Add(1)
				if share.MeetsNetwork {
					rep.Shares.Blocks.Add(1)
				}
			}
		})
	}
	workers.Wait()
	elapsed := time.Since(start)

	drained := make(chan struct{})
	go func() {
		outstanding.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		// Closing the connections fails the missing replies, which are
		// then counted as unanswered.
		for _, c := range conns {
			c.m.Close()
		}
		<-drained
	}
	rep.finishShares(elapsed, lat)
}

// pick returns the next live connection with room for a submit, or nil
// after a full round without one.
func pick(conns []*conn, next *atomic.Uint64, maxInFlight int32) *conn {
	for range len(conns) {
		c := conns[next.Add(1)%uint64(len(conns))]
		if c.inflight.Load() >= maxInFlight {
			continue
		}
		select {
		case <-c.m.Done():
			continue
		default:
		}
		return c
	}
	return nil
}

// pacer spaces events at a fixed rate shared by all callers; a zero rate
// does not wait.
type pacer struct {
	interval time.Duration
	mu       sync.Mutex
	next     time.Time
}

func newPacer(perSecond float64) *pacer {
	p := &pacer{}
	if perSecond > 0 {
		p.interval = time.Duration(float64(time.Second) / perSecond)
	}
	return p
}

// wait blocks until the caller's slot or ctx ends.
func (p *pacer) wait(ctx context.Context) error {
	if p.interval <= 0 {
		return ctx.Err()
	}
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(p.interval)
	p.mu.Unlock()
	return sleepCtx(ctx, time.Until(at))
}

// sleepCtx waits for d or the end of ctx.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
