package daemontest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/testutil"
)

// Timeouts of the child process's life cycle.
const (
	// ReadyTimeout bounds the wait for "stratumd ready" after a start.
	ReadyTimeout = 2 * time.Minute
	// StopTimeout bounds the wait for a graceful stop (SIGTERM) before
	// the process is killed.
	StopTimeout = time.Minute
)

// Sentinel errors.
var (
	// ErrExited reports that the process ended while something was awaited.
	ErrExited = errors.New("daemontest: stratumd exited")
	// ErrNoStats reports that no "stratumd stopped" line was logged.
	ErrNoStats = errors.New("daemontest: no server stats logged")
)

// Main is a TestMain body for suites that drive the stratumd binary: it
// builds it once into a temporary directory, stores its path in *bin, runs
// the tests and removes the directory. It returns the exit code.
func Main(m *testing.M, prefix string, bin *string) int {
	dir, err := os.MkdirTemp("", prefix+"-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	*bin, err = Build(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Build compiles ./cmd/stratumd into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	return BuildCommand(ctx, dir, "stratumd")
}

// BuildCommand compiles ./cmd/<name> (stratumd, payout, ...) into dir and
// returns the binary's path.
func BuildCommand(ctx context.Context, dir, name string) (string, error) {
	root, err := testutil.RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("daemontest: go build ./cmd/%s: %w\n%s", name, err, b)
	}
	return out, nil
}

// FreeAddr returns a loopback address with a TCP port that was free a
// moment ago, so that a restarted stratumd listens where miners reconnect.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Line is one JSON log record of stratumd.
type Line map[string]any

// Msg returns the record's message.
func (l Line) Msg() string { return l.Str("msg") }

// Str returns the record's attribute key as text ("" when absent).
func (l Line) Str(key string) string {
	switch v := l[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// RemoteIP returns the IP of the record's "remote" attribute ("" when none).
func (l Line) RemoteIP() string {
	r := l.Str("remote")
	if h, _, err := net.SplitHostPort(r); err == nil {
		return h
	}
	return r
}

// Options configure a Process.
type Options struct {
	// Args are stratumd's arguments; "--log-format json" is appended.
	Args []string
	// Env is added to the process environment.
	Env []string
	// Wrapper, when set, runs the binary through it (e.g. {"prlimit",
	// "--fsize=262144", "--"}).
	Wrapper []string
}

// Process is a stratumd child process, restartable on the same arguments.
type Process struct {
	t       testing.TB
	bin     string
	opts    Options
	logPath string

	mu     sync.Mutex
	lines  []Line
	raw    int // lines read, JSON or not
	wake   chan struct{}
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current incarnation has ended
	status error         // its exit status
	starts int
}

// Start runs stratumd and waits until it logs "stratumd ready". It is
// stopped (SIGTERM, then SIGKILL) at cleanup; when the test failed, the last
// log lines are printed.
func Start(t testing.TB, bin string, opts Options) *Process {
	t.Helper()
	// The log outlives the test's directory when the test fails.
	f, err := os.CreateTemp("", "stratumd-"+strings.ReplaceAll(t.Name(), "/", "_")+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	p := &Process{t: t, bin: bin, opts: opts, logPath: f.Name(), wake: make(chan struct{})}
	t.Cleanup(func() {
		if p.Running() {
			if err := p.Stop(); err != nil {
				t.Errorf("daemontest: stop at cleanup: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("stratumd log kept in %s; last lines:\n%s", p.logPath, p.Tail(30))
		} else {
			os.Remove(p.logPath)
		}
	})
	p.start()
	return p
}

// LogPath is the file holding everything the process wrote to stderr.
func (p *Process) LogPath() string { return p.logPath }

func (p *Process) start() {
	p.t.Helper()
	args := append(append([]string{}, p.opts.Args...), "--log-format", "json")
	name := p.bin
	if len(p.opts.Wrapper) > 0 {
		args = append(append(append([]string{}, p.opts.Wrapper[1:]...), p.bin), args...)
		name = p.opts.Wrapper[0]
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), p.opts.Env...)
	logf, err := os.OpenFile(p.logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stdout = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.t.Fatalf("daemontest: start %s: %v", name, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.status = cmd, exited, nil
	p.starts++
	from := len(p.lines)
	p.mu.Unlock()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		p.readLog(stderr, logf)
	}()
	go func() {
		<-readDone // Wait closes the pipe: read everything first
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.status = err
		close(exited)
		p.broadcastLocked()
		p.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	if _, err := p.waitLogFrom(ctx, from, func(l Line) bool { return l.Msg() == "stratumd ready" }, true); err != nil {
		p.t.Fatalf("daemontest: stratumd not ready: %v\n%s", err, p.Tail(40))
	}
}

// readLog parses stderr line by line, keeping JSON records and copying
// everything to the log file.
func (p *Process) readLog(r io.Reader, file io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		b := sc.Bytes()
		file.Write(b)
		file.Write([]byte{'\n'})
		var l Line
		if json.Unmarshal(b, &l) != nil {
			l = Line{"msg": "(not json) " + string(b)}
		}
		p.mu.Lock()
		p.lines = append(p.lines, l)
		p.raw++
		p.broadcastLocked()
		p.mu.Unlock()
	}
}

func (p *Process) broadcastLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// Running reports whether the current incarnation is still running.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Exited is closed when the current incarnation ends.
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Pid is the current incarnation's process id.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill() {
	p.t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("daemontest: SIGKILL: %v", err)
	}
	<-exited
}

// Stop sends SIGTERM and waits up to StopTimeout for a clean exit; it
// returns the exit status (nil for status 0). A process that does not stop
// in time is killed and an error returned.
func (p *Process) Stop() error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("daemontest: SIGTERM: %w", err)
	}
	select {
	case <-exited:
	case <-time.After(StopTimeout):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("daemontest: stratumd did not stop within %v of SIGTERM", StopTimeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// Restart starts the process again with the same arguments (after Kill or
// Stop) and waits until it is ready.
func (p *Process) Restart() {
	p.t.Helper()
	if p.Running() {
		p.t.Fatal("daemontest: Restart while running")
	}
	p.start()
}

// Lines returns the log records so far.
func (p *Process) Lines() []Line {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Line(nil), p.lines...)
}

// Count returns how many records so far match.
func (p *Process) Count(match func(Line) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if match(l) {
			n++
		}
	}
	return n
}

// Tail returns the last n records as text.
func (p *Process) Tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	from := max(0, len(p.lines)-n)
	var b strings.Builder
	for _, l := range p.lines[from:] {
		j, _ := json.Marshal(l)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// WaitLog returns the first record (of all incarnations) that matches,
// waiting for it until ctx ends or the process exits.
func (p *Process) WaitLog(ctx context.Context, match func(Line) bool) (Line, error) {
	return p.waitLogFrom(ctx, 0, match, true)
}

func (p *Process) waitLogFrom(ctx context.Context, from int, match func(Line) bool, failOnExit bool) (Line, error) {
	next := from
	for {
		p.mu.Lock()
		for ; next < len(p.lines); next++ {
			if match(p.lines[next]) {
				l := p.lines[next]
				p.mu.Unlock()
				return l, nil
			}
		}
		wake, exited, status := p.wake, p.exited, p.status
		p.mu.Unlock()
		select {
		case <-exited:
			if failOnExit {
				// Lines read before the exit are all in; look once more.
				p.mu.Lock()
				done := next >= len(p.lines)
				p.mu.Unlock()
				if done {
					return nil, fmt.Errorf("%w (%w)", ErrExited, status)
				}
			}
		default:
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, fmt.Errorf("daemontest: waiting for a log line: %w", ctx.Err())
		}
	}
}

// ServerStats are the stratum server counters of the last "stratumd
// stopped" record: scalar counters by name, SharesRejected by reason and
// SessionsClosed by close reason.
type ServerStats struct {
	Counters map[string]int64
	Rejected map[string]int64
	Closed   map[string]int64
}

var (
	statsScalar = regexp.MustCompile(`([A-Za-z]+):(-?[0-9]+)(?:[ }]|$)`)
	statsMaps   = regexp.MustCompile(`(SharesRejected|SessionsClosed):map\[([^\]]*)\]`)
)

// ServerStats parses the counters stratumd logged when it last stopped.
func (p *Process) ServerStats() (ServerStats, error) {
	p.mu.Lock()
	var s string
	for i := len(p.lines) - 1; i >= 0; i-- {
		if p.lines[i].Msg() == "stratumd stopped" {
			s = p.lines[i].Str("server")
			break
		}
	}
	p.mu.Unlock()
	if s == "" {
		return ServerStats{}, ErrNoStats
	}
	return ParseServerStats(s), nil
}

// ParseServerStats parses a fmt "%+v" of stratum.Stats.
func ParseServerStats(s string) ServerStats {
	st := ServerStats{Counters: map[string]int64{}, Rejected: map[string]int64{}, Closed: map[string]int64{}}
	for _, m := range statsMaps.FindAllStringSubmatch(s, -1) {
		dst := st.Rejected
		if m[1] == "SessionsClosed" {
			dst = st.Closed
		}
		for _, kv := range strings.Fields(m[2]) {
			k, v, _ := strings.Cut(kv, ":")
			n, _ := strconv.ParseInt(v, 10, 64)
			dst[k] = n
		}
		s = strings.Replace(s, m[0], "", 1)
	}
	for _, m := range statsScalar.FindAllStringSubmatch(s, -1) {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		st.Counters[m[1]] = n
	}
	return st
}
