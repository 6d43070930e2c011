package miner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// Miner is a CPU Stratum v1 client speaking the protocol as cpuminer and
// ESP-Miner do. It owns one connection; one reader goroutine, started by New
// and waited for by Close, reads the pool's lines. All methods are safe for
// concurrent use.
type Miner struct {
	conn net.Conn
	opts Options

	wmu    sync.Mutex // serializes writes
	tx     *txStamper // transmit timestamps (KernelTxTimestamps); nil without
	nextID atomic.Uint64
	unit   atomic.Uint64 // search units (extranonce2 / version bits) handed out
	jobGen atomic.Uint64 // bumped on every new job

	mu       sync.Mutex
	pending  map[uint64]replyFunc
	en1      []byte
	en2Size  int
	diff     float64
	mask     uint32 // negotiated version-rolling mask; 0 when off
	jobs     []*Job // newest last
	events   []Event
	seq      int
	wake     chan struct{} // closed and replaced on every change
	err      error         // why the connection ended
	closing  bool
	workers  []string
	authOK   []string
	closeErr error

	done      chan struct{}
	closeOnce sync.Once
}

// New returns a Miner on conn and starts its reader goroutine. It sends
// nothing: call Handshake, or Call for a hand-made session.
func New(conn net.Conn, opts Options) *Miner {
	opts.setDefaults()
	m := &Miner{
		conn:    conn,
		opts:    opts,
		pending: make(map[uint64]replyFunc),
		wake:    make(chan struct{}),
		done:    make(chan struct{}),
		workers: opts.WorkerNames(),
	}
	if opts.KernelTxTimestamps {
		tx, err := newTxStamper(conn)
		if err != nil {
			opts.Logger.Debug("no kernel transmit timestamps", "err", err)
		} else {
			m.tx = tx
		}
	}
	go m.readLoop()
	return m
}

// Dial connects to addr over TCP, runs Handshake and returns the mining
// Miner. On error the connection is closed.
func Dial(ctx context.Context, addr string, opts Options) (*Miner, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("miner: dial %s: %w", addr, err)
	}
	m := New(conn, opts)
	if err := m.Handshake(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Extranonce1 returns the session's extranonce1 and extranonce2 size.
func (m *Miner) Extranonce1() ([]byte, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.en1, m.en2Size
}

// Difficulty returns the latest mining.set_difficulty (0 before any).
func (m *Miner) Difficulty() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.diff
}

// VersionMask returns the negotiated version-rolling mask, 0 when version
// rolling is off.
func (m *Miner) VersionMask() uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mask
}

// Workers returns the worker names the pool authorized, in order.
func (m *Miner) Workers() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.authOK...)
}

// Jobs returns the jobs still valid: those since the latest clean job,
// oldest first, at most Options.MaxJobs.
func (m *Miner) Jobs() []*Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*Job(nil), m.jobs...)
}

// CurrentJob returns the newest job, or nil before the first mining.notify.
func (m *Miner) CurrentJob() *Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.jobs) == 0 {
		return nil
	}
	return m.jobs[len(m.jobs)-1]
}

// Done is closed when the connection has ended and the reader goroutine
// has returned.
func (m *Miner) Done() <-chan struct{} { return m.done }

// Err returns why the connection ended (wrapping ErrClosed after Close,
// io.EOF when the pool closed it, ErrProtocol, ...), or nil while it is up.
func (m *Miner) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Close closes the connection and waits for the reader goroutine. Pending
// calls fail with ErrClosed. It is idempotent and returns the error of
// closing the connection (nil when it had already ended).
func (m *Miner) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closing = true
		m.mu.Unlock()
		if err := m.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			m.closeErr = err
		}
		<-m.done
	})
	return m.closeErr
}
