package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/testutil"

	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/btcdtest"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
)

// haproxyBinary returns Debian's haproxy, installing it through
// scripts/haproxy.sh when it is missing (root and apt-get).
func haproxyBinary(t *testing.T) string {
	t.Helper()
	root, err := testutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "haproxy.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/haproxy.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// haproxyConfig derives the test's configuration from deploy/haproxy.cfg:
// the frontend on front, the two servers at the instances' addresses, logs
// to stdout, and nothing that needs the system's directories or users. Every
// rewrite must apply exactly once, so a reshaped deploy file fails here.
func haproxyConfig(t *testing.T, front string, servers [2]string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	rewrites := []struct{ from, to string }{
		{"    log /dev/log local0 info", "    log stdout format raw local0 info"},
		{"    chroot /var/lib/haproxy", ""},
		{"    user haproxy", ""},
		{"    group haproxy", ""},
		{"    stats socket /run/haproxy/admin.sock mode 660 level admin", ""},
		{"    maxconn 200000", "    maxconn 1000"},
		{"    bind :3333", "    bind " + front},
		{"    server stratumd1 10.0.0.11:3333", "    server stratumd1 " + servers[0]},
		{"    server stratumd2 10.0.0.12:3333", "    server stratumd2 " + servers[1]},
	}
	lines := strings.Split(string(raw), "\n")
	for _, rw := range rewrites {
		n := 0
		for i, l := range lines {
			if l == rw.from {
				lines[i] = rw.to
				n++
			}
		}
		if n == 0 || (n > 1 && rw.from != "    maxconn 200000") {
			t.Fatalf("deploy/haproxy.cfg: %q found %d times", rw.from, n)
		}
	}
	return strings.Join(lines, "\n")
}

// startHAProxy runs haproxy in the foreground on cfg and waits until its
// frontend accepts connections.
func startHAProxy(t *testing.T, bin, cfg, front string) *testutil.SyncBuffer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, cfg)
	}
	logs := &testutil.SyncBuffer{}
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("haproxy log:\n%s", logs)
		}
	})
	deadline := time.After(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", front, time.Second)
		if err == nil {
			c.Close()
			return logs
		}
		select {
		case err := <-exited:
			t.Fatalf("haproxy exited: %v\n%s", err, logs)
		case <-deadline:
			t.Fatalf("haproxy does not accept on %s: %v\n%s", front, err, logs)
		case <-time.After(20 * time.Millisecond): // the port has no readiness event
		}
	}
}

// minerRecord is what one miner saw: the shares the pool acknowledged and
// those whose reply never came (the connection ended first), by job id.
type minerRecord struct {
	worker string
	src    string // the source address the miner connects from

	mu          sync.Mutex
	acked       map[string]int
	unanswered  map[string]int
	conns       []uint8 // the instance id of each connection, in order
	reconnects  int     // client.reconnect requests received
	ackedOnInst map[uint8]int
}

func (r *minerRecord) snapshot() (acked int, conns []uint8, byInst map[uint8]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.acked {
		acked += n
	}
	byInst = map[uint8]int{}
	for k, v := range r.ackedOnInst {
		byInst[k] = v
	}
	return acked, append([]uint8(nil), r.conns...), byInst
}

// jobInstance is the instance id a job id carries (its bits above 32).
func jobInstance(jobID string) (uint8, error) {
	v, err := strconv.ParseUint(jobID, 16, 64)
	if err != nil || v>>32 > 255 {
		return 0, fmt.Errorf("job id %q: not an instance-tagged id", jobID)
	}
	return uint8(v >> 32), nil
}

// mineThroughProxy is one miner's life: connect to the frontend from its
// own source address, mine, and on client.reconnect or a lost connection
// connect again, as real miners do, until ctx ends.
func mineThroughProxy(ctx context.Context, front, user string, rec *minerRecord, progress chan<- struct{}) {
	signal := func() {
		select {
		case progress <- struct{}{}:
		default:
		}
	}
	for ctx.Err() == nil {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(rec.src)}}
		conn, err := d.DialContext(ctx, "tcp", front)
		var m *miner.Miner
		if err == nil {
			m = miner.New(conn, miner.Options{User: user, Workers: []string{rec.worker}, HandshakeTimeout: 10 * time.Second})
			err = m.Handshake(ctx)
		}
		if err != nil {
			if m != nil {
				m.Close()
			}
			// HAProxy had no instance for us yet: back off as miners do.
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		en1, _ := m.Extranonce1()
		rec.mu.Lock()
		rec.conns = append(rec.conns, en1[0])
		rec.mu.Unlock()
		for ctx.Err() == nil {
			s, err := m.FindShare(ctx)
			if err != nil {
				break
			}
			type out struct {
				r   miner.Result
				err error
			}
			ch := make(chan out, 1)
			if err := m.SubmitAsync(s, func(r miner.Result, err error) { ch <- out{r, err} }); err != nil {
				break // not sent
			}
			var o out
			select {
			case o = <-ch:
			case <-ctx.Done():
				o.err = ctx.Err()
			}
			rec.mu.Lock()
			switch {
			case o.err != nil:
				rec.unanswered[s.JobID]++
			case o.r.Accepted:
				rec.acked[s.JobID]++
				rec.ackedOnInst[en1[0]]++
			}
			rec.mu.Unlock()
			if o.err != nil {
				break
			}
			if o.r.Accepted {
				signal()
			}
			// Every share is a block on simnet: pace the miners so that
			// btcd, two instances, PostgreSQL and HAProxy share two cores.
			select {
			case <-ctx.Done():
			case <-time.After(30 * time.Millisecond):
			}
		}
		for _, e := range m.Events() {
			if e.Reconnect != nil {
				rec.mu.Lock()
				rec.reconnects++
				rec.mu.Unlock()
			}
		}
		m.Close()
	}
}

// TestTwoInstancesBehindHAProxy: two stratumd instances (instance ids 1
// and 2, one PostgreSQL database, separate data directories and spools, one
// shared btcd on simnet through --node rpc, so both build on the same chain)
// behind Debian's HAProxy running deploy/haproxy.cfg. Six miners connect
// through HAProxy, each from its own loopback address. Instance 1 is stopped
// gracefully; its miners get client.reconnect, reconnect through HAProxy and
// land on instance 2. Every share a miner saw accepted is in PostgreSQL,
// with the instance its job id names and the miner's own address (from the
// PROXY header) as remote_addr.
func TestTwoInstancesBehindHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("needs btcd and haproxy")
	}
	bin := haproxyBinary(t)
	btcd := btcdtest.Start(t, btcdtest.Options{Network: "simnet"})
	btcd.Generate(1)
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	payout := btcdtest.MiningAddress(btcd.Params)
	start := func(id int) *running {
		n := strconv.Itoa(id)
		return startDaemon(t, db, "--network", "simnet", "--node", "rpc", "--instance-id", n,
			"--rpc-url", "http://"+btcd.RPCAddr(), "--rpc-user", btcdtest.RPCUser, "--rpc-pass", btcdtest.RPCPass,
			"--payout-address", payout, "--auth", "open",
			"--datadir", filepath.Join(dir, "node"+n), "--share-dir", filepath.Join(dir, "shares"+n),
			"--min-diff", "1e-9", "--max-diff", "1e-9",
			"--proxy-protocol", "--proxy-trusted", "127.0.0.1")
	}
	r1, r2 := start(1), start(2)
	front := fmt.Sprintf("127.0.0.1:%d", btcdtest.FreePort(t))
	hlogs := startHAProxy(t, bin, haproxyConfig(t, front, [2]string{r1.addr, r2.addr}), front)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	minersCtx, stopMiners := context.WithCancel(ctx)
	defer stopMiners()
	const nMiners, perPhase = 6, 5
	progress := make(chan struct{}, 1)
	recs := make([]*minerRecord, nMiners)
	var wg sync.WaitGroup
	for i := range recs {
		recs[i] = &minerRecord{worker: fmt.Sprintf("rig%d", i), src: fmt.Sprintf("127.0.0.%d", 2+i),
			acked: map[string]int{}, unanswered: map[string]int{}, ackedOnInst: map[uint8]int{}}
		wg.Go(func() { mineThroughProxy(minersCtx, front, payout, recs[i], progress) })
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-progress:
			case <-ctx.Done():
				t.Fatalf("%s: %v\nhaproxy:\n%s", what, ctx.Err(), hlogs)
			}
		}
	}

	// Phase 1: every miner mines on the instance HAProxy gave it.
	waitFor("every miner mining", func() bool {
		for _, r := range recs {
			if n, _, _ := r.snapshot(); n < perPhase {
				return false
			}
		}
		return true
	})
	onOne := map[int]bool{}
	for i, r := range recs {
		_, conns, _ := r.snapshot()
		if len(conns) != 1 || (conns[0] != 1 && conns[0] != 2) {
			t.Fatalf("miner %d: connections to instances %v before the stop", i, conns)
		}
		onOne[i] = conns[0] == 1
	}
	if len(onOne) == 0 || func() bool {
		n := 0
		for _, v := range onOne {
			if v {
				n++
			}
		}
		return n == 0 || n == nMiners
	}() {
		t.Fatalf("HAProxy did not spread the miners over both instances: %v", onOne)
	}

	// Phase 2: instance 1 stops gracefully while everyone keeps mining.
	before := make([]map[uint8]int, nMiners)
	for i, r := range recs {
		_, _, before[i] = r.snapshot()
	}
	if err := r1.stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r1.logs.String(), "sent client.reconnect") {
		t.Fatalf("instance 1 did not send client.reconnect:\n%s", r1.logs)
	}
	waitFor("every miner mining on instance 2", func() bool {
		for i, r := range recs {
			if _, _, by := r.snapshot(); by[2]-before[i][2] < perPhase {
				return false
			}
		}
		return true
	})
	stopMiners()
	wg.Wait()
	if err := r2.stop(); err != nil {
		t.Fatal(err)
	}

	for i, r := range recs {
		r.mu.Lock()
		conns, reconnects := r.conns, r.reconnects
		r.mu.Unlock()
		if onOne[i] && (reconnects < 1 || conns[len(conns)-1] != 2) {
			t.Errorf("miner %d (instance 1): reconnects %d, connections %v; want client.reconnect and then instance 2", i, reconnects, conns)
		}
		if !onOne[i] && len(conns) != 1 {
			t.Errorf("miner %d (instance 2): connections %v; want one", i, conns)
		}
	}

	// Every acknowledged share is stored, exactly: per (worker, job id),
	// acknowledged <= stored <= acknowledged + unanswered.
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT worker, job_id, instance_id, remote_addr, count(*) FROM shares GROUP BY 1, 2, 3, 4`)
	type row struct {
		Worker, JobID string
		Instance      int16
		Remote        string
		N             int64
	}
	stored, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	byWorker := map[string]*minerRecord{}
	for _, r := range recs {
		byWorker[r.worker] = r
	}
	got := map[[2]string]int64{}
	for _, s := range stored {
		r := byWorker[s.Worker]
		if r == nil {
			t.Errorf("stored share of unknown worker %+v", s)
			continue
		}
		if s.Remote != r.src {
			t.Errorf("worker %s: remote_addr %q, want its own address %s (PROXY)", s.Worker, s.Remote, r.src)
		}
		if inst, err := jobInstance(s.JobID); err != nil || int16(inst) != s.Instance {
			t.Errorf("share %+v: job id names instance %d (%v)", s, inst, err)
		}
		got[[2]string{s.Worker, s.JobID}] += s.N
	}
	var acked, unanswered, total int64
	for _, r := range recs {
		for job, n := range r.acked {
			acked += int64(n)
			u := r.unanswered[job]
			if g := got[[2]string{r.worker, job}]; g < int64(n) || g > int64(n+u) {
				t.Errorf("worker %s job %s: %d stored, %d acknowledged, %d unanswered", r.worker, job, g, n, u)
			}
		}
		for job, u := range r.unanswered {
			unanswered += int64(u)
			if g := got[[2]string{r.worker, job}]; r.acked[job] == 0 && g > int64(u) {
				t.Errorf("worker %s job %s: %d stored, only %d unanswered submits", r.worker, job, g, u)
			}
		}
	}
	for k, g := range got {
		total += g
		if r := byWorker[k[0]]; r != nil && r.acked[k[1]] == 0 && r.unanswered[k[1]] == 0 {
			t.Errorf("worker %s job %s: %d stored but never submitted", k[0], k[1], g)
		}
	}
	if acked == 0 {
		t.Fatal("no share acknowledged")
	}
	t.Logf("%d shares acknowledged, %d stored, %d submits unanswered (connection ended first)", acked, total, unanswered)
}
