package stratum

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	btcwire "github.com/btcsuite/btcd/wire"
	"go.uber.org/goleak"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/password"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/stratum/wire"
	"github.com/stratumd/stratumd/internal/testutil"
	"github.com/stratumd/stratumd/internal/username"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testEpoch is the fake clock's start.
var testEpoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// newFakeClock returns a clock at testEpoch that tests move by hand.
func newFakeClock() *testutil.Clock { return testutil.NewClock(testEpoch) }

// fakeUsers is an in-memory Users.
type fakeUsers struct {
	mu        sync.Mutex
	passwords map[string]string
	ensured   []string
	created   []store.NewUser
	verifies  int
}

func newFakeUsers() *fakeUsers { return &fakeUsers{passwords: map[string]string{}} }

func (u *fakeUsers) VerifyPassword(_ context.Context, name, password string) (store.User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.verifies++
	pw, ok := u.passwords[name]
	if !ok {
		return store.User{}, fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	if pw != password {
		return store.User{}, fmt.Errorf("user %q: %w", name, store.ErrBadPassword)
	}
	return store.User{Name: name, HasPassword: true}, nil
}

func (u *fakeUsers) EnsureUser(_ context.Context, name, payout string) (store.User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.ensured = append(u.ensured, name)
	return store.User{Name: name, PayoutAddress: payout}, nil
}

func (u *fakeUsers) CreateUser(_ context.Context, nu store.NewUser) (store.User, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := username.Valid(nu.Name); err != nil {
		return store.User{}, fmt.Errorf("%w: %w", err, store.ErrInvalid)
	}
	if _, ok := u.passwords[nu.Name]; ok {
		return store.User{}, fmt.Errorf("user %q: %w", nu.Name, store.ErrExists)
	}
	u.passwords[nu.Name] = nu.Password
	u.created = append(u.created, nu)
	return store.User{Name: nu.Name, HasPassword: nu.Password != ""}, nil
}

func (u *fakeUsers) verifyCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.verifies
}

// eventLog records the order of events across fakes.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// fakeShares is an in-memory ShareSink.
type fakeShares struct {
	mu     sync.Mutex
	shares []store.Share
	fail   error
	log    *eventLog
}

func (f *fakeShares) Write(_ context.Context, s *store.Share) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.log != nil {
		f.log.add("write")
	}
	if f.fail != nil {
		return 0, f.fail
	}
	if err := s.Validate(); err != nil {
		return 0, err
	}
	f.shares = append(f.shares, *s)
	return uint64(len(f.shares)), nil
}

func (f *fakeShares) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *fakeShares) list() []store.Share {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.Share(nil), f.shares...)
}

// fakeBlocks is an in-memory BlockSink.
type fakeBlocks struct {
	mu       sync.Mutex
	blocks   []store.Block
	inserted chan store.Block
}

func (f *fakeBlocks) InsertBlock(_ context.Context, b store.Block) (store.Block, error) {
	f.mu.Lock()
	b.ID = int64(len(f.blocks) + 1)
	f.blocks = append(f.blocks, b)
	f.mu.Unlock()
	if f.inserted != nil {
		f.inserted <- b
	}
	b.Raw = nil // as the store returns it
	return b, nil
}

func (f *fakeBlocks) list() []store.Block {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.Block(nil), f.blocks...)
}

// fakeRecorder is a BlockRecorder that keeps what it is given.
type fakeRecorder struct{ added chan store.Block }

func (f *fakeRecorder) Add(b store.Block) { f.added <- b }

// fakeResubmitter is a BlockResubmitter that keeps what it is given.
type fakeResubmitter struct {
	mu    sync.Mutex
	added []resubmitted
}

type resubmitted struct {
	block  *btcwire.MsgBlock
	height int32
}

func (f *fakeResubmitter) Add(b *btcwire.MsgBlock, height int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.added = append(f.added, resubmitted{b, height})
}

func (f *fakeResubmitter) list() []resubmitted {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]resubmitted(nil), f.added...)
}

// regtestAddress returns a deterministic regtest P2WPKH address.
func regtestAddress(t testing.TB, seed byte) string {
	t.Helper()
	h := make([]byte, 20)
	for i := range h {
		h[i] = seed
	}
	a, err := btcutil.NewAddressWitnessPubKeyHash(h, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return a.EncodeAddress()
}

func payoutScript(t testing.TB) []byte {
	t.Helper()
	return scriptOf(t, regtestAddress(t, 0x42))
}

// harness is a running server over real TCP with fakes.
type harness struct {
	t      *testing.T
	srv    *Server
	addr   string
	src    *chaintest.Source
	clock  *testutil.Clock
	users  *fakeUsers
	shares *fakeShares
	blocks *fakeBlocks
	rec    *fakeRecorder
	resub  *fakeResubmitter
	events *eventLog
	jobs   chan *jobEntry
	cancel context.CancelFunc
	done   chan struct{}
}

// Harness options: bits for the fake chain, and config changes.
type harnessOpts struct {
	bits   uint32
	config func(*Config)
	noRun  bool // do not start Run
	// skipFirstJob: start Run but do not wait for its first job.
	skipFirstJob bool
	srcHook      func(*chaintest.Source)
}

func startHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	h := &harness{
		t:      t,
		clock:  newFakeClock(),
		users:  newFakeUsers(),
		events: &eventLog{},
		jobs:   make(chan *jobEntry, 64),
		done:   make(chan struct{}),
	}
	h.shares = &fakeShares{log: h.events}
	h.blocks = &fakeBlocks{}
	h.rec = &fakeRecorder{added: make(chan store.Block, 16)}
	h.resub = &fakeResubmitter{}
	h.src = chaintest.New(&chaincfg.RegressionNetParams)
	h.src.Now = h.clock.Now
	if o.bits != 0 {
		h.src.SetBits(o.bits)
	}
	if o.srcHook != nil {
		o.srcHook(h.src)
	}
	cfg := Config{
		Source:       h.src,
		Network:      &chaincfg.RegressionNetParams,
		Users:        h.users,
		Shares:       h.shares,
		Blocks:       h.blocks,
		Recorder:     h.rec,
		Resubmitter:  h.resub,
		PayoutScript: payoutScript(t),
		InstanceID:   1,
		Auth:         AuthOpen,
		Limits:       Limits{MinDiff: 1.0 / (1 << 20), MaxDiff: 1 << 20, StartDiff: 1.0 / (1 << 20)},
		AdminHasher:  password.Argon2id{Params: password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:          h.clock.Now,
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.config != nil {
		o.config(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Deterministic ids for transcripts (New starts them at random).
	srv.en1Next, srv.jobs.num = 0, 0
	srv.hookJob = func(e *jobEntry) {
		select {
		case h.jobs <- e:
		default:
		}
	}
	h.srv = srv
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, l); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	if !o.noRun {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
	}
	go func() { wg.Wait(); close(h.done) }()
	t.Cleanup(h.stop)
	if !o.noRun && !o.skipFirstJob {
		h.waitJob()
	}
	return h
}

// stop shuts the server down and waits for it.
func (h *harness) stop() {
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(20 * time.Second):
		h.t.Fatal("server did not stop")
	}
}

// waitJob waits for the next job the server builds.
func (h *harness) waitJob() *jobEntry {
	h.t.Helper()
	select {
	case e := <-h.jobs:
		return e
	case <-time.After(10 * time.Second):
		h.t.Fatal("no job")
		return nil
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// msg is one line from the server.
type msg struct {
	ID     json.RawMessage   `json:"id"`
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
	Result json.RawMessage   `json:"result"`
	Error  json.RawMessage   `json:"error"`
	raw    string
}

// errCode returns the error code of a reply, 0 when none.
func (m *msg) errCode() int {
	if len(m.Error) == 0 || string(m.Error) == "null" {
		return 0
	}
	var e []json.RawMessage
	if err := json.Unmarshal(m.Error, &e); err != nil || len(e) == 0 {
		return -1
	}
	var code int
	if json.Unmarshal(e[0], &code) != nil {
		return -1
	}
	return code
}

// client is a raw line client.
type client struct {
	t      *testing.T
	conn   net.Conn
	r      *bufio.Reader
	nextID int
	queue  []*msg // notifications read while waiting for a reply

	en1   []byte
	en2n  int
	diff  float64
	jobID string
	clean bool
}

func (h *harness) dial() *client {
	h.t.Helper()
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return &client{t: h.t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *client) sendLine(line string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next line from the server (failing after 10 s).
func (c *client) read() *msg {
	c.t.Helper()
	m, err := c.tryRead(10 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

func (c *client) tryRead(d time.Duration) (*msg, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	m := &msg{raw: strings.TrimRight(line, "\n")}
	if err := json.Unmarshal([]byte(line), m); err != nil {
		return nil, fmt.Errorf("bad line %q: %w", line, err)
	}
	c.observe(m)
	return m, nil
}

// observe tracks difficulty and job from notifications.
func (c *client) observe(m *msg) {
	switch m.Method {
	case wire.MethodSetDifficulty:
		json.Unmarshal(m.Params[0], &c.diff)
	case wire.MethodNotify:
		json.Unmarshal(m.Params[0], &c.jobID)
		json.Unmarshal(m.Params[8], &c.clean)
	}
}

// call sends a request and returns its reply; notifications read on the way
// are queued.
func (c *client) call(method string, params ...any) *msg {
	c.t.Helper()
	c.nextID++
	id := c.nextID
	if params == nil {
		params = []any{}
	}
	b, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendLine(string(b))
	for {
		m := c.read()
		if m.Method != "" {
			c.queue = append(c.queue, m)
			continue
		}
		var got int
		if json.Unmarshal(m.ID, &got) == nil && got == id {
			return m
		}
		c.t.Fatalf("reply to %d expected, got %s", id, m.raw)
	}
}

// next returns the next notification (queued first).
func (c *client) next() *msg {
	c.t.Helper()
	if len(c.queue) > 0 {
		m := c.queue[0]
		c.queue = c.queue[1:]
		return m
	}
	return c.read()
}

// expect returns the next notification and checks its method.
func (c *client) expect(method string) *msg {
	c.t.Helper()
	m := c.next()
	if m.Method != method {
		c.t.Fatalf("want %s, got %s", method, m.raw)
	}
	return m
}

// handshake subscribes and authorizes user and waits for the first job.
func (c *client) handshake(user string) {
	c.t.Helper()
	c.handshakeAs(user, "x")
}

// handshakeAs subscribes, authorizes user with password and returns the
// first mining.notify.
func (c *client) handshakeAs(user, password string) *msg {
	c.t.Helper()
	r := c.call(wire.MethodSubscribe, "test/1.0")
	var res []json.RawMessage
	if err := json.Unmarshal(r.Result, &res); err != nil || len(res) != 3 {
		c.t.Fatalf("subscribe result %s", r.raw)
	}
	var en1 string
	json.Unmarshal(res[1], &en1)
	c.en1, _ = hex.DecodeString(en1)
	json.Unmarshal(res[2], &c.en2n)
	if r := c.call(wire.MethodAuthorize, user, password); string(r.Result) != "true" {
		c.t.Fatalf("authorize %s: %s", user, r.raw)
	}
	c.expect(wire.MethodSetDifficulty)
	return c.expect(wire.MethodNotify)
}

// submitParams returns mining.submit params.
func submitArgs(worker, job string, en2 []byte, ntime, nonce uint32, version ...uint32) []any {
	a := []any{worker, job, hex.EncodeToString(en2), fmt.Sprintf("%08x", ntime), fmt.Sprintf("%08x", nonce)}
	for _, v := range version {
		a = append(a, fmt.Sprintf("%08x", v))
	}
	return a
}

// solution is a mined share.
type solution struct {
	en2     []byte
	ntime   uint32
	nonce   uint32
	version uint32 // final version
	block   bool
}

// mine finds a nonce for job id (as sent, alias included) at difficulty
// diff; want tells whether the share must (true) or must not (false) be a
// block; lowOnly asks for a hash that does NOT meet diff.
func (h *harness) mine(c *client, e *jobEntry, diff float64, wantBlock bool, versionBits uint32, mask uint32) solution {
	h.t.Helper()
	share := chain.NewTarget(chain.DifficultyToTarget(diff))
	en2 := make([]byte, c.en2n)
	ntime := uint32(e.job.Template.CurTime.Unix())
	version := e.version&^mask | versionBits&mask
	for nonce := uint32(0); nonce < 1<<26; nonce++ {
		hash, _ := e.job.Hash(c.en1, en2, ntime, nonce, int32(version))
		if !share.Meets(&hash) {
			continue
		}
		if e.job.Target.Meets(&hash) != wantBlock {
			continue
		}
		return solution{en2: en2, ntime: ntime, nonce: nonce, version: version, block: wantBlock}
	}
	h.t.Fatal("no solution found")
	return solution{}
}

// lowNonce finds a nonce whose hash does NOT meet diff.
func (h *harness) lowNonce(c *client, e *jobEntry, diff float64) solution {
	h.t.Helper()
	share := chain.NewTarget(chain.DifficultyToTarget(diff))
	en2 := make([]byte, c.en2n)
	ntime := uint32(e.job.Template.CurTime.Unix())
	for nonce := uint32(0); ; nonce++ {
		hash, _ := e.job.Hash(c.en1, en2, ntime, nonce, int32(e.version))
		if !share.Meets(&hash) {
			return solution{en2: en2, ntime: ntime, nonce: nonce, version: e.version}
		}
	}
}

// waitClosed waits until the server closes c's connection, reading and
// returning what it sent before.
func (c *client) waitClosed() []*msg {
	c.t.Helper()
	var got []*msg
	for {
		m, err := c.tryRead(10 * time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatal("connection not closed")
			}
			return got
		}
		got = append(got, m)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	src := chaintest.New(&chaincfg.RegressionNetParams)
	good := Config{
		Source: src, Network: &chaincfg.RegressionNetParams, Users: newFakeUsers(),
		Shares: &fakeShares{}, Blocks: &fakeBlocks{}, PayoutScript: payoutScript(t),
	}
	if _, err := New(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"no source":     func(c *Config) { c.Source = nil },
		"no network":    func(c *Config) { c.Network = nil },
		"no users":      func(c *Config) { c.Users = nil },
		"bad auth":      func(c *Config) { c.Auth = "maybe" },
		"no payout":     func(c *Config) { c.PayoutScript = nil },
		"big en2":       func(c *Config) { c.Extranonce2Size = 17 },
		"min above max": func(c *Config) { c.MinDiff, c.MaxDiff = 10, 1 },
	} {
		cfg := good
		mut(&cfg)
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
	s, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.JobInterval != DefaultJobInterval || s.cfg.Extranonce2Size != 8 || s.cfg.VersionMask != 0x1fffe000 ||
		s.cfg.MaxLineLength != 16<<10 || s.cfg.CoinbaseTag != "/stratumd/" || s.cfg.Auth != AuthPassword {
		t.Errorf("defaults not applied: %+v", s.cfg)
	}
	lim := s.CurrentLimits()
	if lim.MinDiff != 1 || lim.StartDiff != 1 || lim.BanThreshold != 0.5 || lim.BanMinSubmits != 20 {
		t.Errorf("limit defaults: %+v", lim)
	}
}

func TestAdminPasswordKeptOnlyHashed(t *testing.T) {
	h := startHarness(t, harnessOpts{noRun: true, config: func(c *Config) { c.AdminPassword = "s3cret" }})
	if h.srv.cfg.AdminPassword != "" {
		t.Error("admin password kept in the config")
	}
	if !strings.HasPrefix(h.srv.adminHash, "$argon2id$") || strings.Contains(h.srv.adminHash, "s3cret") {
		t.Errorf("admin hash %q", h.srv.adminHash)
	}
}

func TestSetLimits(t *testing.T) {
	h := startHarness(t, harnessOpts{noRun: true})
	if err := h.srv.SetLimits(Limits{MinDiff: 4, MaxDiff: 2}); !errors.Is(err, ErrConfig) {
		t.Fatalf("min > max accepted: %v", err)
	}
	if err := h.srv.SetLimits(Limits{MinDiff: 0.5, MaxDiff: 64, StartDiff: 1000, BanMalformed: 2}); err != nil {
		t.Fatal(err)
	}
	lim := h.srv.CurrentLimits()
	if lim.MinDiff != 0.5 || lim.MaxDiff != 64 || lim.StartDiff != 64 || lim.BanMalformed != 2 {
		t.Errorf("limits %+v", lim)
	}
}

func TestGracefulShutdownSendsReconnect(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	c1, c2 := h.dial(), h.dial()
	c1.handshake(regtestAddress(t, 1) + ".a")
	c2.call(wire.MethodSubscribe) // mid-handshake sessions get it too
	h.cancel()
	for _, c := range []*client{c1, c2} {
		got := c.waitClosed()
		if len(got) == 0 || got[len(got)-1].Method != wire.MethodReconnect || len(got[len(got)-1].Params) != 0 {
			t.Fatalf("last lines before close: %v", got)
		}
	}
	<-h.done
	if st := h.srv.Stats(); st.Connections != 0 || st.Subscribed != 0 || st.Authorized != 0 {
		t.Errorf("after shutdown: %+v", st)
	}
}
