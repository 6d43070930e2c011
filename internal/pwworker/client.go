package pwworker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratumd/stratumd/internal/backoff"
	"github.com/stratumd/stratumd/internal/password"
)

// Errors of this package.
var (
	// ErrConfig: Options cannot work (no command).
	ErrConfig = errors.New("pwworker: bad options")
)

// Restart backoff, the time a child must live for the backoff to start
// over, and the time Close gives a child to finish before killing it.
const (
	minBackoff   = 100 * time.Millisecond
	maxBackoff   = 30 * time.Second
	stableAfter  = 10 * time.Second
	closeTimeout = 10 * time.Second
	// DefaultTimeout is Options.Timeout's default.
	DefaultTimeout = time.Minute
)

// Options configures Start.
type Options struct {
	// Command is the child's argv: a binary that runs Serve on its stdin
	// and stdout (stratumd's path, "password-worker" and its flags).
	Command []string
	// Concurrency bounds the calls in flight at once, sent to the child or
	// hashed in-process; give the child the same bound. Zero means
	// max(1, GOMAXPROCS-1).
	Concurrency int
	// Hasher checks passwords in-process while no child can answer. Its
	// Params must be the child's, so that both give the same answers (the
	// rehash flag depends on them). Zero Params means
	// password.DefaultParams.
	Hasher password.Argon2id
	// Timeout bounds the wait for one reply: a child that does not answer
	// within it is taken as hung, killed and restarted, and its calls are
	// answered in-process. Zero means DefaultTimeout. A check at a high nice
	// value may take far longer than its CPU time while the daemon is busy:
	// keep it generous.
	Timeout time.Duration
	// Logger receives start, exit and fallback events; nil means
	// slog.Default(). Passwords are never logged.
	Logger *slog.Logger
}

// Stats counts a Client's events.
type Stats struct {
	// Starts is the number of children started.
	Starts uint64
	// Deaths is the number of children that exited before Close.
	Deaths uint64
	// InProcess is the number of calls hashed in-process because no child
	// could answer them.
	InProcess uint64
}

// Client checks passwords in a child process, restarting it when it dies
// and hashing in-process meanwhile. It is a password.Hasher and safe for
// concurrent use. A supervising goroutine runs until Close.
type Client struct {
	argv    []string
	log     *slog.Logger
	local   password.Argon2id
	timeout time.Duration
	slots   chan struct{}
	hooks   hooks

	mu           sync.Mutex
	cur          *child // nil while no child runs
	closed       bool
	outageLogged bool

	nextID                    atomic.Uint64
	starts, deaths, inProcess atomic.Uint64

	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when the supervisor returns
	closeOnce sync.Once
}

var _ password.Hasher = (*Client)(nil)

// hooks let tests wait for events instead of sleeping.
type hooks struct {
	started func(pid int) // a child started
	sent    func()        // a request was written to a child
}

// Start starts the child and returns a Client that uses it. When the child
// cannot start, the error is logged and the Client hashes in-process while
// it retries with a backoff: only bad Options (ErrConfig) or a done ctx
// make Start fail. ctx bounds only the start; the child runs until Close.
func Start(ctx context.Context, o Options) (*Client, error) {
	return start(ctx, o, hooks{})
}

func start(ctx context.Context, o Options, h hooks) (*Client, error) {
	if len(o.Command) == 0 || o.Command[0] == "" {
		return nil, fmt.Errorf("%w: no command", ErrConfig)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if o.Concurrency <= 0 {
		o.Concurrency = max(1, runtime.GOMAXPROCS(0)-1)
	}
	if o.Hasher.Params == (password.Params{}) {
		o.Hasher.Params = password.DefaultParams()
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Client{
		argv:    append([]string(nil), o.Command...),
		log:     o.Logger,
		local:   o.Hasher,
		timeout: o.Timeout,
		slots:   make(chan struct{}, o.Concurrency),
		hooks:   h,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	first, err := c.startChild()
	c.cur = first // calls go to it at once (nil: in-process)
	go c.supervise(first, err)
	return c, nil
}

// Hash returns the stored form of a new password (see
// password.Argon2id.Hash), computed by the child.
func (c *Client) Hash(password string) (string, error) {
	if len(password) > maxInput {
		return c.local.Hash(password) // refused without hashing
	}
	c.slots <- struct{}{}
	defer func() { <-c.slots }()
	rep, ok := c.call(request{Op: opHash, Password: []byte(password)})
	if !ok {
		c.noteInProcess()
		return c.local.Hash(password)
	}
	if rep.Err != "" {
		return "", remoteError(rep)
	}
	return rep.Hash, nil
}

// Verify reports whether password matches stored and whether stored should
// be replaced (see password.Argon2id.Verify), computed by the child.
func (c *Client) Verify(stored, password string) (ok, rehash bool, err error) {
	if len(stored) > maxInput || len(password) > maxInput {
		return c.local.Verify(stored, password) // refused without hashing
	}
	c.slots <- struct{}{}
	defer func() { <-c.slots }()
	rep, answered := c.call(request{Op: opVerify, Stored: []byte(stored), Password: []byte(password)})
	if !answered {
		c.noteInProcess()
		return c.local.Verify(stored, password)
	}
	if rep.Err != "" {
		return false, false, remoteError(rep)
	}
	return rep.OK, rep.Rehash, nil
}

// Stats returns the counters so far.
func (c *Client) Stats() Stats {
	return Stats{Starts: c.starts.Load(), Deaths: c.deaths.Load(), InProcess: c.inProcess.Load()}
}

// Close stops the child once it has answered what it was sent (killing it
// after closeTimeout) and waits for the supervisor. Later calls are hashed
// in-process. Close is idempotent and always returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.stop)
	})
	<-c.done
	return nil
}

// workerError is an error the child's hasher returned; for the same input
// the in-process hasher returns one with the same text and class.
type workerError struct {
	msg     string
	invalid bool
}

func (e *workerError) Error() string { return "password worker: " + e.msg }

// Unwrap gives password.ErrInvalid for the errors of that class.
func (e *workerError) Unwrap() error {
	if e.invalid {
		return password.ErrInvalid
	}
	return nil
}

func remoteError(rep reply) error {
	return &workerError{msg: rep.Err, invalid: rep.Kind == kindInvalid}
}

// noteInProcess counts a call hashed in-process, logging the first of an
// outage.
func (c *Client) noteInProcess() {
	c.inProcess.Add(1)
	c.mu.Lock()
	first := !c.outageLogged && !c.closed
	c.outageLogged = true
	c.mu.Unlock()
	if first {
		c.log.Warn("password worker unavailable; checking passwords in-process until it is back")
	}
}

// call sends req to the current child and waits for its reply. It reports
// false when no child answered it (none running, the child died or hung,
// or it could not read the request): the caller hashes in-process.
func (c *Client) call(req request) (reply, bool) {
	c.mu.Lock()
	ch := c.cur
	c.mu.Unlock()
	if ch == nil {
		return reply{}, false
	}
	req.ID = c.nextID.Add(1)
	rep, ok := ch.call(req, c.timeout, c.hooks.sent)
	if ok && rep.Kind == kindProtocol {
		c.log.Error("password worker refused a request", "err", rep.Err)
		return reply{}, false
	}
	return rep, ok
}

// setCur makes ch (nil: none) the child that calls go to.
func (c *Client) setCur(ch *child) {
	c.mu.Lock()
	c.cur = ch
	if ch != nil {
		c.outageLogged = false
	}
	c.mu.Unlock()
}

// startChild starts one child and its reading goroutine.
func (c *Client) startChild() (*child, error) {
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = sysProcAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("pwworker: stdin pipe: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		stdin.Close()
		return nil, fmt.Errorf("pwworker: stdout pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pwworker: start %s: %w", c.argv[0], err)
	}
	ch := &child{cmd: cmd, stdin: stdin, log: c.log, pending: make(map[uint64]chan reply), dead: make(chan struct{})}
	go ch.read(stdout)
	c.starts.Add(1)
	c.log.Info("password worker started", "pid", cmd.Process.Pid)
	return ch, nil
}

// supervise runs children until Close: it routes calls to the child that
// runs, restarts one that dies after a backoff (doubling up to maxBackoff,
// starting over once a child lived stableAfter), and stops the last one.
func (c *Client) supervise(ch *child, err error) {
	defer close(c.done)
	restart := backoff.Backoff{Min: minBackoff, Max: maxBackoff}
	for {
		var wait time.Duration
		if err != nil {
			wait = restart.Next()
			c.log.Error("password worker did not start; checking passwords in-process", "err", err, "retry_in", wait)
		} else {
			began := time.Now()
			c.setCur(ch)
			if c.hooks.started != nil {
				c.hooks.started(ch.cmd.Process.Pid)
			}
			select {
			case <-c.stop:
				c.setCur(nil)
				ch.shutdown(closeTimeout)
				return
			case <-ch.dead:
			}
			c.setCur(nil)
			werr := ch.cmd.Wait()
			c.deaths.Add(1)
			if time.Since(began) >= stableAfter {
				restart.Reset()
			}
			wait = restart.Next()
			c.log.Error("password worker exited; restarting it", "pid", ch.cmd.Process.Pid, "err", werr, "retry_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-t.C:
		}
		ch, err = c.startChild()
	}
}

// child is one running worker process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	log   *slog.Logger
	wmu   sync.Mutex // serializes writes to stdin

	mu      sync.Mutex
	pending map[uint64]chan reply // nil once the child is dead
	dead    chan struct{}         // closed when its stdout ends
}

// call writes req and waits for its reply. It reports false when the child
// dies or hangs (it is then killed) before answering.
func (ch *child) call(req request, timeout time.Duration, sent func()) (reply, bool) {
	line, err := json.Marshal(req)
	if err != nil { // cannot happen: bytes, strings and numbers
		return reply{}, false
	}
	rc := make(chan reply, 1)
	ch.mu.Lock()
	if ch.pending == nil {
		ch.mu.Unlock()
		return reply{}, false
	}
	ch.pending[req.ID] = rc
	ch.mu.Unlock()
	ch.wmu.Lock()
	_, err = ch.stdin.Write(append(line, '\n'))
	ch.wmu.Unlock()
	if err != nil {
		ch.forget(req.ID)
		return reply{}, false
	}
	if sent != nil {
		sent()
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case rep := <-rc:
		return rep, true
	case <-ch.dead:
		select { // a reply read just before the end
		case rep := <-rc:
			return rep, true
		default:
			return reply{}, false
		}
	case <-t.C:
		ch.forget(req.ID)
		ch.log.Error("password worker did not answer in time; killing it", "pid", ch.cmd.Process.Pid, "timeout", timeout)
		ch.cmd.Process.Kill()
		return reply{}, false
	}
}

func (ch *child) forget(id uint64) {
	ch.mu.Lock()
	if ch.pending != nil {
		delete(ch.pending, id)
	}
	ch.mu.Unlock()
}

// read delivers the child's replies until its stdout ends, then marks the
// child dead: calls still waiting are answered in-process by their callers.
func (ch *child) read(stdout io.Reader) {
	defer func() {
		ch.mu.Lock()
		ch.pending = nil
		ch.mu.Unlock()
		close(ch.dead)
	}()
	br := bufio.NewReaderSize(stdout, 4096)
	buf := make([]byte, 0, 512)
	for {
		line, err := readLine(br, buf, maxLine)
		if errors.Is(err, errLineTooLong) {
			ch.log.Error("password worker wrote an overlong line; ignored")
			continue
		}
		if err != nil {
			return
		}
		var rep reply
		if err := json.Unmarshal(line, &rep); err != nil {
			ch.log.Error("password worker wrote an unreadable line; ignored")
			continue
		}
		ch.mu.Lock()
		rc := ch.pending[rep.ID]
		delete(ch.pending, rep.ID)
		ch.mu.Unlock()
		if rc == nil {
			ch.log.Error("password worker answered an unknown request", "id", rep.ID, "err", rep.Err)
			continue
		}
		rc <- rep
	}
}

// shutdown closes the child's stdin so that it exits once it has answered
// what it was sent, and kills it if it has not within timeout.
func (ch *child) shutdown(timeout time.Duration) {
	ch.stdin.Close() // safe beside a Write: it then fails, and the call goes in-process
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch.dead:
	case <-t.C:
		ch.log.Error("password worker did not exit; killing it", "pid", ch.cmd.Process.Pid)
		ch.cmd.Process.Kill()
		<-ch.dead
	}
	ch.cmd.Wait()
}
