//go:build chaos

package hostile

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/miner"
)

// sample is one honest submit.
type sample struct {
	at       time.Time
	latency  time.Duration
	accepted bool
	stale    bool // rejected 21: a new tip (an attacker's share can be a regtest block) overtook it
}

// honest is a set of honest miners on 127.0.0.1 submitting one share every
// pace each (blocks withheld, so the tip never moves). They run in a
// process of their own (startHonest), so that the attackers' goroutines in
// the test process do not delay the readers that time the replies.
type honest struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	samples     []sample
	disconnects int
	lastErr     error
}

func runHonest(t *testing.T, addr, user, password string, miners int, pace time.Duration) *honest {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &honest{cancel: cancel}
	ready := make(chan error, miners)
	for i := range miners {
		h.wg.Go(func() {
			// Submits are timed by the kernel on both ends: from the
			// request's transmit timestamp to the reply's receive
			// timestamp. The latency is stratumd's, not this process's
			// waits for a core while the attackers run.
			m, err := miner.Dial(ctx, addr, miner.Options{User: user, Password: password,
				Workers: []string{fmt.Sprintf("h%d", i)}, VersionRolling: i%2 == 1, KernelTimestamps: true, KernelTxTimestamps: true})
			ready <- err
			if err != nil {
				return
			}
			defer m.Close()
			// Independent miners do not submit in step: miner i starts
			// i/miners of a pace late, so one stall of the server delays
			// one submit, not all of them at once.
			select {
			case <-ctx.Done():
				return
			case <-time.After(pace * time.Duration(i) / time.Duration(miners)):
			}
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				s, err := m.FindShare(ctx)
				for err == nil && s.MeetsNetwork {
					s, err = m.FindShare(ctx)
				}
				if err == nil {
					var r miner.Result
					r, err = m.Submit(ctx, s)
					if err == nil {
						h.mu.Lock()
						h.samples = append(h.samples, sample{at: time.Now(), latency: r.Latency, accepted: r.Accepted,
							stale: r.Error != nil && r.Error.Code == 21})
						h.mu.Unlock()
						continue
					}
				}
				if ctx.Err() == nil {
					h.mu.Lock()
					h.disconnects++
					h.lastErr = err
					h.mu.Unlock()
				}
				return
			}
		})
	}
	for range miners {
		if err := <-ready; err != nil {
			cancel()
			h.wg.Wait()
			t.Fatalf("honest miner: %v", err)
		}
	}
	t.Cleanup(h.stop)
	return h
}

func (h *honest) stop() {
	h.cancel()
	h.wg.Wait()
}

// summary is honest mining over a time window.
type summary struct {
	submits, accepted int
	stale             int
	p50, p99, max     time.Duration
	span              time.Duration
}

func (s summary) String() string {
	return fmt.Sprintf("%d submits in %v (%.0f/s), %.2f %% of those not overtaken by a new tip accepted (%d stale), latency p50 %v p99 %v max %v",
		s.submits, s.span.Round(100*time.Millisecond), float64(s.submits)/s.span.Seconds(), s.rate()*100, s.stale,
		s.p50.Round(10*time.Microsecond), s.p99.Round(10*time.Microsecond), s.max.Round(10*time.Microsecond))
}

// rate is the share of submits accepted, leaving out those a new tip made
// stale while in flight.
func (s summary) rate() float64 {
	if s.submits-s.stale <= 0 {
		return 0
	}
	return float64(s.accepted) / float64(s.submits-s.stale)
}

// between returns a copy of the samples taken in [from, to).
func (h *honest) between(from, to time.Time) []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	var in []sample
	for _, x := range h.samples {
		if !x.at.Before(from) && x.at.Before(to) {
			in = append(in, x)
		}
	}
	return in
}

func (h *honest) window(from, to time.Time) summary {
	s := summary{span: to.Sub(from)}
	var lats []time.Duration
	for _, x := range h.between(from, to) {
		s.submits++
		if x.accepted {
			s.accepted++
		}
		if x.stale {
			s.stale++
		}
		lats = append(lats, x.latency)
	}
	if len(lats) > 0 {
		sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
		s.p50, s.p99, s.max = lats[len(lats)/2], lats[min(len(lats)-1, len(lats)*99/100)], lats[len(lats)-1]
	}
	return s
}

// Environment of the honest-miner helper process.
const (
	envHonestAddr  = "HOSTILE_HONEST_ADDR"
	envHonestUser  = "HOSTILE_HONEST_USER"
	envHonestPass  = "HOSTILE_HONEST_PASSWORD"
	envHonestCount = "HOSTILE_HONEST_MINERS"
	envHonestPace  = "HOSTILE_HONEST_PACE"
)

// TestHonestHelper is not a test of its own: it is the honest miners'
// process for TestHostileClients. It mines until its stdin closes, then
// prints one "S <unix ns> <latency ns> <1 accepted, 2 stale, 0 rejected>" line per submit and a
// "D <disconnects> <last error>" line.
func TestHonestHelper(t *testing.T) {
	addr := os.Getenv(envHonestAddr)
	if addr == "" {
		t.Skip("the honest-miner process of TestHostileClients")
	}
	n, _ := strconv.Atoi(os.Getenv(envHonestCount))
	pace, _ := time.ParseDuration(os.Getenv(envHonestPace))
	h := runHonest(t, addr, os.Getenv(envHonestUser), os.Getenv(envHonestPass), n, pace)
	fmt.Println("READY")
	io.Copy(io.Discard, os.Stdin)
	h.stop()
	w := bufio.NewWriter(os.Stdout)
	for _, x := range h.samples {
		acc := 0
		if x.accepted {
			acc = 1
		} else if x.stale {
			acc = 2
		}
		fmt.Fprintf(w, "S %d %d %d\n", x.at.UnixNano(), int64(x.latency), acc)
	}
	fmt.Fprintf(w, "D %d %v\n", h.disconnects, h.lastErr)
	w.Flush()
}

// startHonest runs the honest miners in a helper process (this test
// binary, TestHonestHelper) and waits until they mine. stop collects their
// samples.
func startHonest(t *testing.T, addr, user, password string, miners int, pace time.Duration) *honestProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHonestHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHonestAddr+"="+addr, envHonestUser+"="+user, envHonestPass+"="+password,
		envHonestCount+"="+strconv.Itoa(miners), envHonestPace+"="+pace.String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hp := &honestProc{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout), h: &honest{}}
	t.Cleanup(func() { hp.stop() })
	for hp.out.Scan() {
		if hp.out.Text() == "READY" {
			return hp
		}
	}
	t.Fatalf("honest miners did not start: %v", cmd.Wait())
	return nil
}

// honestProc is the honest miners' process.
type honestProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	out     *bufio.Scanner
	h       *honest
	stopped bool
	err     error
}

// stop ends the honest miners and reads their samples. Idempotent.
func (hp *honestProc) stop() error {
	if hp.stopped {
		return hp.err
	}
	hp.stopped = true
	hp.stdin.Close()
	for hp.out.Scan() {
		f := strings.Fields(hp.out.Text())
		switch {
		case len(f) == 4 && f[0] == "S":
			at, _ := strconv.ParseInt(f[1], 10, 64)
			lat, _ := strconv.ParseInt(f[2], 10, 64)
			hp.h.samples = append(hp.h.samples, sample{at: time.Unix(0, at), latency: time.Duration(lat), accepted: f[3] == "1", stale: f[3] == "2"})
		case len(f) >= 2 && f[0] == "D":
			hp.h.disconnects, _ = strconv.Atoi(f[1])
			if hp.h.disconnects > 0 {
				hp.h.lastErr = errors.New(strings.Join(f[2:], " "))
			}
		}
	}
	hp.err = hp.cmd.Wait()
	return hp.err
}

func (hp *honestProc) window(from, to time.Time) summary { return hp.h.window(from, to) }
