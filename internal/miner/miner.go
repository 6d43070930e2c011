package miner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// User agents of the miners the Miner imitates.
const (
	// UserAgentCPUMiner is cpuminer's mining.subscribe parameter.
	UserAgentCPUMiner = "cpuminer/2.5.1"
	// UserAgentBitaxe is an ESP-Miner (BitAxe) mining.subscribe parameter.
	UserAgentBitaxe = "bitaxe/BM1370/v2.4.0"
)

// Defaults for zero Options fields.
const (
	// DefaultVersionRollingMask is the mask requested in mining.configure,
	// as ESP-Miner and most ASIC firmwares request it.
	DefaultVersionRollingMask uint32 = 0x1fffe000
	// DefaultMaxLineLength bounds the lines read from the pool.
	DefaultMaxLineLength = 64 << 10
	// DefaultWriteTimeout bounds every write to the pool.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultHandshakeTimeout bounds Handshake when its context has no
	// deadline.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxJobs is how many jobs are kept between clean jobs.
	DefaultMaxJobs = 16
	// DefaultMaxEvents is how many notifications Events keeps.
	DefaultMaxEvents = 1024
)

// Options configure a Miner. The zero value is a cpuminer without version
// rolling, authorizing an empty user; set at least User.
type Options struct {
	// User is the pool user, usually a payout address.
	User string
	// Password is sent with every mining.authorize ("x" when empty, as
	// cpuminer does).
	Password string
	// Workers are worker names, each authorized as "User.worker"; when
	// empty, User alone is authorized. Shares are submitted under the first.
	Workers []string
	// UserAgent is the mining.subscribe parameter; UserAgentCPUMiner when
	// empty.
	UserAgent string
	// VersionRolling sends BIP 310 mining.configure first, as ESP-Miner
	// does, and rolls version bits inside the negotiated mask.
	VersionRolling bool
	// VersionRollingMask is the mask requested; DefaultVersionRollingMask
	// when zero.
	VersionRollingMask uint32
	// SuggestDifficulty, when positive, is sent with
	// mining.suggest_difficulty right after mining.subscribe, as ESP-Miner
	// does. Its reply is not waited for (some pools send none).
	SuggestDifficulty float64
	// ExtranonceSubscribe sends mining.extranonce.subscribe after
	// authorizing, as NiceHash-compatible miners do.
	ExtranonceSubscribe bool
	// Pipeline sends all handshake requests at once and then reads the
	// replies, as ESP-Miner does; otherwise each request waits for its
	// reply, as cpuminer does.
	Pipeline bool

	// MaxLineLength bounds the lines read from the pool;
	// DefaultMaxLineLength when zero.
	MaxLineLength int
	// WriteTimeout bounds every write; DefaultWriteTimeout when zero.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds Handshake (and Dial) when the context has no
	// deadline; DefaultHandshakeTimeout when zero.
	HandshakeTimeout time.Duration
	// MaxJobs bounds the jobs kept; DefaultMaxJobs when zero.
	MaxJobs int
	// MaxEvents bounds the notifications kept for Events and WaitEvent
	// (oldest dropped first); DefaultMaxEvents when zero.
	MaxEvents int
	// OnEvent, when set, is called from the reader goroutine for every
	// notification, after the Miner's state is updated. It must not block
	// or call the Miner's blocking methods.
	OnEvent func(Event)
	// Logger receives debug logs; none when nil.
	Logger *slog.Logger
	// Now is the clock for event times and latencies; time.Now when nil.
	Now func() time.Time
	// KernelTimestamps times every line read by the kernel's receive
	// timestamp of its bytes (SO_TIMESTAMPNS, Linux, TCP connections):
	// when the line reached the socket rather than when the reader
	// goroutine got to it, so that a load tool running thousands of
	// Miners on the pool's own cores does not add its scheduling delays
	// to what it measures. Elsewhere, or when the socket refuses, Now is
	// used.
	KernelTimestamps bool
	// KernelTxTimestamps starts a submit's latency at the kernel's
	// transmit timestamp of the request (SO_TIMESTAMPING, software, Linux,
	// TCP): when it left the socket, not when the writing goroutine was
	// about to write it, so that the miner's own waits for a core between
	// the two are not counted. It costs a read of the socket's error
	// queue per submit. Elsewhere, or when the socket refuses, the time
	// before the write is used.
	KernelTxTimestamps bool
}

func (o *Options) setDefaults() {
	if o.UserAgent == "" {
		o.UserAgent = UserAgentCPUMiner
	}
	if o.VersionRollingMask == 0 {
		o.VersionRollingMask = DefaultVersionRollingMask
	}
	if o.MaxLineLength <= 0 {
		o.MaxLineLength = DefaultMaxLineLength
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.MaxJobs <= 0 {
		o.MaxJobs = DefaultMaxJobs
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// WorkerNames returns the names mining.authorize sends: "User.worker" for
// each worker, or User alone.
func (o *Options) WorkerNames() []string {
	if len(o.Workers) == 0 {
		return []string{o.User}
	}
	names := make([]string, len(o.Workers))
	for i, w := range o.Workers {
		names[i] = o.User + "." + w
	}
	return names
}

// reply is a pool's answer to one request.
type reply struct {
	result json.RawMessage
	err    *RPCError
	at     time.Time
}

// replyFunc receives a reply, or the error that ended the connection.
type replyFunc func(reply, error)

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

// Handshake runs the session start of a real miner: mining.configure
// (version-rolling, when Options.VersionRolling), mining.subscribe,
// mining.suggest_difficulty (when set), mining.authorize for every worker,
// mining.extranonce.subscribe (when set), and then waits for the first
// mining.notify. A refused authorize fails with an error wrapping
// ErrUnauthorized and the pool's RPCError.
func (m *Miner) Handshake(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.opts.HandshakeTimeout)
		defer cancel()
	}
	var pending []<-chan error
	// send writes a request whose reply handle applies in the reader
	// goroutine, before any later line is read (a mining.notify right
	// after the subscribe reply must see the extranonce).
	send := func(method string, params []any, handle func(reply) error) error {
		ch, err := m.startHandled(method, params, handle)
		if err != nil {
			return err
		}
		if m.opts.Pipeline {
			pending = append(pending, ch)
			return nil
		}
		return m.await(ctx, method, ch)
	}

	if m.opts.VersionRolling {
		params := []any{
			[]string{"version-rolling"},
			map[string]any{
				"version-rolling.mask":          fmt.Sprintf("%08x", m.opts.VersionRollingMask),
				"version-rolling.min-bit-count": 2,
			},
		}
		if err := send("mining.configure", params, m.handleConfigure); err != nil {
			return err
		}
	}
	if err := send("mining.subscribe", []any{m.opts.UserAgent}, m.handleSubscribe); err != nil {
		return err
	}
	if d := m.opts.SuggestDifficulty; d > 0 {
		if err := m.notifyOnly("mining.suggest_difficulty", []any{d}); err != nil {
			return err
		}
	}
	password := m.opts.Password
	if password == "" {
		password = "x"
	}
	for _, w := range m.workers {
		name := w
		err := send("mining.authorize", []any{name, password}, func(r reply) error {
			if r.err != nil {
				return fmt.Errorf("%w: %s: %w", ErrUnauthorized, name, r.err)
			}
			if string(r.result) != "true" {
				return fmt.Errorf("%w: %s: result %.64s", ErrUnauthorized, name, r.result)
			}
			m.mu.Lock()
			m.authOK = append(m.authOK, name)
			m.mu.Unlock()
			return nil
		})
		if err != nil {
			return err
		}
	}
	if m.opts.ExtranonceSubscribe {
		if err := m.notifyOnly("mining.extranonce.subscribe", []any{}); err != nil {
			return err
		}
	}
	for _, ch := range pending {
		if err := m.await(ctx, "handshake", ch); err != nil {
			return err
		}
	}
	if _, err := m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil }); err != nil {
		return fmt.Errorf("miner: waiting for the first mining.notify: %w", err)
	}
	return nil
}

// handleConfigure reads the BIP 310 reply. An error reply leaves version
// rolling off, as real miners do with pools that do not know the method.
func (m *Miner) handleConfigure(r reply) error {
	if r.err != nil {
		m.opts.Logger.Debug("mining.configure refused", "err", r.err)
		return nil
	}
	var res map[string]json.RawMessage
	if err := json.Unmarshal(r.result, &res); err != nil {
		return fmt.Errorf("%w: mining.configure result: %w", ErrProtocol, err)
	}
	if string(res["version-rolling"]) != "true" {
		return nil
	}
	mask, err := hex32Field(res["version-rolling.mask"], "version-rolling.mask")
	if err != nil {
		return err
	}
	if mask&^m.opts.VersionRollingMask != 0 {
		return fmt.Errorf("%w: version-rolling mask %08x is not inside the requested %08x",
			ErrProtocol, mask, m.opts.VersionRollingMask)
	}
	m.mu.Lock()
	m.mask = mask
	m.mu.Unlock()
	return nil
}

// handleSubscribe reads [subscriptions, extranonce1, extranonce2_size].
func (m *Miner) handleSubscribe(r reply) error {
	if r.err != nil {
		return fmt.Errorf("%w: %w", ErrSubscribe, r.err)
	}
	var res []json.RawMessage
	if err := json.Unmarshal(r.result, &res); err != nil || len(res) < 3 {
		return fmt.Errorf("%w: result %.128s", ErrSubscribe, r.result)
	}
	en1, err := hexField(res[1], "extranonce1", 0, 32)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSubscribe, err)
	}
	var size int
	if err := json.Unmarshal(res[2], &size); err != nil || size < 1 || size > 16 {
		return fmt.Errorf("%w: extranonce2 size %.16s", ErrSubscribe, res[2])
	}
	m.mu.Lock()
	m.en1, m.en2Size = en1, size
	m.mu.Unlock()
	return nil
}

// callReply is a reply or the connection's end.
type callReply struct {
	r   reply
	err error
}

// start sends a request and returns where its reply will arrive.
func (m *Miner) start(method string, params []any) (<-chan callReply, error) {
	ch := make(chan callReply, 1)
	_, err := m.send(method, params, func(r reply, err error) { ch <- callReply{r, err} })
	return ch, err
}

// startHandled sends a request; handle runs in the reader goroutine with
// the reply and its error arrives on the returned channel.
func (m *Miner) startHandled(method string, params []any, handle func(reply) error) (<-chan error, error) {
	ch := make(chan error, 1)
	_, err := m.send(method, params, func(r reply, err error) {
		if err == nil {
			err = handle(r)
		}
		ch <- err
	})
	return ch, err
}

// await waits for a request started with startHandled.
func (m *Miner) await(ctx context.Context, method string, ch <-chan error) error {
	select {
	case err := <-ch:
		if err != nil {
			return fmt.Errorf("miner: %s: %w", method, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("miner: %s: %w", method, ctx.Err())
	}
}

// notifyOnly sends a request whose reply is not waited for.
func (m *Miner) notifyOnly(method string, params []any) error {
	_, err := m.send(method, params, func(r reply, err error) {
		if r.err != nil {
			m.opts.Logger.Debug("request refused", "method", method, "err", r.err)
		}
	})
	return err
}

// send registers cb for the reply and writes the request. It returns the
// time the request was written.
func (m *Miner) send(method string, params []any, cb replyFunc) (sentAt, error) {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(params)
	if err != nil {
		return sentAt{}, fmt.Errorf("miner: encode %s params: %w", method, err)
	}
	methodJSON, err := json.Marshal(method)
	if err != nil {
		return sentAt{}, fmt.Errorf("miner: encode method: %w", err)
	}
	id := m.nextID.Add(1)
	// cpuminer's layout: method first, then params, then id.
	line := make([]byte, 0, 40+len(methodJSON)+len(body))
	line = append(line, `{"method": `...)
	line = append(line, methodJSON...)
	line = append(line, `, "params": `...)
	line = append(line, body...)
	line = append(line, `, "id": `...)
	line = strconv.AppendUint(line, id, 10)
	line = append(line, "}\n"...)
	return m.sendLine(id, line, cb)
}

// sendLine registers cb under id and writes line.
func (m *Miner) sendLine(id uint64, line []byte, cb replyFunc) (sentAt, error) {
	m.mu.Lock()
	if m.err != nil {
		err := m.err
		m.mu.Unlock()
		return sentAt{}, err
	}
	m.pending[id] = cb
	m.mu.Unlock()
	at, err := m.write(line)
	if err != nil {
		m.mu.Lock()
		delete(m.pending, id)
		m.mu.Unlock()
	}
	return at, err
}

// sentAt is when a request was written: the clock's time just before the
// write and, with kernel timestamps, the key of its transmit timestamp.
type sentAt struct {
	t     time.Time
	key   uint32
	keyed bool
}

// sentTime is when the request left: the kernel's transmit timestamp when
// there is one, else the clock's time before the write.
func (m *Miner) sentTime(s sentAt) time.Time {
	if s.keyed {
		if t, ok := m.tx.stamp(s.key); ok {
			return t
		}
	}
	return s.t
}

// write writes line under the write deadline and returns when it was
// handed to the kernel.
func (m *Miner) write(line []byte) (sentAt, error) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	// The deadline is on the real clock, whatever Options.Now says.
	if err := m.conn.SetWriteDeadline(time.Now().Add(m.opts.WriteTimeout)); err != nil {
		return sentAt{}, m.connErr(err)
	}
	at := sentAt{t: m.opts.Now()}
	if _, err := m.conn.Write(line); err != nil {
		return at, m.connErr(err)
	}
	if m.tx != nil {
		at.key, at.keyed = m.tx.wrote(len(line)), true
	}
	return at, nil
}

// connErr maps an I/O error to ErrClosed when the Miner is closing.
func (m *Miner) connErr(err error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return fmt.Errorf("miner: write: %w", err)
}

// SendRaw writes b to the pool as is (no terminator is added): the escape
// hatch for malformed or oversized lines.
func (m *Miner) SendRaw(b []byte) error {
	_, err := m.write(b)
	return err
}

// Call sends a request with the given params (each encoded with
// encoding/json) and waits for the reply. A reply with an error member
// returns it as *RPCError with a nil error; error is for the connection or
// the context.
func (m *Miner) Call(ctx context.Context, method string, params ...any) (json.RawMessage, *RPCError, error) {
	ch, err := m.start(method, params)
	if err != nil {
		return nil, nil, err
	}
	select {
	case cr := <-ch:
		if cr.err != nil {
			return nil, nil, fmt.Errorf("miner: %s: %w", method, cr.err)
		}
		return cr.r.result, cr.r.err, nil
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("miner: %s: %w", method, ctx.Err())
	}
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

// readLoop reads the pool's lines until the connection ends.
func (m *Miner) readLoop() {
	defer close(m.done)
	var (
		src io.Reader = m.conn
		rx  *rxStampReader
	)
	if m.opts.KernelTimestamps {
		r, err := newRxStampReader(m.conn)
		if err != nil {
			m.opts.Logger.Debug("no kernel receive timestamps", "err", err)
		} else {
			src, rx = r, r
		}
	}
	lr := newLineReader(src, m.opts.MaxLineLength)
	for {
		line, err := lr.readLine()
		if err == nil {
			// The last read is the one that completed the line: the
			// buffered reader reads only when no full line is left.
			at := m.opts.Now()
			if rx != nil {
				if t := rx.stamp(); !t.IsZero() {
					at = t
				}
			}
			err = m.handleLine(line, at)
		}
		if err != nil {
			m.fail(err)
			return
		}
	}
}

// fail ends the connection with err and fails every pending call.
func (m *Miner) fail(err error) {
	m.mu.Lock()
	if m.closing {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	} else if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrLineTooLong) {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	m.err = err
	pending := m.pending
	m.pending = make(map[uint64]replyFunc)
	m.broadcastLocked()
	m.mu.Unlock()
	m.conn.Close()
	for _, cb := range pending {
		cb(reply{}, err)
	}
	m.opts.Logger.Debug("connection ended", "err", err)
}

// broadcastLocked wakes WaitEvent callers. m.mu is held.
func (m *Miner) broadcastLocked() {
	close(m.wake)
	m.wake = make(chan struct{})
}

// message is any line from the pool: a reply or a notification.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method *string         `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// handleLine handles one line from the pool.
func (m *Miner) handleLine(line []byte, at time.Time) error {
	var msg message
	if err := json.Unmarshal(line, &msg); err != nil {
		return fmt.Errorf("%w: %w: %.128q", ErrProtocol, err, line)
	}
	if msg.Method != nil && *msg.Method != "" {
		return m.handleNotification(*msg.Method, msg.ID, msg.Params, at)
	}
	var id uint64
	if err := json.Unmarshal(msg.ID, &id); err != nil {
		return fmt.Errorf("%w: reply with id %.32s", ErrProtocol, msg.ID)
	}
	rpcErr, err := parseRPCError(msg.Error)
	if err != nil {
		return err
	}
	m.mu.Lock()
	cb, ok := m.pending[id]
	delete(m.pending, id)
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: reply to id %d, which is not pending", ErrProtocol, id)
	}
	result := msg.Result
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	cb(reply{result: result, err: rpcErr, at: at}, nil)
	return nil
}

// parseRPCError decodes a reply's error member.
func parseRPCError(v json.RawMessage) (*RPCError, error) {
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	switch v[0] {
	case '[':
		var a []json.RawMessage
		if err := json.Unmarshal(v, &a); err != nil || len(a) < 2 {
			return nil, fmt.Errorf("%w: error member %.64s", ErrProtocol, v)
		}
		var e RPCError
		if err := json.Unmarshal(a[0], &e.Code); err != nil {
			return nil, fmt.Errorf("%w: error code %.16s", ErrProtocol, a[0])
		}
		if err := json.Unmarshal(a[1], &e.Message); err != nil {
			return nil, fmt.Errorf("%w: error message %.64s", ErrProtocol, a[1])
		}
		return &e, nil
	case '{':
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("%w: error member %.64s", ErrProtocol, v)
		}
		return &RPCError{Code: e.Code, Message: e.Message}, nil
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("%w: error member %.64s", ErrProtocol, v)
		}
		return &RPCError{Message: s}, nil
	}
	return nil, fmt.Errorf("%w: error member %.64s", ErrProtocol, v)
}

// handleNotification applies a server-to-client message and records it.
func (m *Miner) handleNotification(method string, id, params json.RawMessage, at time.Time) error {
	if len(params) == 0 || string(params) == "null" {
		params = json.RawMessage("[]")
	}
	ev := Event{Method: method, Params: params, Time: at}
	var args []json.RawMessage
	if err := json.Unmarshal(params, &args); err != nil {
		return fmt.Errorf("%w: %s params are not an array", ErrProtocol, method)
	}

	m.mu.Lock()
	switch method {
	case "mining.notify":
		job, err := parseNotify(params)
		if err != nil {
			m.mu.Unlock()
			return err
		}
		job.Extranonce1, job.Extranonce2Size = m.en1, m.en2Size
		job.Difficulty, job.VersionMask, job.Received = m.diff, m.mask, at
		if job.Clean {
			m.jobs = m.jobs[:0:0]
		}
		m.jobs = append(m.jobs, job)
		if len(m.jobs) > m.opts.MaxJobs {
			m.jobs = append([]*Job(nil), m.jobs[len(m.jobs)-m.opts.MaxJobs:]...)
		}
		m.jobGen.Add(1)
		ev.Job = job
	case "mining.set_difficulty":
		var d float64
		if len(args) < 1 || json.Unmarshal(args[0], &d) != nil || !(d > 0) || math.IsInf(d, 0) {
			m.mu.Unlock()
			return fmt.Errorf("%w: mining.set_difficulty %.64s", ErrProtocol, params)
		}
		m.diff = d
		ev.Difficulty = d
	case "mining.set_version_mask":
		if len(args) < 1 {
			m.mu.Unlock()
			return fmt.Errorf("%w: mining.set_version_mask without a mask", ErrProtocol)
		}
		mask, err := hex32Field(args[0], "version mask")
		if err != nil {
			m.mu.Unlock()
			return err
		}
		if m.mask != 0 || m.opts.VersionRolling {
			m.mask = mask & m.opts.VersionRollingMask
		}
		ev.VersionMask = mask
	case "mining.set_extranonce":
		var size int
		if len(args) < 2 || json.Unmarshal(args[1], &size) != nil || size < 1 || size > 16 {
			m.mu.Unlock()
			return fmt.Errorf("%w: mining.set_extranonce %.64s", ErrProtocol, params)
		}
		en1, err := hexField(args[0], "extranonce1", 0, 32)
		if err != nil {
			m.mu.Unlock()
			return err
		}
		m.en1, m.en2Size = en1, size
		ev.Extranonce1, ev.Extranonce2Size = en1, size
	case "client.reconnect":
		rc, err := parseReconnect(args)
		if err != nil {
			m.mu.Unlock()
			return err
		}
		ev.Reconnect = rc
	}
	m.seq++
	ev.Seq = m.seq
	m.events = append(m.events, ev)
	if len(m.events) > m.opts.MaxEvents {
		m.events = append([]Event(nil), m.events[len(m.events)-m.opts.MaxEvents:]...)
	}
	m.broadcastLocked()
	m.mu.Unlock()

	if m.opts.OnEvent != nil {
		m.opts.OnEvent(ev)
	}
	// Server requests with an id (client.get_version) get cpuminer's answer.
	if method == "client.get_version" && len(id) > 0 && string(id) != "null" {
		line, err := json.Marshal(struct {
			ID     json.RawMessage `json:"id"`
			Result string          `json:"result"`
			Error  any             `json:"error"`
		}{id, m.opts.UserAgent, nil})
		if err == nil {
			if _, err := m.write(append(line, '\n')); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseReconnect decodes client.reconnect params: [] or [host, port, wait],
// port a number or a string.
func parseReconnect(args []json.RawMessage) (*Reconnect, error) {
	rc := new(Reconnect)
	if len(args) >= 1 && string(args[0]) != "null" {
		h, err := str(args[0], "reconnect host")
		if err != nil {
			return nil, err
		}
		rc.Host = h
	}
	if len(args) >= 2 && string(args[1]) != "null" {
		v := args[1]
		if v[0] == '"' {
			s, err := str(v, "reconnect port")
			if err != nil {
				return nil, err
			}
			v = json.RawMessage(s)
		}
		if err := json.Unmarshal(v, &rc.Port); err != nil || rc.Port < 0 || rc.Port > 65535 {
			return nil, fmt.Errorf("%w: reconnect port %.16s", ErrProtocol, args[1])
		}
	}
	if len(args) >= 3 && string(args[2]) != "null" {
		var w float64
		if err := json.Unmarshal(args[2], &w); err != nil || w < 0 || w > 1e6 {
			return nil, fmt.Errorf("%w: reconnect wait %.16s", ErrProtocol, args[2])
		}
		rc.Wait = time.Duration(w * float64(time.Second))
	}
	return rc, nil
}
